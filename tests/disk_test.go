package tests

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVirtioBlockReadWrite boots a guest with a raw image as /dev/vda: the
// guest's md5sum of the whole disk must equal the host's, and a sector the
// guest writes must land in the file.
func TestVirtioBlockReadWrite(t *testing.T) {
	t.Parallel()
	img := filepath.Join(t.TempDir(), "disk.img")
	data := make([]byte, 4<<20)
	rand.New(rand.NewSource(42)).Read(data)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	want := hex.EncodeToString(sum[:])

	r := vmm(t, "", "run", "--disk", img, "--", "sh", "-c",
		"md5sum /dev/vda; printf written-by-guest | dd of=/dev/vda bs=512 seek=3 conv=notrunc,sync 2>/dev/null; sync")
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	if !strings.Contains(r.stdout, want+"  /dev/vda") {
		t.Errorf("guest md5sum differs from the host's %s: %s", want, r)
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sector := after[3*512 : 4*512]
	if !bytes.HasPrefix(sector, []byte("written-by-guest")) || !bytes.Equal(sector[16:], make([]byte, 512-16)) {
		t.Errorf("sector 3 after the guest's write: %q", sector[:32])
	}
	if !bytes.Equal(after[:3*512], data[:3*512]) || !bytes.Equal(after[4*512:], data[4*512:]) {
		t.Error("the guest's write touched other sectors")
	}
}

func TestVirtioBlockReadOnly(t *testing.T) {
	t.Parallel()
	img := filepath.Join(t.TempDir(), "ro.img")
	data := bytes.Repeat([]byte("tracevisor"), 1<<16)[:512*1024]
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := vmm(t, "", "run", "--disk", img+",ro", "--", "sh", "-c",
		"cat /sys/block/vda/ro; printf x | dd of=/dev/vda conv=notrunc 2>/dev/null && echo write-succeeded || echo write-refused")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "1") || !strings.Contains(r.stdout, "write-refused") {
		t.Fatalf("want a read-only vda that refuses writes: %s", r)
	}
	after, _ := os.ReadFile(img)
	if !bytes.Equal(after, data) {
		t.Error("a read-only disk changed")
	}
}
