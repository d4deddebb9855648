package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMappingUse maps a file twice in this process, private and shared,
// touches some of its pages, and checks that mappingUse counts what is
// resident in those mappings only.
func TestMappingUse(t *testing.T) {
	const page, pages = 4096, 64
	path := filepath.Join(t.TempDir(), "memory")
	if err := os.WriteFile(path, make([]byte, page*pages), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mappingUse(os.Getpid(), path); err == nil {
		t.Fatal("mappingUse found a mapping of a file not mapped")
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
	u, err := mappingUse(os.Getpid(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Both mappings, and only them: the kernel may fault around a touched
	// page (up to 16), so resident is at least the 12 pages touched and
	// at most both mappings whole.
	if u.rss < 12*page || u.rss > 2*pages*page {
		t.Errorf("resident %d bytes; want 12 to %d pages of %d", u.rss, 2*pages, page)
	}
	if u.shared+u.private != u.rss {
		t.Errorf("shared %d + private %d != resident %d", u.shared, u.private, u.rss)
	}
	if rss, err := vmRSS(os.Getpid()); err != nil || rss < u.rss {
		t.Errorf("VmRSS %d, %v; want at least the mappings' %d", rss, err, u.rss)
	}
	if sum != 0 {
		t.Fatalf("the file reads %d, want zeros", sum)
	}
}
