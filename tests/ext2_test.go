package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExt2DiskMountedInGuest builds an ext2 image on the host (mke2fs -d),
// mounts it in the guest over virtio-blk, reads the host's file and writes
// one back, which the host then reads out of the image with debugfs.
func TestExt2DiskMountedInGuest(t *testing.T) {
	t.Parallel()
	need(t)
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (package e2fsprogs; .ci/run installs it)", tool)
		}
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("made-on-the-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", root, img, "4096").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	r := vmm(t, "", "run", "--disk", img, "--", "sh", "-c",
		"mkdir /tmp/m && mount -t ext2 /dev/vda /tmp/m && cat /tmp/m/hello.txt && echo made-in-the-guest > /tmp/m/back.txt && umount /tmp/m")
	if r.code != 0 || !strings.Contains(r.stdout, "made-on-the-host") {
		t.Fatalf("guest could not mount and read the image: %s", r)
	}
	out, err := exec.Command("debugfs", "-R", "cat /back.txt", img).Output()
	if err != nil || strings.TrimSpace(string(out)) != "made-in-the-guest" {
		t.Fatalf("file written by the guest: %q, %v", out, err)
	}
}
