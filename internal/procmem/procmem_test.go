package procmem

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileMapping maps a file twice in this process, touches some of its
// pages, and checks that FileMapping counts what is resident in those
// mappings only, and that RSS holds at least that.
func TestFileMapping(t *testing.T) {
	const page, pages = 4096, 64
	path := filepath.Join(t.TempDir(), "memory")
	if err := os.WriteFile(path, make([]byte, page*pages), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FileMapping(os.Getpid(), path); err == nil {
		t.Fatal("FileMapping found a mapping of a file not mapped")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var maps [][]byte
	for range 2 {
		b, err := syscall.Mmap(int(f.Fd()), 0, page*pages, syscall.PROT_READ, syscall.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		maps = append(maps, b)
	}
	defer func() {
		for _, b := range maps {
			syscall.Munmap(b)
		}
	}()
	// 8 pages through the first mapping, 4 through the second (sum is
	// checked: unused, the compiler drops the loads).
	sum := 0
	for i := range 8 {
		sum += int(maps[0][i*page])
	}
	for i := range 4 {
		sum += int(maps[1][i*page])
	}
	u, err := FileMapping(os.Getpid(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Both mappings, and only them: the kernel may fault around a touched
	// page (up to 16), so resident is at least the 12 pages touched and
	// at most both mappings whole.
	if u.RSS < 12*page || u.RSS > 2*pages*page {
		t.Errorf("resident %d bytes; want 12 to %d pages of %d", u.RSS, 2*pages, page)
	}
	if u.Shared+u.Private != u.RSS {
		t.Errorf("shared %d + private %d != resident %d", u.Shared, u.Private, u.RSS)
	}
	if rss, err := RSS(0); err != nil || rss < u.RSS {
		t.Errorf("VmRSS %d, %v; want at least the mappings' %d", rss, err, u.RSS)
	}
	if sum != 0 {
		t.Fatalf("the file reads %d, want zeros", sum)
	}
}
