package blk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

// snapRig is a block device behind a transport, as the VMM runs it.
type snapRig struct {
	t    *testing.T
	mem  *guestmem.Memory
	dev  *Device
	tr   *mmio.Transport
	ring *virtiotest.Ring
}

func openDisk(t *testing.T, path string) *Disk {
	t.Helper()
	disk, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	return disk
}

func newSnapRig(t *testing.T, path string, mem *guestmem.Memory) *snapRig {
	r := &snapRig{t: t, mem: mem, dev: NewDevice(openDisk(t, path))}
	r.tr = mmio.New(r.dev, mem, nil)
	t.Cleanup(func() { r.tr.Close() })
	r.ring = &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x2000, Used: 0x3000, Buf: 0x4000, Size: 16}
	return r
}

// post puts one request for sector on the ring, its data at dataBase +
// slot*SectorSize and header and status byte in slot's own place too,
// and notifies; it returns where the status byte is.
func (r *snapRig) post(typ uint32, sector uint64, slot uint64, data []byte) uint64 {
	h := hdr(typ, sector)
	ha, sa, da := hdrAddr+slot*0x20, statusAddr+slot, dataBase+slot*SectorSize
	r.mem.WriteAt(h[:], ha)
	r.mem.WriteAt([]byte{0xee}, sa)
	if typ == VIRTIO_BLK_T_OUT {
		r.mem.WriteAt(data, da)
	}
	r.ring.PostChain(virtiotest.Buf{Addr: ha, Len: headerSize},
		virtiotest.Buf{Addr: da, Len: SectorSize, Write: typ == VIRTIO_BLK_T_IN},
		virtiotest.Buf{Addr: sa, Len: 1, Write: true})
	virtiotest.SetReg(r.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, 0)
	return sa
}

func sectorData(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, SectorSize) }

// A disk written by three requests, with a fourth write notified while
// paused, is restored onto the reopened image and a copy of memory: the
// held write is done exactly once, the next request lands in the next used
// slot, and reads see every write.
func TestSnapshotRestoreContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, 16*SectorSize), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newSnapRig(t, path, virtiotest.NewMemory(1<<21))
	virtiotest.Activate(t, a.tr, 1<<queue.VIRTIO_RING_F_EVENT_IDX|1<<queue.VIRTIO_RING_F_INDIRECT_DESC, a.ring)
	for i := 0; i < 3; i++ {
		a.post(VIRTIO_BLK_T_OUT, uint64(i), uint64(i), sectorData(i))
	}
	if a.ring.UsedIdx() != 3 {
		t.Fatalf("used idx %d before the snapshot", a.ring.UsedIdx())
	}
	a.tr.Pause()
	held := a.post(VIRTIO_BLK_T_OUT, 3, 3, sectorData(3))
	s := virtiotest.SaveState(t, a.tr)
	if a.ring.UsedIdx() != 3 {
		t.Fatalf("paused device served a request")
	}

	b := newSnapRig(t, path, virtiotest.CloneMemory(a.mem))
	b.ring = a.ring.OnMemory(b.mem)
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if st, _ := b.mem.Read8(held); b.ring.UsedIdx() != 4 || st != VIRTIO_BLK_S_OK {
		t.Fatalf("held write after restore: used idx %d, status %#x", b.ring.UsedIdx(), st)
	}
	img, _ := os.ReadFile(path)
	if !bytes.Equal(img[3*SectorSize:4*SectorSize], sectorData(3)) {
		t.Fatal("the held write did not reach the image")
	}
	for i := 0; i < 4; i++ {
		st := b.post(VIRTIO_BLK_T_IN, uint64(i), uint64(4+i), nil)
		got := make([]byte, SectorSize)
		b.mem.ReadAt(got, dataBase+uint64(4+i)*SectorSize)
		if s, _ := b.mem.Read8(st); s != VIRTIO_BLK_S_OK || !bytes.Equal(got, sectorData(i)) {
			t.Fatalf("read of sector %d after restore: status %#x, data ok %v", i, s, bytes.Equal(got, sectorData(i)))
		}
	}
	if b.ring.UsedIdx() != 8 {
		t.Fatalf("used idx %d after 4 more requests, want 8", b.ring.UsedIdx())
	}
	if virtiotest.Reg(b.tr, mmio.VIRTIO_MMIO_STATUS)&mmio.VIRTIO_CONFIG_S_NEEDS_RESET != 0 {
		t.Fatal("restored device needs a reset")
	}
}

// The image is reopened, not saved: one of another size is refused, as is
// a device state of another layout.
func TestRestoreRefusesOtherDisk(t *testing.T) {
	dir := t.TempDir()
	path, small := filepath.Join(dir, "disk.img"), filepath.Join(dir, "small.img")
	os.WriteFile(path, make([]byte, 16*SectorSize), 0o600)
	os.WriteFile(small, make([]byte, 8*SectorSize), 0o600)
	a := newSnapRig(t, path, virtiotest.NewMemory(1<<21))
	virtiotest.Activate(t, a.tr, 0, a.ring)
	s := virtiotest.SaveState(t, a.tr)

	b := newSnapRig(t, small, virtiotest.NewMemory(1<<21))
	if err := b.tr.Check(s); !errors.Is(err, mmio.ErrStateMismatch) {
		t.Fatalf("Check onto a smaller disk = %v, want ErrStateMismatch (before any restore)", err)
	}
	if err := b.tr.Restore(s); !errors.Is(err, mmio.ErrStateMismatch) {
		t.Fatalf("Restore onto a smaller disk = %v, want ErrStateMismatch", err)
	}
	s.Device = []byte(`{"capacity":16,"broken":false,"inflight":1}`)
	c := newSnapRig(t, path, virtiotest.NewMemory(1<<21))
	if err := c.tr.Restore(s); !errors.Is(err, mmio.ErrBadState) {
		t.Fatalf("Restore of a device state with an unknown field = %v, want ErrBadState", err)
	}
}
