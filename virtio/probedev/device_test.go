package probedev

import (
	"bytes"
	"runtime"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
	"github.com/tracevisor/tracevisor/wire"
)

type received struct {
	mu   sync.Mutex
	msgs [][]byte
	at   []int64
}

func (r *received) take(m []byte, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.at = append(r.at, at)
}

func setup(t *testing.T) (*Device, *received, *virtiotest.IRQ, *virtiotest.Ring, *virtiotest.Ring, func()) {
	t.Helper()
	return setupMemory(t, 1<<16)
}

// setupMemory is setup with memSize bytes of guest memory (at least 64 KiB).
func setupMemory(t *testing.T, memSize int) (*Device, *received, *virtiotest.IRQ, *virtiotest.Ring, *virtiotest.Ring, func()) {
	t.Helper()
	mem := virtiotest.NewMemory(memSize)
	loader := &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x1400, Used: 0x1800, Buf: 0x4000, Size: 8}
	listener := &virtiotest.Ring{Mem: mem, Desc: 0x2000, Avail: 0x2400, Used: 0x2800, Buf: 0x8000, Size: 8}
	rec := &received{}
	irq := &virtiotest.IRQ{}
	d := New(rec.take)
	d.now = func() int64 { return 42 }
	activate := func() {
		ctx := mmio.ActivateContext{Queues: []mmio.QueueConfig{loader.Config(), listener.Config()}, Mem: mem, Interrupt: irq}
		if err := d.Activate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return d, rec, irq, loader, listener, activate
}

func configBytes(d *Device) []byte {
	b := make([]byte, 12)
	d.ReadConfig(0, b)
	return b
}

