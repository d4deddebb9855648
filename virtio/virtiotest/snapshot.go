package virtiotest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
)

// Helpers for snapshot tests (issue 12): drive a Transport's registers as
// Linux's virtio_mmio driver does, save its state, restore it elsewhere.

// Reg reads the 32-bit transport register at off.
func Reg(tr *mmio.Transport, off uint64) uint32 {
	var b [4]byte
	tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// SetReg writes v to the 32-bit transport register at off.
func SetReg(tr *mmio.Transport, off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	tr.Write(off, b[:])
}

// Activate brings tr's device up as a driver does: reset, ACKNOWLEDGE,
// DRIVER, features|VIRTIO_F_VERSION_1, FEATURES_OK, queue i set up on
// rings[i] (nil: left disabled), DRIVER_OK. It fails t unless the status
// ends with DRIVER_OK and without NEEDS_RESET.
func Activate(t testing.TB, tr *mmio.Transport, features uint64, rings ...*Ring) {
	t.Helper()
	features |= mmio.VIRTIO_F_VERSION_1
	add := func(bit uint32) { SetReg(tr, mmio.VIRTIO_MMIO_STATUS, Reg(tr, mmio.VIRTIO_MMIO_STATUS)|bit) }
	SetReg(tr, mmio.VIRTIO_MMIO_STATUS, 0)
	add(mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE)
	add(mmio.VIRTIO_CONFIG_S_DRIVER)
	for sel := uint32(0); sel < 2; sel++ {
		SetReg(tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel)
		SetReg(tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES, uint32(features>>(32*sel)))
	}
	add(mmio.VIRTIO_CONFIG_S_FEATURES_OK)
	for i, r := range rings {
		if r == nil {
			continue
		}
		SetReg(tr, mmio.VIRTIO_MMIO_QUEUE_SEL, uint32(i))
		SetReg(tr, mmio.VIRTIO_MMIO_QUEUE_NUM, uint32(r.Size))
		for _, a := range []struct {
			low  uint64
			addr uint64
		}{{mmio.VIRTIO_MMIO_QUEUE_DESC_LOW, r.Desc}, {mmio.VIRTIO_MMIO_QUEUE_AVAIL_LOW, r.Avail}, {mmio.VIRTIO_MMIO_QUEUE_USED_LOW, r.Used}} {
			SetReg(tr, a.low, uint32(a.addr))
			SetReg(tr, a.low+4, uint32(a.addr>>32))
		}
		SetReg(tr, mmio.VIRTIO_MMIO_QUEUE_READY, 1)
	}
	add(mmio.VIRTIO_CONFIG_S_DRIVER_OK)
	const want = mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE | mmio.VIRTIO_CONFIG_S_DRIVER |
		mmio.VIRTIO_CONFIG_S_FEATURES_OK | mmio.VIRTIO_CONFIG_S_DRIVER_OK
	if st := Reg(tr, mmio.VIRTIO_MMIO_STATUS); st != want {
		t.Fatalf("status %#x after activation, want %#x", st, want)
	}
}

// CloneMemory returns a copy of mem, as a restore from a snapshot gives the
// restored guest its own memory.
func CloneMemory(mem *guestmem.Memory) *guestmem.Memory {
	var rs []guestmem.Region
	for _, r := range mem.Regions() {
		rs = append(rs, guestmem.Region{GPA: r.GPA, Host: bytes.Clone(r.Host)})
	}
	return guestmem.FromRegions(rs...)
}

// OnMemory returns a copy of r (the driver's cursors included) whose rings
// are in mem: the restored guest's view of the same queue.
func (r *Ring) OnMemory(mem *guestmem.Memory) *Ring {
	c := *r
	c.Mem = mem
	return &c
}

// SaveState pauses tr and returns its State after a JSON round trip, as
// the snapshot file stores it (decoded with unknown fields refused); it
// fails t unless the round trip gives back the same value and the same
// bytes. tr stays paused.
func SaveState(t testing.TB, tr *mmio.Transport) mmio.State {
	t.Helper()
	tr.Pause()
	s, err := tr.State()
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal State: %v", err)
	}
	var back mmio.State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode State %s: %v", b, err)
	}
	b2, err := json.Marshal(back)
	if err != nil || !bytes.Equal(b, b2) || !reflect.DeepEqual(s, back) {
		t.Fatalf("State JSON round trip differs:\n%s\n%s", b, b2)
	}
	return back
}
