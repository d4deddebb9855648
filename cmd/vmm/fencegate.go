package main

import (
	"errors"
	"sync"
	"sync/atomic"

	vnet "github.com/tracevisor/tracevisor/virtio/net"
	"github.com/tracevisor/tracevisor/vmm"
)

// errFenced is a fenced gate's answer to Send: the device counts it as a
// transmit error.
var errFenced = errors.New("virtio-net: the machine is fenced: frame dropped")

// fenceGate sits between a virtio-net device and its backend and closes
// when the machine is fenced: from the moment the fence flag is set no
// frame leaves the guest (Send drops it) and none is handed to the device
// for the guest (Recv drains the backend and drops). The machine's fence
// waits, through the OnFence hook, for a Send already in flight, so once
// Fence has returned nothing more goes out. A frame Recv returned just
// before the fence may still land in guest RAM; the guest never runs to
// see it.
type fenceGate struct {
	be vnet.Backend
	m  atomic.Pointer[fenceable] // nil until attach: not fenced

	mu        sync.RWMutex // Send holds it shared; the fence hook waits out a Send in flight
	txDropped atomic.Uint64
	rxDropped atomic.Uint64
}

// fenceable is what a gate needs of the machine (*vmm.Machine).
type fenceable interface {
	Fenced() bool
	OnFence(func())
}

var _ fenceable = (*vmm.Machine)(nil)

func newFenceGate(be vnet.Backend) *fenceGate { return &fenceGate{be: be} }

// attach ties the gate to the machine's fence. Call it before Run.
func (g *fenceGate) attach(m fenceable) {
	g.m.Store(&m)
	m.OnFence(func() {
		// An empty critical section: it waits for the Sends in flight.
		g.mu.Lock()
		g.mu.Unlock()
	})
}

func (g *fenceGate) fenced() bool {
	m := g.m.Load()
	return m != nil && (*m).Fenced()
}

// Send implements vnet.Backend.
func (g *fenceGate) Send(frame []byte) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.fenced() {
		g.txDropped.Add(1)
		return errFenced
	}
	return g.be.Send(frame)
}

// Recv implements vnet.Backend: after the fence it keeps reading the
// backend (so a switch or a tap does not back up) and drops every frame.
func (g *fenceGate) Recv(buf []byte) (int, error) {
	for {
		n, err := g.be.Recv(buf)
		if err != nil || !g.fenced() {
			return n, err
		}
		g.rxDropped.Add(1)
	}
}

// dropped returns the frames dropped since the fence, each way.
func (g *fenceGate) dropped() (tx, rx uint64) { return g.txDropped.Load(), g.rxDropped.Load() }

// Close implements vnet.Backend.
func (g *fenceGate) Close() error { return g.be.Close() }
