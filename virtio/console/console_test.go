package console

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/vmm/guestmem"
)

// ring lays out one split queue in test memory: descriptors at desc, the
// avail ring at avail, the used ring at used, buffers from buf on.
type ring struct {
	mem                    *guestmem.Memory
	desc, avail, used, buf uint64
	n                      uint16 // descriptors posted
}

func (r *ring) post(t *testing.T, data []byte, size uint32, write bool) uint64 {
	t.Helper()
	addr := r.buf + uint64(r.n)*0x100
	r.mem.WriteAt(data, addr)
	d := r.desc + uint64(r.n)*16
	r.mem.Write64(d, addr)
	r.mem.Write32(d+8, size)
	flags := uint16(0)
	if write {
		flags = 2 // VIRTQ_DESC_F_WRITE
	}
	r.mem.Write16(d+12, flags)
	r.mem.Write16(r.avail+4+2*uint64(r.n), r.n) // ring[n] = head n
	r.n++
	r.mem.Write16(r.avail+2, r.n) // avail idx
	return addr
}

func (r *ring) usedIdx() uint16 { v, _ := r.mem.Read16(r.used + 2); return v }

func (r *ring) usedLen(i uint16) uint32 { v, _ := r.mem.Read32(r.used + 4 + 8*uint64(i) + 4); return v }

func (r *ring) config() mmio.QueueConfig {
	return mmio.QueueConfig{Size: 8, Ready: true, Desc: r.desc, Driver: r.avail, Device: r.used}
}

type fakeIRQ struct {
	mu          sync.Mutex
	used, reset int
}

func (f *fakeIRQ) SignalUsed()   { f.mu.Lock(); f.used++; f.mu.Unlock() }
func (f *fakeIRQ) SignalConfig() {}
func (f *fakeIRQ) SetNeedsReset() {
	f.mu.Lock()
	f.reset++
	f.mu.Unlock()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func setup(t *testing.T) (*Device, *syncBuf, *fakeIRQ, *ring, *ring) {
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: make([]byte, 1<<16)})
	rx := &ring{mem: mem, desc: 0x1000, avail: 0x1400, used: 0x1800, buf: 0x4000}
	tx := &ring{mem: mem, desc: 0x2000, avail: 0x2400, used: 0x2800, buf: 0x8000}
	out := &syncBuf{}
	irq := &fakeIRQ{}
	d := New(out)
	if err := d.Activate(mmio.ActivateContext{Queues: []mmio.QueueConfig{rx.config(), tx.config()}, Mem: mem, Interrupt: irq}); err != nil {
		t.Fatal(err)
	}
	return d, out, irq, rx, tx
}

func TestTransmitWritesGuestOutput(t *testing.T) {
	d, out, irq, _, tx := setup(t)
	tx.post(t, []byte("hello, "), 7, false)
	tx.post(t, []byte("host\n"), 5, false)
	d.Notify(transmitq)
	if out.String() != "hello, host\n" {
		t.Errorf("host got %q", out.String())
	}
	if tx.usedIdx() != 2 || tx.usedLen(0) != 0 || irq.used == 0 {
		t.Errorf("used idx %d, len %d, interrupts %d", tx.usedIdx(), tx.usedLen(0), irq.used)
	}
}

func TestReceiveHoldsInputUntilBuffersArePosted(t *testing.T) {
	d, _, irq, rx, _ := setup(t)
	done := make(chan struct{})
	go func() { d.ReadFrom(strings.NewReader("typed")); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom blocked on input the device can hold")
	}
	if rx.usedIdx() != 0 {
		t.Fatal("input delivered with no buffer posted")
	}
	addr := rx.post(t, nil, 64, true)
	d.Notify(receiveq)
	got := make([]byte, 5)
	rx.mem.ReadAt(got, addr)
	if rx.usedIdx() != 1 || rx.usedLen(0) != 5 || string(got) != "typed" || irq.used == 0 {
		t.Errorf("used idx %d len %d data %q interrupts %d", rx.usedIdx(), rx.usedLen(0), got, irq.used)
	}
}

func TestBadRingNeedsReset(t *testing.T) {
	d, _, irq, _, tx := setup(t)
	tx.mem.Write16(tx.avail+2, 100) // avail idx 100 ahead of a size-8 ring
	d.Notify(transmitq)
	if irq.reset != 1 {
		t.Fatalf("SetNeedsReset called %d times, want 1", irq.reset)
	}
	d.Notify(transmitq) // a broken device ignores further notifications
	if irq.reset != 1 {
		t.Fatal("a broken device reported again")
	}
	d.Reset()
	if d.q[transmitq] != nil {
		t.Error("Reset kept the queues")
	}
}
