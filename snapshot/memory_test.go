package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// testRAM returns two regions (16 pages at 0, 4 pages at 4 GiB) whose
// pages alternate data and zeros, every data page distinct.
func testRAM() []RAM {
	fill := func(pages int, seed byte) []byte {
		b := make([]byte, pages*PageSize)
		for p := 0; p < pages; p += 2 { // odd pages stay zero
			for i := 0; i < PageSize; i++ {
				b[p*PageSize+i] = seed + byte(p) + byte(i*7)
			}
		}
		return b
	}
	return []RAM{{GPA: 0, Data: fill(16, 1)}, {GPA: 4 << 30, Data: fill(4, 100)}}
}

// TestMemoryRoundTrip: two regions written, mapped privately and read back
// byte for byte at the recorded guest addresses; pages that were zero read
// as zero; the file is exactly the regions' size with each region at a
// page-aligned offset; VerifyMemory accepts it.
func TestMemoryRoundTrip(t *testing.T) {
	ram := testRAM()
	path := filepath.Join(t.TempDir(), MemoryFile)
	layout, err := WriteMemory(path, ram)
	if err != nil {
		t.Fatal(err)
	}
	if len(layout) != 2 || layout[0].Offset != 0 || layout[1].Offset != 16*PageSize || layout[1].GPA != 4<<30 || layout[1].Size != 4*PageSize {
		t.Fatalf("layout %+v", layout)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 20*PageSize {
		t.Fatalf("memory file: %v, %v", st, err)
	}
	if err := VerifyMemory(path, layout); err != nil {
		t.Fatal(err)
	}
	m, err := MapMemory(path, layout)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i, r := range m.Regions() {
		if r.GPA != ram[i].GPA || !bytes.Equal(r.Host, ram[i].Data) {
			t.Errorf("region %d at gpa %#x: read back differs", i, r.GPA)
		}
		if !bytes.Equal(r.Host[PageSize:2*PageSize], make([]byte, PageSize)) {
			t.Errorf("region %d: a zero page reads non-zero", i)
		}
	}
}

// TestMemorySparse: zero pages are holes, not written: the file takes
// (about) the disk of its data pages only.
func TestMemorySparse(t *testing.T) {
	dir := t.TempDir()
	// Does this file system keep holes at all?
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(probe, 1<<20); err != nil {
		t.Fatal(err)
	}
	if blocks(t, probe) != 0 {
		t.Skip("the test directory's file system does not keep holes")
	}
	big := make([]byte, 256*PageSize) // 1 MiB, one data page
	big[100*PageSize+5] = 1
	path := filepath.Join(dir, MemoryFile)
	if _, err := WriteMemory(path, []RAM{{GPA: 0, Data: big}}); err != nil {
		t.Fatal(err)
	}
	// One data page, rounded up to the file system's block (≤ 64 KiB).
	if got := blocks(t, path) * 512; got > 64<<10 {
		t.Errorf("a 1 MiB file with one data page takes %d bytes of disk", got)
	}
}

func blocks(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks
}

// TestMemoryCopyOnWrite: a write through a private mapping changes neither
// the file nor another mapping of it (a second clone), and the first
// mapping keeps its write.
func TestMemoryCopyOnWrite(t *testing.T) {
	ram := testRAM()
	path := filepath.Join(t.TempDir(), MemoryFile)
	layout, err := WriteMemory(path, ram)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := MapMemory(path, layout)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := MapMemory(path, layout)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ha, hb := a.Regions()[1].Host, b.Regions()[1].Host
	ha[10] ^= 0xff         // a data page
	ha[PageSize+10] = 0x5a // a hole
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("a write through a private mapping reached the file")
	}
	if hb[10] != ram[1].Data[10] || hb[PageSize+10] != 0 {
		t.Errorf("a write in one clone shows in the other")
	}
	if ha[10] != ram[1].Data[10]^0xff || ha[PageSize+10] != 0x5a {
		t.Errorf("the clone lost its own write")
	}
}

// TestMemoryRewriteWhileMapped: writing a new memory file over one that a
// clone maps leaves the clone's view intact (no truncation under it, which
// would be SIGBUS), and the new file holds the new contents.
func TestMemoryRewriteWhileMapped(t *testing.T) {
	ram := testRAM()
	path := filepath.Join(t.TempDir(), MemoryFile)
	layout, err := WriteMemory(path, ram)
	if err != nil {
		t.Fatal(err)
	}
	m, err := MapMemory(path, layout)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	small := []RAM{{GPA: 0, Data: bytes.Repeat([]byte{9}, PageSize)}}
	layout2, err := WriteMemory(path, small)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range m.Regions() {
		if !bytes.Equal(r.Host, ram[i].Data) {
			t.Errorf("region %d of the old mapping changed under a rewrite", i)
		}
	}
	if err := VerifyMemory(path, layout2); err != nil {
		t.Errorf("new file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestMemoryRefuses: a file of the wrong size, a changed byte, and regions
// that are not page-aligned are refused.
func TestMemoryRefuses(t *testing.T) {
	ram := testRAM()
	path := filepath.Join(t.TempDir(), MemoryFile)
	layout, err := WriteMemory(path, ram)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xee}, int64(layout[1].Offset)+3); err != nil {
		t.Fatal(err)
	}
	if err := VerifyMemory(path, layout); !errors.Is(err, ErrChecksum) {
		t.Errorf("changed byte: %v", err)
	}
	if err := f.Truncate(int64(layout[1].Offset)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if m, err := MapMemory(path, layout); !errors.Is(err, ErrMemory) || m != nil {
		t.Errorf("short file mapped: %v", err)
	}
	if err := VerifyMemory(path, layout); !errors.Is(err, ErrMemory) {
		t.Errorf("short file verified: %v", err)
	}
	for _, bad := range [][]RAM{
		{{GPA: 0, Data: make([]byte, PageSize+1)}},
		{{GPA: 100, Data: make([]byte, PageSize)}},
		{{GPA: 0, Data: nil}},
	} {
		if _, err := WriteMemory(path, bad); !errors.Is(err, ErrMemory) {
			t.Errorf("WriteMemory(gpa %#x, %d bytes): %v", bad[0].GPA, len(bad[0].Data), err)
		}
	}
	overlap := []RAM{{GPA: 0, Data: make([]byte, 2*PageSize)}, {GPA: PageSize, Data: make([]byte, PageSize)}}
	if _, err := WriteMemory(path, overlap); !errors.Is(err, ErrFormat) {
		t.Errorf("overlapping regions: %v", err)
	}
}
