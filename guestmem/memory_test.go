package guestmem

import (
	"errors"
	"testing"
)

func TestLayout(t *testing.T) {
	l, err := Layout(256 << 20)
	if err != nil || len(l) != 1 || l[0] != [2]uint64{0, 256 << 20} {
		t.Fatalf("Layout(256M) = %v, %v", l, err)
	}
	l, err = Layout(4 << 30)
	if err != nil || len(l) != 2 || l[0] != [2]uint64{0, MMIOHoleStart} || l[1] != [2]uint64{MMIOHoleEnd, 4<<30 - MMIOHoleStart} {
		t.Fatalf("Layout(4G) = %v, %v", l, err)
	}
	if _, err := Layout(8 << 20); err == nil {
		t.Error("Layout(8M) accepted a guest below MinSize")
	}
	if _, err := Layout(MinSize + 1); err == nil {
		t.Error("Layout accepted a size that is not page aligned")
	}
}

func TestBoundsChecks(t *testing.T) {
	low := make([]byte, 0x1000)
	high := make([]byte, 0x1000)
	m := FromRegions(Region{GPA: 0, Host: low}, Region{GPA: 0x10000, Host: high})
	if err := m.Write32(0xffc, 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Read32(0xffc); err != nil || v != 0xdeadbeef {
		t.Fatalf("Read32 = %#x, %v", v, err)
	}
	for _, tc := range []struct{ gpa, n uint64 }{
		{0xffd, 4},            // runs off the end of the low region
		{0x1000, 1},           // the gap
		{0x10ff0, 0x20},       // runs off the high region
		{^uint64(0) - 2, 8},   // wraps around
		{0x10000, ^uint64(0)}, // absurd length
	} {
		if _, err := m.Slice(tc.gpa, tc.n); !errors.Is(err, ErrOutOfBounds) {
			t.Errorf("Slice(%#x, %#x) err = %v, want ErrOutOfBounds", tc.gpa, tc.n, err)
		}
	}
	if err := m.WriteAt([]byte{1, 2, 3}, 0x10ffd); err != nil {
		t.Fatal(err)
	}
	if high[0xffd] != 1 || high[0xfff] != 3 {
		t.Error("WriteAt did not land in the high region")
	}
	if !m.Contains(0x10000, 0x1000) || m.Contains(0x10000, 0x1001) {
		t.Error("Contains disagrees with the region bounds")
	}
	if m.Size() != 0x2000 {
		t.Errorf("Size = %#x", m.Size())
	}
}

func TestNewMapsZeroedRAM(t *testing.T) {
	m, err := New(MinSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if v, err := m.Read64(MinSize - 8); err != nil || v != 0 {
		t.Fatalf("last word = %#x, %v", v, err)
	}
	if m.Regions()[0].HostAddr() == 0 {
		t.Error("HostAddr of a mapped region is 0")
	}
}

func TestResidentBytesCountsTouchedPages(t *testing.T) {
	m, err := New(MinSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before, err := m.ResidentBytes()
	if err != nil {
		t.Fatal(err)
	}
	for gpa := uint64(0); gpa < 64*4096; gpa += 4096 {
		m.Write32(gpa, 1)
	}
	after, err := m.ResidentBytes()
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 64*4096 {
		t.Errorf("touching 64 pages grew residency by %d bytes, want %d", after-before, 64*4096)
	}
}
