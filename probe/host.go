package probe

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/internal/ratelog"
	"github.com/tracevisor/tracevisor/wire"
)

// Transport carries commands to the guest's probe driver: the communication
// layer under Host (virtio/probedev's Device; any transport with Send).
// Messages come back through Host.Receive.
type Transport interface {
	Send(cmd []byte) error
}

// Clock maps a guest kvmclock reading to host wall-clock time (Unix ns).
// vmm's Machine provides one from KVM_GET_CLOCK.
type Clock interface {
	HostNS(guestNS uint64) (int64, bool)
}

// inboxSize bounds guest messages received but not yet decoded; beyond it
// they are counted in HostStats.InboxDrops.
const inboxSize = 4096

// Host is the host side of the probe channel: it arms and disarms probes
// in the guest, asks for counters, injects faults, and decodes the guest's
// events into a stream. Its methods are safe for concurrent use.
//
// Its files, by concern: host.go receives and dispatches guest messages;
// commands.go sends commands and waits for answers; pending.go matches
// each answer to the request it answers; registry.go keeps the probes;
// rearm.go arms them again when the driver restarts; event.go decodes and
// publishes events; state.go takes and restores its state for a snapshot.
type Host struct {
	tr    Transport
	clock Clock
	log   *ratelog.Logger // what the guest can cause is rate-limited
	now   func() int64

	inbox   chan inbound
	done    chan struct{}
	stopped chan struct{} // closed by GuestStopped
	stopOne sync.Once
	drops   atomic.Uint64

	mu     sync.Mutex
	seq    uint32
	reg    registry
	reqs   pendingTable
	rearm  rearmState
	hello  *wire.Hello
	ready  chan struct{} // closed at the driver's hello
	subs   map[*Subscription]struct{}
	hook   func(Event) // see SetEventHook
	closed bool
	counts HostStats
}

type inbound struct {
	msg     []byte
	at      int64
	drained chan struct{} // a Drain marker instead of a message
}

// HostStats counts the host side of the channel. Every guest message is
// counted once: received, malformed, or dropped in the inbox.
type HostStats struct {
	Received    uint64 `json:"received"`    // guest messages decoded and accepted
	Events      uint64 `json:"events"`      // events among them
	Malformed   uint64 `json:"malformed"`   // failed to decode, or answered nothing outstanding (mistyped, unrequested, late)
	InboxDrops  uint64 `json:"inbox_drops"` // received faster than decoded: lost on the host
	GuestDrops  uint64 `json:"guest_drops"` // drops the guest reported inside events
	Restarts    uint64 `json:"restarts"`    // hellos after the first: the driver started again
	Outstanding int    `json:"outstanding"` // commands awaiting the guest's answer now
}

// NewHost returns a Host sending commands through tr. clock may be nil (no
// host_ns mapping); log receives a line per asynchronous failure (a boot
// probe the guest refused, a malformed message), rate-limited with
// internal/ratelog, and may be nil.
func NewHost(tr Transport, clock Clock, log io.Writer) *Host {
	h := &Host{
		tr: tr, clock: clock, log: ratelog.Default(log),
		now:     func() int64 { return time.Now().UnixNano() },
		inbox:   make(chan inbound, inboxSize),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		reg:     newRegistry(),
		reqs:    pendingTable{},
		ready:   make(chan struct{}),
		subs:    map[*Subscription]struct{}{},
	}
	go h.loop()
	return h
}

// Close stops decoding and ends every subscription.
func (h *Host) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
	h.mu.Unlock()
}

// GuestStopped tells the host the guest will never run again (the VMM
// fenced it): every call awaiting the driver's answer fails now with
// ErrGuestStopped, and so does every later one, instead of waiting out its
// deadline. Events already received are still decoded and published.
func (h *Host) GuestStopped() {
	h.stopOne.Do(func() { close(h.stopped) })
}

// Receive takes one guest message with the time the VMM received it. It is
// the transport's receiver: it only queues, so the vCPU that delivered the
// message goes back to the guest at once.
func (h *Host) Receive(msg []byte, receivedNS int64) {
	select {
	case h.inbox <- inbound{msg: msg, at: receivedNS}:
	default:
		h.drops.Add(1)
	}
}

// Drain returns once every message Receive took before the call has been
// decoded and handed to subscribers.
func (h *Host) Drain() {
	c := make(chan struct{})
	select {
	case h.inbox <- inbound{drained: c}:
	case <-h.done:
		return
	}
	select {
	case <-c:
	case <-h.done:
	}
}

// Ready is closed when the guest's driver has said hello.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Hello returns the driver's hello, once it arrived.
func (h *Host) Hello() (wire.Hello, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hello == nil {
		return wire.Hello{}, false
	}
	return *h.hello, true
}

// Stats returns the host-side counters.
func (h *Host) Stats() HostStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.counts
	s.InboxDrops = h.drops.Load()
	s.Outstanding = len(h.reqs)
	return s
}

// loop decodes guest messages in arrival order.
func (h *Host) loop() {
	for {
		select {
		case in := <-h.inbox:
			if in.drained != nil {
				close(in.drained)
				continue
			}
			h.handle(in)
		case <-h.done:
			return
		}
	}
}

// handle decodes one guest message and hands it to what it concerns.
func (h *Host) handle(in inbound) {
	m, err := wire.Decode(in.msg)
	decoded := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.malformedLocked("malformed message from the guest: %v", err)
		return
	}
	switch m := m.(type) {
	case wire.Event:
		h.counts.Received++
		h.counts.Events++
		h.counts.GuestDrops += uint64(m.Dropped)
		h.publish(h.decodeEvent(m, in.at, decoded))
	case wire.Reply, wire.Stats:
		if err := h.matchLocked(m); err != nil {
			h.malformedLocked("unmatched answer from the guest: %v", err)
			return
		}
		h.counts.Received++
	case wire.Hello:
		h.counts.Received++
		h.helloLocked(m)
	default: // a command type: the guest sends none
		h.malformedLocked("unexpected message type %s (%#x) from the guest", m.Type(), uint16(m.Type()))
	}
}

// malformedLocked counts a message the host rejects and logs why, within
// the log's rate; h.mu is held.
func (h *Host) malformedLocked(format string, args ...any) {
	h.counts.Malformed++
	h.log.Printf("probe: "+format, args...)
}
