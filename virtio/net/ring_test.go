package net

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
)

// Test guest memory: one region at GPA 0; two rings at fixed offsets and a
// bump allocator for buffers.
const (
	memSize  = 4 << 20
	ringSize = 16
	bufBase  = 0x100000
)

// ring is a driver-side split virtqueue laid out in guest memory.
type ring struct {
	t                  *testing.T
	mem                *guestmem.Memory
	desc, avail, used  uint64
	availIdx, nextDesc uint16
	seenUsed           uint16
	alloc              *uint64
	// lk is the device's lock: holding it while touching the rings models
	// the ordering a real driver gets from the interrupt and the kick.
	lk sync.Locker
}

// seg is one descriptor: readable data, or (when data is nil) a writable
// buffer of wlen bytes.
type seg struct {
	data []byte
	wlen uint32
}

func (r *ring) config() mmio.QueueConfig {
	return mmio.QueueConfig{Size: ringSize, Ready: true, Desc: r.desc, Driver: r.avail, Device: r.used}
}

// post writes a chain of segs and publishes it; it returns the buffer
// addresses, one per seg.
func (r *ring) post(segs ...seg) []uint64 {
	r.t.Helper()
	r.lk.Lock()
	defer r.lk.Unlock()
	head := r.nextDesc
	var addrs []uint64
	for i, s := range segs {
		idx := r.nextDesc
		r.nextDesc = (r.nextDesc + 1) % ringSize
		n, flags := s.wlen, uint16(0)
		if s.data != nil {
			n = uint32(len(s.data))
		} else {
			flags |= 2 // VIRTQ_DESC_F_WRITE
		}
		addr := *r.alloc
		*r.alloc += (uint64(n) + 15) &^ 15
		if s.data != nil {
			r.must(r.mem.WriteAt(s.data, addr))
		}
		if i < len(segs)-1 {
			flags |= 1 // VIRTQ_DESC_F_NEXT
		}
		d := r.desc + 16*uint64(idx)
		r.must(r.mem.Write64(d, addr))
		r.must(r.mem.Write32(d+8, n))
		r.must(r.mem.Write16(d+12, flags))
		r.must(r.mem.Write16(d+14, r.nextDesc))
		addrs = append(addrs, addr)
	}
	r.must(r.mem.Write16(r.avail+4+2*uint64(r.availIdx%ringSize), head))
	r.availIdx++
	r.must(r.mem.Write16(r.avail+2, r.availIdx))
	return addrs
}

func (r *ring) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *ring) usedIdx() uint16 {
	r.lk.Lock()
	defer r.lk.Unlock()
	return r.usedIdxLocked()
}

func (r *ring) usedIdxLocked() uint16 {
	v, err := r.mem.Read16(r.used + 2)
	r.must(err)
	return v
}

// next returns the next used element (id, len); it fails if there is none.
func (r *ring) next() (uint32, uint32) {
	r.t.Helper()
	r.lk.Lock()
	defer r.lk.Unlock()
	if r.usedIdxLocked() == r.seenUsed {
		r.t.Fatalf("no used element %d", r.seenUsed)
	}
	e := r.used + 4 + 8*uint64(r.seenUsed%ringSize)
	r.seenUsed++
	id, err := r.mem.Read32(e)
	r.must(err)
	n, err := r.mem.Read32(e + 4)
	r.must(err)
	return id, n
}

func (r *ring) read(addr uint64, n int) []byte {
	r.lk.Lock()
	defer r.lk.Unlock()
	b := make([]byte, n)
	r.must(r.mem.ReadAt(b, addr))
	return b
}

// fakeIRQ records interrupts; it is also the transport's needsResetter.
type fakeIRQ struct {
	mu                       sync.Mutex
	used, config, needsReset int
}

func (f *fakeIRQ) SignalUsed()         { f.mu.Lock(); f.used++; f.mu.Unlock() }
func (f *fakeIRQ) SignalConfig()       { f.mu.Lock(); f.config++; f.mu.Unlock() }
func (f *fakeIRQ) SetNeedsReset(error) { f.mu.Lock(); f.needsReset++; f.mu.Unlock() }
func (f *fakeIRQ) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used, f.config, f.needsReset
}

// fakeBackend hands frames pushed by the test to Recv and records Send.
type fakeBackend struct {
	in   chan []byte
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	sent [][]byte
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{in: make(chan []byte), done: make(chan struct{})}
}

func (b *fakeBackend) Send(f []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, append([]byte(nil), f...))
	return nil
}

func (b *fakeBackend) Recv(buf []byte) (int, error) {
	select {
	case f := <-b.in:
		return copy(buf, f), nil
	case <-b.done:
		return 0, ErrClosed
	}
}

func (b *fakeBackend) Close() error { b.once.Do(func() { close(b.done) }); return nil }

// push hands f to the device; it returns once the receive goroutine took it
// and (because receive runs under the device lock before the next Recv)
// once the previous frame was fully processed.
func (b *fakeBackend) push(f []byte) { b.in <- f }

// env is an activated device with its two rings.
type env struct {
	t        *testing.T
	d        *Device
	be       *fakeBackend
	irq      *fakeIRQ
	rx, tx   *ring
	features uint64
}

var testMAC = [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

func newEnv(t *testing.T, features uint64) *env {
	t.Helper()
	buf := make([]byte, memSize)
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: buf})
	alloc := uint64(bufBase)
	rx := &ring{t: t, mem: mem, desc: 0x1000, avail: 0x2000, used: 0x3000, alloc: &alloc}
	tx := &ring{t: t, mem: mem, desc: 0x4000, avail: 0x5000, used: 0x6000, alloc: &alloc}
	be := newFakeBackend()
	d := New(testMAC, be)
	rx.lk, tx.lk = &d.mu, &d.mu
	t.Cleanup(func() { d.Close() })
	e := &env{t: t, d: d, be: be, irq: &fakeIRQ{}, rx: rx, tx: tx, features: features}
	if err := d.Activate(activateCtx(e)); err != nil {
		t.Fatal(err)
	}
	return e
}

func activateCtx(e *env) mmio.ActivateContext {
	return mmio.ActivateContext{
		Features:  e.features,
		Queues:    []mmio.QueueConfig{e.rx.config(), e.tx.config()},
		Mem:       e.rx.mem,
		Interrupt: e.irq,
	}
}

// sync waits until the receive goroutine finished with every pushed frame:
// a frame pushed afterwards can only be taken once receive returned, so
// pushing a sentinel through an inactive path is not needed; we poll the
// device lock instead.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) held() int {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	return len(e.d.held)
}

func frame(dst, src [6]byte, payload string) []byte {
	f := make([]byte, 0, EthHeaderLen+len(payload))
	f = append(f, dst[:]...)
	f = append(f, src[:]...)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	return append(f, payload...)
}
