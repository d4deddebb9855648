package probedev

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
	"github.com/tracevisor/tracevisor/wire"
)

type snapRig struct {
	dev              *Device
	rec              *received
	tr               *mmio.Transport
	loader, listener *virtiotest.Ring
}

func newSnapRig(t *testing.T, mem *guestmem.Memory) *snapRig {
	r := &snapRig{rec: &received{}}
	r.dev = New(r.rec.take)
	r.dev.now = func() int64 { return 42 }
	r.tr = mmio.New(r.dev, mem, nil)
	t.Cleanup(func() { r.tr.Close() })
	r.loader = &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x1400, Used: 0x1800, Buf: 0x4000, Size: 8}
	r.listener = &virtiotest.Ring{Mem: mem, Desc: 0x2000, Avail: 0x2400, Used: 0x2800, Buf: 0x8000, Size: 8}
	return r
}

func (r *snapRig) notify(q uint32) { virtiotest.SetReg(r.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, q) }

func (r *snapRig) postLoader() {
	r.loader.Post(nil, wire.BufSize, true)
	r.notify(wire.QueueLoader)
}

func (r *snapRig) event(msg string) {
	r.listener.Post([]byte(msg), uint32(len(msg)), false)
	r.notify(wire.QueueListener)
}

func (r *snapRig) loaderGot(i uint16) string {
	return string(r.loader.UsedBuffer(i, r.loader.UsedLen(i)))
}

// Commands waiting for loader buffers (one sent while paused, with a
// buffer posted) and a guest message notified while paused survive a
// restore: the restored device delivers each waiting command once, in
// order, hands the held message to its receiver once, and its counts go on
// from the saved ones.
func TestSnapshotRestoreContinues(t *testing.T) {
	a := newSnapRig(t, virtiotest.NewMemory(1<<16))
	virtiotest.Activate(t, a.tr, 0, a.loader, a.listener)
	a.postLoader()
	a.dev.Send([]byte("c1"))
	a.event("e1")
	a.dev.Send([]byte("c2")) // no loader buffer: waits

	a.tr.Pause()
	a.event("e2") // held back by the transport
	a.loader.Post(nil, wire.BufSize, true)
	a.dev.Send([]byte("c3")) // paused: waits though a buffer is posted
	if a.loader.UsedIdx() != 1 || a.listener.UsedIdx() != 1 || len(a.rec.msgs) != 1 {
		t.Fatalf("paused device moved: loader used %d, listener used %d, received %d",
			a.loader.UsedIdx(), a.listener.UsedIdx(), len(a.rec.msgs))
	}
	s := virtiotest.SaveState(t, a.tr)

	b := newSnapRig(t, virtiotest.CloneMemory(a.loader.Mem))
	b.loader, b.listener = a.loader.OnMemory(b.loader.Mem), a.listener.OnMemory(b.loader.Mem)
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if b.loader.UsedIdx() != 2 || b.loaderGot(1) != "c2" {
		t.Fatalf("restored loader: used %d, got %q; want 2, \"c2\"", b.loader.UsedIdx(), b.loaderGot(1))
	}
	if len(b.rec.msgs) != 1 || string(b.rec.msgs[0]) != "e2" || b.listener.UsedIdx() != 2 {
		t.Fatalf("restored receiver got %q, listener used %d; want [e2], 2", b.rec.msgs, b.listener.UsedIdx())
	}
	cfg := make([]byte, 8)
	b.dev.ReadConfig(0, cfg)
	if cfg[4] != 1 {
		t.Fatalf("boot_cmds %d after restore, want 1 (c3 waits)", cfg[4])
	}
	b.postLoader()
	if b.loader.UsedIdx() != 3 || b.loaderGot(2) != "c3" {
		t.Fatalf("next loader buffer: used %d, got %q; want 3, \"c3\"", b.loader.UsedIdx(), b.loaderGot(2))
	}
	if delivered, pending, rcvd := b.dev.Counts(); delivered != 3 || pending != 0 || rcvd != 2 {
		t.Fatalf("restored counts delivered %d pending %d received %d; want 3 0 2", delivered, pending, rcvd)
	}

	a.tr.Resume()
	if a.loader.UsedIdx() != 2 || a.loaderGot(1) != "c2" || len(a.rec.msgs) != 2 {
		t.Fatalf("original after Resume: loader used %d (%q), received %d", a.loader.UsedIdx(), a.loaderGot(1), len(a.rec.msgs))
	}
}

func TestRestoreRefusesHostilePending(t *testing.T) {
	a := newSnapRig(t, virtiotest.NewMemory(1<<16))
	virtiotest.Activate(t, a.tr, 0, a.loader, a.listener)
	s := virtiotest.SaveState(t, a.tr)
	for name, st := range map[string]State{
		"too many commands": {Pending: make([][]byte, MaxPending+1)},
		"command too long":  {Pending: [][]byte{make([]byte, wire.BufSize+1)}},
	} {
		s.Device, _ = json.Marshal(st)
		b := newSnapRig(t, virtiotest.NewMemory(1<<16))
		if err := b.tr.Restore(s); !errors.Is(err, mmio.ErrBadState) {
			t.Errorf("%s: Restore = %v, want ErrBadState", name, err)
		}
	}
}
