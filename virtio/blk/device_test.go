package blk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

// Test guest layout: the request queue's rings, a request header and a
// status byte, then data buffers from dataBase.
const (
	hdrAddr    = 0x20000
	statusAddr = 0x20100
	dataBase   = 0x100000
)

// rig is a Device over a disk image, activated on a driver-side ring.
type rig struct {
	t    *testing.T
	path string
	disk *Disk
	dev  *Device
	mem  *guestmem.Memory
	ring *virtiotest.Ring
	irq  *virtiotest.IRQ
}

// newRig makes a sparse image of size bytes (its first bytes set to
// content), opens it and activates a device on memSize bytes of guest RAM.
func newRig(t *testing.T, size int64, content []byte, readOnly bool, memSize int) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	disk, err := Open(path, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	r := &rig{t: t, path: path, disk: disk, dev: NewDevice(disk), mem: virtiotest.NewMemory(memSize), irq: &virtiotest.IRQ{}}
	r.ring = &virtiotest.Ring{Mem: r.mem, Desc: 0x1000, Avail: 0x2000, Used: 0x3000, Buf: 0x4000, Size: QueueSize}
	if err := r.dev.Activate(mmio.ActivateContext{Queues: []mmio.QueueConfig{r.ring.Config()}, Mem: r.mem, Interrupt: r.irq}); err != nil {
		t.Fatal(err)
	}
	return r
}

// do posts one request (header, data, status byte) and runs it; it returns
// the status byte and the used length.
func (r *rig) do(typ uint32, sector uint64, data ...virtiotest.Buf) (byte, uint32) {
	r.t.Helper()
	h := hdr(typ, sector)
	r.mem.WriteAt(h[:], hdrAddr)
	r.mem.WriteAt([]byte{0xee}, statusAddr)
	bufs := append([]virtiotest.Buf{{Addr: hdrAddr, Len: headerSize}}, data...)
	bufs = append(bufs, virtiotest.Buf{Addr: statusAddr, Len: 1, Write: true})
	before := r.ring.UsedIdx()
	r.ring.PostChain(bufs...)
	r.dev.Notify(0)
	if r.ring.UsedIdx() != before+1 {
		r.t.Fatalf("used idx %d after one request, want %d", r.ring.UsedIdx(), before+1)
	}
	if _, _, resets := r.irq.Counts(); resets != 0 {
		r.t.Fatalf("device asked for a reset")
	}
	st, _ := r.mem.Read8(statusAddr)
	return st, r.ring.UsedLen(before)
}

