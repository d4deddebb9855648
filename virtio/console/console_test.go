package console

import (
	"bytes"
	"errors"
	"runtime"
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

// patternWriter checks guest output against a repeating pattern as it
// arrives, keeping none of it.
type patternWriter struct {
	pattern  []byte
	pos      uint64
	maxWrite int
	bad      bool
	failAt   uint64 // fail writes once pos reaches it (0: never)
}

func (w *patternWriter) Write(p []byte) (int, error) {
	w.maxWrite = max(w.maxWrite, len(p))
	if w.failAt != 0 && w.pos+uint64(len(p)) > w.failAt {
		n := int(w.failAt - w.pos)
		w.pos += uint64(n)
		return n, errors.New("host console closed")
	}
	n := len(p)
	for len(p) > 0 {
		off := w.pos % uint64(len(w.pattern))
		k := min(len(p), len(w.pattern)-int(off))
		if !bytes.Equal(p[:k], w.pattern[off:off+uint64(k)]) {
			w.bad = true
		}
		p, w.pos = p[k:], w.pos+uint64(k)
	}
	return n, nil
}

// aliasedSetup activates a console writing to w on 32 MiB of guest RAM
// whose transmit queue holds one chain: every descriptor of the queue names the same
// 16 MiB buffer, 1 GiB in all.
func aliasedSetup(t *testing.T, w *patternWriter) (*Device, *virtiotest.Ring) {
	const bufAddr, bufLen = 1 << 20, 16 << 20
	mem := virtiotest.NewMemory(32 << 20)
	rx := &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x1400, Used: 0x1800, Buf: 0x4000, Size: 8}
	tx := &virtiotest.Ring{Mem: mem, Desc: 0x2000, Avail: 0x2800, Used: 0x3000, Buf: 0x8000, Size: QueueSize}
	pattern := make([]byte, bufLen)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	mem.WriteAt(pattern, bufAddr)
	w.pattern = pattern
	d := New(w)
	if err := d.Activate(mmio.ActivateContext{Queues: []mmio.QueueConfig{rx.Config(), tx.Config()}, Mem: mem, Interrupt: &virtiotest.IRQ{}}); err != nil {
		t.Fatal(err)
	}
	bufs := make([]virtiotest.Buf, QueueSize)
	for i := range bufs {
		bufs[i] = virtiotest.Buf{Addr: bufAddr, Len: bufLen}
	}
	tx.PostChain(bufs...)
	return d, tx
}

// TestAliasedTransmitBoundedMemory: a 1 GiB transmit chain over one
// 16 MiB buffer reaches the writer whole, in bounded writes, with the heap
// growing by almost nothing (the old ReadAll copied it into one slice).
func TestAliasedTransmitBoundedMemory(t *testing.T) {
	const total = QueueSize * 16 << 20
	w := &patternWriter{}
	d, tx := aliasedSetup(t, w)
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	d.Notify(transmitq)
	runtime.ReadMemStats(&b)
	if tx.UsedIdx() != 1 || w.pos != total || w.bad {
		t.Fatalf("used idx %d, writer got %d of %d bytes, mismatch %v", tx.UsedIdx(), w.pos, total, w.bad)
	}
	if w.maxWrite > txChunk {
		t.Errorf("a %d-byte write, chunks are %d", w.maxWrite, txChunk)
	}
	if alloc := b.TotalAlloc - a.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("transmitting 1 GiB allocated %d bytes", alloc)
	}
}

// TestTransmitWriterFailureCountsDrops: when the host writer fails, the
// rest of the chain is dropped and counted, the chain is still returned,
// and the device carries on.
func TestTransmitWriterFailureCountsDrops(t *testing.T) {
	const total = QueueSize * 16 << 20
	d, tx := aliasedSetup(t, &patternWriter{failAt: 10000})
	d.Notify(transmitq)
	if tx.UsedIdx() != 1 || d.TxDropped() != total-10000 || d.broken {
		t.Fatalf("used idx %d, dropped %d (want %d), broken %v", tx.UsedIdx(), d.TxDropped(), total-10000, d.broken)
	}
}