func TestCommandsWaitForLoaderBuffersAndCountAsBootCommands(t *testing.T) {
	d, _, irq, loader, _, activate := setup(t)
	if err := d.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := d.Send([]byte("second")); err != nil {
		t.Fatal(err)
	}
	cfg := configBytes(d)
	want := []byte{wire.Version, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(cfg, want) {
		t.Fatalf("config space % x, want % x (version 1, boot_cmds 2, zero beyond)", cfg, want)
	}
	activate() // the driver posts no buffer yet
	if loader.UsedIdx() != 0 {
		t.Fatal("a command was delivered with no loader buffer posted")
	}
	loader.Post(nil, wire.BufSize, true)
	d.Notify(wire.QueueLoader)
	if loader.UsedIdx() != 1 || loader.UsedLen(0) != 5 || string(loader.UsedBuffer(0, 5)) != "first" {
		t.Fatalf("used %d, len %d, data %q", loader.UsedIdx(), loader.UsedLen(0), loader.UsedBuffer(0, 5))
	}
	loader.Post(nil, wire.BufSize, true)
	d.Notify(wire.QueueLoader)
	if loader.UsedIdx() != 2 || string(loader.UsedBuffer(1, 6)) != "second" {
		t.Fatalf("second command: used %d data %q", loader.UsedIdx(), loader.UsedBuffer(1, 6))
	}
	if used, _, _ := irq.Counts(); used != 2 {
		t.Errorf("%d used-buffer interrupts, want 2", used)
	}
	if delivered, pending, _ := d.Counts(); delivered != 2 || pending != 0 {
		t.Errorf("delivered %d pending %d", delivered, pending)
	}
	if cfg := configBytes(d); cfg[4] != 0 {
		t.Errorf("boot_cmds %d after delivery, want 0", cfg[4])
	}
}

func TestSendDeliversAtOnceWhenABufferIsPosted(t *testing.T) {
	d, _, _, loader, _, activate := setup(t)
	activate()
	loader.Post(nil, wire.BufSize, true)
	d.Notify(wire.QueueLoader)
	if err := d.Send([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if loader.UsedIdx() != 1 || string(loader.UsedBuffer(0, 3)) != "now" {
		t.Fatalf("used %d data %q", loader.UsedIdx(), loader.UsedBuffer(0, 3))
	}
}

func TestListenerMessagesReachTheReceiverWithReceiptTime(t *testing.T) {
	d, rec, irq, _, listener, activate := setup(t)
	activate()
	listener.Post([]byte("event-1"), 7, false)
	listener.Post([]byte("event-2"), 7, false)
	d.Notify(wire.QueueListener)
	if len(rec.msgs) != 2 || string(rec.msgs[0]) != "event-1" || string(rec.msgs[1]) != "event-2" {
		t.Fatalf("received %q", rec.msgs)
	}
	if rec.at[0] != 42 || rec.at[1] != 42 {
		t.Errorf("receipt times %v, want the device clock's 42", rec.at)
	}
	if listener.UsedIdx() != 2 || listener.UsedLen(0) != 0 {
		t.Errorf("listener used %d len %d: readable buffers are returned with length 0", listener.UsedIdx(), listener.UsedLen(0))
	}
	if used, _, _ := irq.Counts(); used == 0 {
		t.Error("no interrupt for returned listener buffers")
	}
}

func TestSendRejectsOversizeCommandsAndBacklog(t *testing.T) {
	d, _, _, _, _, _ := setup(t)
	if err := d.Send(make([]byte, wire.BufSize+1)); err != ErrTooLong {
		t.Errorf("oversize: %v", err)
	}
	for i := 0; i < MaxPending; i++ {
		if err := d.Send([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Send([]byte{1}); err != ErrBacklog {
		t.Errorf("backlog: %v", err)
	}
}

func TestBadGuestInputNeedsResetAndKeepsCommands(t *testing.T) {
	d, _, irq, loader, listener, activate := setup(t)
	activate()
	listener.Mem.Write16(listener.Avail+2, 100) // avail index far ahead of a size-8 ring
	d.Notify(wire.QueueListener)
	if _, _, reset := irq.Counts(); reset != 1 {
		t.Fatalf("needs-reset reported %d times, want 1", reset)
	}
	if err := d.Send([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	loader.Post(nil, wire.BufSize, true)
	d.Notify(wire.QueueLoader)
	if loader.UsedIdx() != 0 {
		t.Fatal("a broken device delivered a command")
	}
	d.Reset()
	if _, pending, _ := d.Counts(); pending != 1 {
		t.Errorf("pending after reset %d, want the command kept for the next driver", pending)
	}
}

func TestSmallLoaderBufferNeedsReset(t *testing.T) {
	d, _, irq, loader, _, activate := setup(t)
	activate()
	loader.Post(nil, 4, true)
	d.Send([]byte("longer than four"))
	if _, _, reset := irq.Counts(); reset != 1 {
		t.Fatalf("needs-reset %d, want 1 for a loader buffer smaller than the command", reset)
	}
}

// A listener chain's readable length is the guest's to choose (descriptors
// may alias, up to 4 GiB in all): one longer than wire.BufSize is malformed
// and refused before anything is allocated for it. The old ReadAll
// allocated each chain's whole length: 256 such chains in one notify made
// the VMM die of OOM.
func TestOversizeListenerMessageNeedsResetWithoutAllocating(t *testing.T) {
	const huge = 16 << 20
	d, rec, irq, _, listener, activate := setupMemory(t, huge+1<<16)
	activate()
	listener.Post([]byte("fits"), wire.BufSize, false) // the largest message: taken
	for i := 0; i < 7; i++ {
		listener.Post(nil, huge, false) // aliasing 16 MiB buffers
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d.Notify(wire.QueueListener)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("taking the listener queue allocated %d bytes, for chains of %d", grew, huge)
	}
	if _, _, reset := irq.Counts(); reset != 1 {
		t.Fatalf("needs-reset %d, want 1 for a %d-byte listener message", reset, huge)
	}
	if len(rec.msgs) != 1 || len(rec.msgs[0]) != wire.BufSize || string(rec.msgs[0][:4]) != "fits" {
		t.Errorf("received %d messages; want only the first, of %d bytes", len(rec.msgs), wire.BufSize)
	}
	if _, _, received := d.Counts(); received != 1 {
		t.Errorf("received count %d, want 1", received)
	}
}

// One byte over wire.BufSize, split over two descriptors, is too long.
func TestListenerMessageOverBufSizeNeedsReset(t *testing.T) {
	d, rec, irq, _, listener, activate := setup(t)
	activate()
	mem := listener.Mem
	addr := listener.Post(nil, wire.BufSize, false)
	// Chain descriptor 0 to a 1-byte descriptor 1, by hand.
	mem.Write16(listener.Desc+12, 1) // VIRTQ_DESC_F_NEXT
	mem.Write16(listener.Desc+14, 1)
	mem.Write64(listener.Desc+16, addr)
	mem.Write32(listener.Desc+24, 1)
	d.Notify(wire.QueueListener)
	if _, _, reset := irq.Counts(); reset != 1 || len(rec.msgs) != 0 {
		t.Fatalf("needs-reset %d, %d messages received; want a reset and none for %d bytes", reset, len(rec.msgs), wire.BufSize+1)
	}
}
