package console

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

func usedIRQs(irq *virtiotest.IRQ) int { u, _, _ := irq.Counts(); return u }
func resets(irq *virtiotest.IRQ) int   { _, _, r := irq.Counts(); return r }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func setup(t *testing.T) (*Device, *syncBuf, *virtiotest.IRQ, *virtiotest.Ring, *virtiotest.Ring) {
	mem := virtiotest.NewMemory(1 << 16)
	rx := &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x1400, Used: 0x1800, Buf: 0x4000, Size: 8}
	tx := &virtiotest.Ring{Mem: mem, Desc: 0x2000, Avail: 0x2400, Used: 0x2800, Buf: 0x8000, Size: 8}
	out := &syncBuf{}
	irq := &virtiotest.IRQ{}
	d := New(out)
	if err := d.Activate(mmio.ActivateContext{Queues: []mmio.QueueConfig{rx.Config(), tx.Config()}, Mem: mem, Interrupt: irq}); err != nil {
		t.Fatal(err)
	}
	return d, out, irq, rx, tx
}

func TestTransmitWritesGuestOutput(t *testing.T) {
	d, out, irq, _, tx := setup(t)
	tx.Post([]byte("hello, "), 7, false)
	tx.Post([]byte("host\n"), 5, false)
	d.Notify(transmitq)
	if out.String() != "hello, host\n" {
		t.Errorf("host got %q", out.String())
	}
	if tx.UsedIdx() != 2 || tx.UsedLen(0) != 0 || usedIRQs(irq) == 0 {
		t.Errorf("used idx %d, len %d, interrupts %d", tx.UsedIdx(), tx.UsedLen(0), usedIRQs(irq))
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
	if rx.UsedIdx() != 0 {
		t.Fatal("input delivered with no buffer posted")
	}
	addr := rx.Post(nil, 64, true)
	d.Notify(receiveq)
	got := make([]byte, 5)
	rx.Mem.ReadAt(got, addr)
	if rx.UsedIdx() != 1 || rx.UsedLen(0) != 5 || string(got) != "typed" || usedIRQs(irq) == 0 {
		t.Errorf("used idx %d len %d data %q interrupts %d", rx.UsedIdx(), rx.UsedLen(0), got, usedIRQs(irq))
	}
}

func TestBadRingNeedsReset(t *testing.T) {
	d, _, irq, _, tx := setup(t)
	tx.Mem.Write16(tx.Avail+2, 100) // avail idx 100 ahead of a size-8 ring
	d.Notify(transmitq)
	if resets(irq) != 1 {
		t.Fatalf("SetNeedsReset called %d times, want 1", resets(irq))
	}
	d.Notify(transmitq) // a broken device ignores further notifications
	if resets(irq) != 1 {
		t.Fatal("a broken device reported again")
	}
	d.Reset()
	if d.q[transmitq] != nil {
		t.Error("Reset kept the queues")
	}
}
