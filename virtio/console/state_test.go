package console

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

type snapRig struct {
	dev    *Device
	out    *syncBuf
	tr     *mmio.Transport
	rx, tx *virtiotest.Ring
}

func newSnapRig(t *testing.T, mem *guestmem.Memory) *snapRig {
	r := &snapRig{out: &syncBuf{}}
	r.dev = New(r.out)
	r.tr = mmio.New(r.dev, mem, nil)
	t.Cleanup(func() { r.tr.Close() })
	r.rx = &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x1400, Used: 0x1800, Buf: 0x4000, Size: 8}
	r.tx = &virtiotest.Ring{Mem: mem, Desc: 0x2000, Avail: 0x2400, Used: 0x2800, Buf: 0x8000, Size: 8}
	return r
}

func (r *snapRig) write(s string) {
	r.tx.Post([]byte(s), uint32(len(s)), false)
	virtiotest.SetReg(r.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, transmitq)
}

// Output written before the snapshot, output notified while paused and
// input the guest has not taken yet: the restored console writes the held
// output once, hands the guest the pending input, and goes on; the paused
// original delivered nothing meanwhile.
func TestSnapshotRestoreContinues(t *testing.T) {
	a := newSnapRig(t, virtiotest.NewMemory(1<<16))
	virtiotest.Activate(t, a.tr, 0, a.rx, a.tx)
	a.write("one ")
	a.write("two ")
	a.dev.ReadFrom(strings.NewReader("typ")) // no receive buffer yet: held

	a.tr.Pause()
	a.write("three ")        // held back by the transport
	a.rx.Post(nil, 64, true) // a receive buffer, notified...
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, receiveq)
	a.dev.ReadFrom(strings.NewReader("ed")) // ...and input while paused
	if a.rx.UsedIdx() != 0 || a.tx.UsedIdx() != 2 || a.out.String() != "one two " {
		t.Fatalf("paused console moved: rx used %d, tx used %d, out %q", a.rx.UsedIdx(), a.tx.UsedIdx(), a.out.String())
	}
	s := virtiotest.SaveState(t, a.tr)

	b := newSnapRig(t, virtiotest.CloneMemory(a.rx.Mem))
	b.rx, b.tx = a.rx.OnMemory(b.rx.Mem), a.tx.OnMemory(b.tx.Mem)
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if b.out.String() != "three " || b.tx.UsedIdx() != 3 {
		t.Fatalf("restored console wrote %q, tx used %d; want the held output once, 3", b.out.String(), b.tx.UsedIdx())
	}
	if b.rx.UsedIdx() != 1 || string(b.rx.UsedBuffer(0, b.rx.UsedLen(0))) != "typed" {
		t.Fatalf("restored console: rx used %d, got %q, want \"typed\"", b.rx.UsedIdx(), b.rx.UsedBuffer(0, b.rx.UsedLen(0)))
	}
	b.write("four")
	if b.out.String() != "three four" || b.tx.UsedIdx() != 4 {
		t.Fatalf("after restore: out %q, tx used %d", b.out.String(), b.tx.UsedIdx())
	}

	a.tr.Resume()
	if a.out.String() != "one two three " || a.rx.UsedIdx() != 1 {
		t.Fatalf("original after Resume: out %q, rx used %d", a.out.String(), a.rx.UsedIdx())
	}
}

func TestRestoreRefusesOversizePending(t *testing.T) {
	a := newSnapRig(t, virtiotest.NewMemory(1<<16))
	virtiotest.Activate(t, a.tr, 0, a.rx, a.tx)
	s := virtiotest.SaveState(t, a.tr)
	raw, _ := json.Marshal(State{Pending: make([]byte, maxPending+1)})
	s.Device = raw
	b := newSnapRig(t, virtiotest.NewMemory(1<<16))
	if err := b.tr.Restore(s); !errors.Is(err, mmio.ErrBadState) {
		t.Fatalf("Restore with %d bytes pending = %v, want ErrBadState", maxPending+1, err)
	}
}
