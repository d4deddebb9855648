package initramfs

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

// GNU cpio, an implementation written apart from ours, extracts our archive
// to the tree we described.
func TestGNUCpioExtractsArchive(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		testenv.Missing(t, testenv.Cpio, "cpio is not installed (Debian: apt-get install cpio); skipping the cross-check with GNU cpio")
	}
	// Creating device nodes needs root; as another user, leave them out.
	withDevices := os.Geteuid() == 0

	var b bytes.Buffer
	w := NewWriter(&b)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.AddDir("bin", 0o755))
	must(w.AddDir("dev", 0o755))
	must(w.AddDir("etc", 0o750))
	must(w.AddDir("tmp", 0o777|fs.ModeSticky))
	must(w.AddFile("bin/busybox", 0o755, []byte("\x7fELF not really")))
	must(w.AddFile("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")))
	must(w.AddFile("etc/empty", 0o600, nil))
	must(w.AddSymlink("bin/sh", "/bin/busybox"))
	must(w.AddSymlink("bin/ls", "busybox"))
	if withDevices {
		must(w.AddCharDevice("dev/console", 0o600, 5, 1))
		must(w.AddCharDevice("dev/null", 0o666, 1, 3))
	}
	must(w.Close())

	dir := t.TempDir()
	cmd := exec.Command(cpio, "-idm", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("cpio -idm: %v, output:\n%s", err, out)
	}

	dirs := map[string]fs.FileMode{"bin": 0o755, "dev": 0o755, "etc": 0o750, "tmp": 0o777 | fs.ModeSticky}
	for name, perm := range dirs {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != perm {
			t.Errorf("%s: mode %v, want directory %v", name, fi.Mode(), perm)
		}
	}
	files := map[string]struct {
		perm fs.FileMode
		data string
	}{
		"bin/busybox": {0o755, "\x7fELF not really"},
		"etc/passwd":  {0o644, "root:x:0:0:root:/root:/bin/sh\n"},
		"etc/empty":   {0o600, ""},
	}
	for name, want := range files {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != want.perm || string(data) != want.data {
			t.Errorf("%s: mode %v holding %q, want regular %v holding %q", name, fi.Mode(), data, want.perm, want.data)
		}
		if fi.ModTime().Unix() != 0 {
			t.Errorf("%s: mtime %v, want the epoch (-m keeps the archive's 0)", name, fi.ModTime())
		}
	}
	for name, target := range map[string]string{"bin/sh": "/bin/busybox", "bin/ls": "busybox"} {
		got, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || got != target {
			t.Errorf("%s: link to %q (%v), want %q", name, got, err, target)
		}
	}
	if !withDevices {
		t.Log("not root: device nodes left out of the cpio cross-check")
		return
	}
	for name, want := range map[string][3]uint32{"dev/console": {0o600, 5, 1}, "dev/null": {0o666, 1, 3}} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Fatalf("%s: no stat data", name)
		}
		mode, major, minor := uint32(fi.Mode().Perm()), unix.Major(st.Rdev), unix.Minor(st.Rdev)
		if fi.Mode()&fs.ModeCharDevice == 0 || mode != want[0] || major != want[1] || minor != want[2] {
			t.Errorf("%s: mode %v, device %d:%d; want character device %o %d:%d", name, fi.Mode(), major, minor, want[0], want[1], want[2])
		}
	}
}
