package tests

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	vm "github.com/tracevisor/tracevisor/vmm"
)

// diskLines is how many numbered lines the guest of
// TestSnapshotKeepsDiskWrites appends, syncing after each.
const diskLines = 60

// TestSnapshotKeepsDiskWrites: a guest appends numbered lines to a file on
// a mounted ext2 disk, syncing after each, so block writes are in flight
// most of the time. It is snapshotted paused mid-work, its disk image
// copied while it is paused (a snapshot does not hold disks) and its vmm
// stopped. The clone, restored on the copy, goes on, unmounts and powers
// off: the file holds every line once, in order, and e2fsck finds the file
// system clean.
func TestSnapshotKeepsDiskWrites(t *testing.T) {
	need(t)
	for _, tool := range []string{"mke2fs", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (package e2fsprogs; .ci/run installs it)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	script := fmt.Sprintf(`mkdir /tmp/m && mount -t ext2 /dev/vda /tmp/m || exit 7
n=0
while [ $n -lt %d ]; do n=$((n+1)); echo "line $n" >> /tmp/m/log; sync; echo "wrote $n"; done
umount /tmp/m || exit 8
echo unmounted`, diskLines)
	orig := startLiveGuest(t, "--disk", img, "--", "sh", "-c", script)
	orig.waitOutput(t, "the fifth line written", 3*time.Minute, func(out string) bool {
		return strings.Contains(out, "wrote 5\n")
	})
	snap := filepath.Join(dir, "snap")
	r := orig.call(api.Request{Op: api.OpSnapshot, Dir: snap, Paused: true})
	if r.Machine == nil || r.Machine.State != vm.StatePaused {
		t.Fatalf("snapshot answer %+v, want the guest paused", r.Machine)
	}
	if strings.Contains(orig.out.String(), "unmounted") {
		t.Fatalf("the guest had finished before the snapshot: nothing was in flight")
	}
	copyImg := filepath.Join(dir, "copy.img")
	copyFile(t, img, copyImg)
	if _, err := apiCall(orig.sock, api.Request{Op: api.OpStop, Reason: "snapshot taken"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-orig.done:
		orig.done <- err
	case <-time.After(time.Minute):
		t.Fatal("the original vmm did not exit in a minute after the API's stop")
	}

	res := vmm(t, "", "run", "--restore", snap, "--disk", copyImg)
	if res.code != 0 || !strings.Contains(res.stdout, "unmounted") {
		t.Fatalf("the clone did not finish the work and unmount: %s", res)
	}
	out, err := exec.Command("debugfs", "-R", "cat /log", copyImg).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("line %d of the file is %q (lost or repeated work); the file:\n%s", i+1, l, out)
		}
	}
	if len(lines) != diskLines {
		t.Fatalf("the file has %d lines, want %d", len(lines), diskLines)
	}
	if out, err := exec.Command("e2fsck", "-f", "-n", copyImg).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on the clone's disk: %v\n%s", err, out)
	}
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
