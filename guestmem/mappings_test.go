package guestmem

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tracevisor/tracevisor/snapshot"
)

// mappedSnapshot writes MinSize bytes of guest RAM (a marker in its first
// and last pages) as a snapshot memory file and maps it back privately.
func mappedSnapshot(t *testing.T) (path string, want []byte, m *snapshot.Mapping) {
	t.Helper()
	want = make([]byte, MinSize)
	copy(want, "first page")
	copy(want[MinSize-snapshot.PageSize:], "last page")
	path = filepath.Join(t.TempDir(), snapshot.MemoryFile)
	layout, err := snapshot.WriteMemory(path, []snapshot.RAM{{GPA: 0, Data: want}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err = snapshot.MapMemory(path, layout); err != nil {
		t.Fatal(err)
	}
	return path, want, m
}

func regionsOf(m *snapshot.Mapping) []Region {
	var rs []Region
	for _, r := range m.Regions() {
		rs = append(rs, Region{GPA: r.GPA, Host: r.Host})
	}
	return rs
}

// Guest RAM made of a snapshot's copy-on-write mappings reads the file's
// bytes through the bounds-checked accessors, keeps its writes to itself
// (neither the file nor another mapping of it sees them), refuses what is
// out of bounds, and is released by Close exactly once.
func TestFromMappingsIsCopyOnWriteGuestRAM(t *testing.T) {
	path, want, mapping := mappedSnapshot(t)
	releases := 0
	mem, err := FromMappings(regionsOf(mapping), func() error { releases++; return mapping.Close() })
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 9)
	if err := mem.ReadAt(got, MinSize-snapshot.PageSize); err != nil || string(got) != "last page" {
		t.Fatalf("last page reads %q, %v", got, err)
	}
	if err := mem.Write64(8, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	if v, err := mem.Read64(8); err != nil || v != 0x1122334455667788 {
		t.Fatalf("Read64 after Write64 = %#x, %v", v, err)
	}
	if _, err := mem.Slice(MinSize-4, 8); !errors.Is(err, ErrOutOfBounds) {
		t.Errorf("a read past the last region: %v, want ErrOutOfBounds", err)
	}
	if mem.Size() != MinSize || mem.Regions()[0].HostAddr() == 0 {
		t.Errorf("Size %#x, HostAddr %#x", mem.Size(), mem.Regions()[0].HostAddr())
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, want) {
		t.Error("a write to guest RAM reached the snapshot's memory file")
	}
	other, err := snapshot.MapMemory(path, []snapshot.Region{{GPA: 0, Size: MinSize}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if !bytes.Equal(other.Regions()[0].Host[:16], want[:16]) {
		t.Error("another mapping of the file sees this guest's write")
	}

	host := mem.Regions()[0].Host
	if err := mem.Close(); err != nil {
		t.Fatal(err)
	}
	if releases != 1 {
		t.Fatalf("Close called release %d times, want 1", releases)
	}
	// mincore(2) fails with ENOMEM on an address range that is not mapped.
	if err := mincore(host[:snapshot.PageSize], make([]byte, 1)); !errors.Is(err, syscall.ENOMEM) {
		t.Errorf("mincore on the region after Close: %v, want ENOMEM (unmapped)", err)
	}
	if err := mem.Close(); err != nil || releases != 1 {
		t.Errorf("a second Close: %v, release called %d times in all", err, releases)
	}
	if _, err := mem.Slice(0, 1); !errors.Is(err, ErrOutOfBounds) {
		t.Errorf("an access after Close: %v, want ErrOutOfBounds", err)
	}
}

// Region sets New would not have made are refused, naming what is wrong,
// and nothing is released.
func TestFromMappingsRefusesBadRegions(t *testing.T) {
	const page = 4096
	buf, err := unix.Mmap(-1, 0, int(MinSize)+2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	ram := buf[:MinSize]
	if _, err := FromMappings([]Region{{GPA: 0, Host: ram}}, nil); err != nil {
		t.Fatalf("a well-formed region refused: %v", err)
	}
	half := MinSize / 2
	for _, tc := range []struct {
		name    string
		regions []Region
		want    string
	}{
		{"none", nil, "no regions"},
		{"empty region", []Region{{GPA: 0, Host: ram}, {GPA: MMIOHoleEnd, Host: nil}}, "is empty"},
		{"unaligned gpa", []Region{{GPA: 0x800, Host: ram}}, "not page-aligned"},
		{"unaligned size", []Region{{GPA: 0, Host: ram[:MinSize-0x800]}}, "not page-aligned"},
		{"unaligned host", []Region{{GPA: 0, Host: buf[0x800 : 0x800+MinSize]}}, "host mapping"},
		{"wraps", []Region{{GPA: ^uint64(page - 1), Host: buf[:2*page]}}, "wraps"},
		{"overlap", []Region{{GPA: 0, Host: ram[:half]}, {GPA: half - page, Host: ram[half:]}}, "overlaps region 0"},
		{"out of order", []Region{{GPA: half, Host: ram[half:]}, {GPA: 0, Host: ram[:half]}}, "out of order"},
		{"in the MMIO hole", []Region{{GPA: MMIOHoleStart - half, Host: ram}}, "MMIO hole"},
		{"below the minimum", []Region{{GPA: 0, Host: ram[:MinSize-page]}}, "below the minimum"},
		{"not at 0", []Region{{GPA: 1 << 20, Host: ram}}, "New lays out"},
		{"split", []Region{{GPA: 0, Host: ram[:half]}, {GPA: half, Host: ram[half:]}}, "in 2 regions"},
	} {
		released := false
		_, err := FromMappings(tc.regions, func() error { released = true; return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: FromMappings error %v, want one saying %q", tc.name, err, tc.want)
		}
		if released {
			t.Errorf("%s: a refused region set was released", tc.name)
		}
	}
}