func (r *rig) file() []byte {
	r.t.Helper()
	b, err := os.ReadFile(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// totalAlloc runs f and returns the bytes the Go heap allocated meanwhile.
func totalAlloc(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestConfigAdvertisesLimits(t *testing.T) {
	r := newRig(t, 8*SectorSize, nil, false, 1<<20)
	if f := r.dev.Features(); f&(1<<VIRTIO_BLK_F_SEG_MAX) == 0 || f&(1<<VIRTIO_BLK_F_SIZE_MAX) == 0 {
		t.Fatalf("features %#x lack SEG_MAX or SIZE_MAX", f)
	}
	var b [4]byte
	r.dev.ReadConfig(8, b[:])
	if got := binary.LittleEndian.Uint32(b[:]); got != SizeMax {
		t.Errorf("size_max = %d, want %d", got, SizeMax)
	}
	r.dev.ReadConfig(12, b[:])
	if got := binary.LittleEndian.Uint32(b[:]); got != SegMax {
		t.Errorf("seg_max = %d, want %d", got, SegMax)
	}
	var c [8]byte
	r.dev.ReadConfig(0, c[:])
	if got := binary.LittleEndian.Uint64(c[:]); got != 8 {
		t.Errorf("capacity = %d sectors, want 8", got)
	}
	// A full request (header, SegMax segments, status) fits the queue.
	if SegMax+2 > QueueSize {
		t.Errorf("seg_max %d + header + status exceeds the queue size %d", SegMax, QueueSize)
	}
}

func TestReadOnlyDiskRefusesWrite(t *testing.T) {
	orig := bytes.Repeat([]byte{0x5a}, 4*SectorSize)
	r := newRig(t, 4*SectorSize, orig, true, 1<<21)
	r.mem.WriteAt(bytes.Repeat([]byte{0xa5}, SectorSize), dataBase)
	st, n := r.do(VIRTIO_BLK_T_OUT, 1, virtiotest.Buf{Addr: dataBase, Len: SectorSize})
	if st != VIRTIO_BLK_S_IOERR || n != 1 {
		t.Fatalf("write to a read-only disk: status %d, used len %d; want IOERR, 1", st, n)
	}
	if !bytes.Equal(r.file(), orig) {
		t.Fatal("a refused write changed the image")
	}
	// Reads still work.
	st, n = r.do(VIRTIO_BLK_T_IN, 0, virtiotest.Buf{Addr: dataBase, Len: SectorSize, Write: true})
	got := make([]byte, SectorSize)
	r.mem.ReadAt(got, dataBase)
	if st != VIRTIO_BLK_S_OK || n != SectorSize+1 || !bytes.Equal(got, orig[:SectorSize]) {
		t.Fatalf("read from a read-only disk: status %d, used len %d", st, n)
	}
}

func TestReadWriteRoundTrip(t *testing.T) {
	r := newRig(t, 16*SectorSize, nil, false, 1<<21)
	want := make([]byte, 2*SectorSize)
	for i := range want {
		want[i] = byte(i*7 + 1)
	}
	// Written from three buffers of uneven sizes...
	r.mem.WriteAt(want[:512], dataBase)
	r.mem.WriteAt(want[512:768], dataBase+0x10000)
	r.mem.WriteAt(want[768:], dataBase+0x20000)
	st, n := r.do(VIRTIO_BLK_T_OUT, 3,
		virtiotest.Buf{Addr: dataBase, Len: 512},
		virtiotest.Buf{Addr: dataBase + 0x10000, Len: 256},
		virtiotest.Buf{Addr: dataBase + 0x20000, Len: 256})
	if st != VIRTIO_BLK_S_OK || n != 1 {
		t.Fatalf("write: status %d, used len %d", st, n)
	}
	if got := r.file()[3*SectorSize : 5*SectorSize]; !bytes.Equal(got, want) {
		t.Fatal("the image does not hold what was written")
	}
	// ...read back into two others.
	st, n = r.do(VIRTIO_BLK_T_IN, 3,
		virtiotest.Buf{Addr: dataBase + 0x30000, Len: 100, Write: true},
		virtiotest.Buf{Addr: dataBase + 0x40000, Len: 924, Write: true})
	got := make([]byte, 2*SectorSize)
	r.mem.ReadAt(got[:100], dataBase+0x30000)
	r.mem.ReadAt(got[100:], dataBase+0x40000)
	if st != VIRTIO_BLK_S_OK || n != 2*SectorSize+1 || !bytes.Equal(got, want) {
		t.Fatalf("read back: status %d, used len %d, data equal %v", st, n, bytes.Equal(got, want))
	}
	// Past the end of the disk: IOERR, nothing written to the guest.
	st, n = r.do(VIRTIO_BLK_T_IN, 15, virtiotest.Buf{Addr: dataBase, Len: 2 * SectorSize, Write: true})
	if st != VIRTIO_BLK_S_IOERR || n != 1 {
		t.Fatalf("read past the end: status %d, used len %d", st, n)
	}
}

// TestLargestRequestBoundedMemory: the largest request the device
// advertises (SegMax segments of SizeMax bytes, every one the same guest
// buffer, as a guest may alias them) moves 254 MiB with the heap growing by
// almost nothing: the data goes straight between the file and guest RAM.
func TestLargestRequestBoundedMemory(t *testing.T) {
	const total = SegMax * SizeMax
	marker := []byte("last segment")
	r := newRig(t, total, nil, false, 4<<20)
	// The last segment's bytes of the image start with a marker; the
	// aliased guest buffer ends up holding the last segment.
	f, err := os.OpenFile(r.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(marker, total-SizeMax)
	f.Close()
	r.mem.WriteAt(bytes.Repeat([]byte{0xff}, SizeMax), dataBase)

	segs := make([]virtiotest.Buf, SegMax)
	for i := range segs {
		segs[i] = virtiotest.Buf{Addr: dataBase, Len: SizeMax, Write: true}
	}
	var st byte
	var n uint32
	alloc := totalAlloc(func() { st, n = r.do(VIRTIO_BLK_T_IN, 0, segs...) })
	if st != VIRTIO_BLK_S_OK || n != total+1 {
		t.Fatalf("status %d, used len %d; want OK, %d", st, n, total+1)
	}
	got := make([]byte, SizeMax)
	r.mem.ReadAt(got, dataBase)
	if !bytes.HasPrefix(got, marker) || bytes.ContainsRune(got[len(marker):], 0xff) {
		t.Fatal("the guest buffer does not hold the image's last segment")
	}
	if alloc > 1<<20 {
		t.Fatalf("moving %d MiB allocated %d bytes", total>>20, alloc)
	}
}

// TestOverLimitRefused: the request that took a 256 MiB guest's VMM to
// 8.5 GB (66 descriptors of 62 MiB, all one buffer) and one with a
// segment more than SegMax are answered IOERR, counted, with nothing
// allocated or read; the device goes on serving.
func TestOverLimitRefused(t *testing.T) {
	r := newRig(t, 4<<30, nil, false, 64<<20)
	big := make([]virtiotest.Buf, 66)
	for i := range big {
		big[i] = virtiotest.Buf{Addr: dataBase, Len: 62 << 20, Write: true}
	}
	var st byte
	var n uint32
	alloc := totalAlloc(func() { st, n = r.do(VIRTIO_BLK_T_IN, 0, big...) })
	if st != VIRTIO_BLK_S_IOERR || n != 1 || r.disk.OverLimit() != 1 {
		t.Fatalf("66 x 62 MiB: status %d, used len %d, over-limit count %d", st, n, r.disk.OverLimit())
	}
	if alloc > 1<<20 {
		t.Fatalf("refusing the request allocated %d bytes", alloc)
	}

	// SegMax+1 data segments: the last one carries the status byte too, so
	// the chain still fits the queue.
	segs := make([]virtiotest.Buf, SegMax+1)
	for i := range segs {
		segs[i] = virtiotest.Buf{Addr: dataBase, Len: SectorSize, Write: true}
	}
	segs[SegMax].Len++
	h := hdr(VIRTIO_BLK_T_IN, 0)
	r.mem.WriteAt(h[:], hdrAddr)
	r.mem.WriteAt([]byte{0xee}, dataBase+SectorSize)
	r.ring.PostChain(append([]virtiotest.Buf{{Addr: hdrAddr, Len: headerSize}}, segs...)...)
	r.dev.Notify(0)
	st, _ = r.mem.Read8(dataBase + SectorSize)
	if r.ring.UsedIdx() != 2 || st != VIRTIO_BLK_S_IOERR || r.disk.OverLimit() != 2 {
		t.Fatalf("%d segments: used idx %d, status %d, over-limit count %d", SegMax+1, r.ring.UsedIdx(), st, r.disk.OverLimit())
	}

	// A segment of exactly SizeMax is served.
	if st, n := r.do(VIRTIO_BLK_T_IN, 0, virtiotest.Buf{Addr: dataBase, Len: SizeMax, Write: true}); st != VIRTIO_BLK_S_OK || n != SizeMax+1 {
		t.Fatalf("a SizeMax segment: status %d, used len %d", st, n)
	}
}

func TestRequestLimits(t *testing.T) {
	ok := &Request{Data: make([]Segment, SegMax)}
	for i := range ok.Data {
		ok.Data[i].Len = SizeMax
	}
	if err := ok.Limits(); err != nil {
		t.Fatalf("SegMax segments of SizeMax: %v", err)
	}
	if err := (&Request{Data: make([]Segment, SegMax+1)}).Limits(); err == nil {
		t.Error("SegMax+1 segments accepted")
	}
	if err := (&Request{Data: []Segment{{Len: SizeMax + 1}}}).Limits(); err == nil {
		t.Error("a segment over SizeMax accepted")
	}
}
