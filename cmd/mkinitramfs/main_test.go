package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/guest-kernel/initramfs/initramfstest"
)

// fakeAppletsEnv is what the fake busybox lists: run with "--list-full", it
// prints the variable's value, or, for "fail:MSG", prints MSG to stderr and
// exits 1.
const fakeAppletsEnv = "MKINITRAMFS_TEST_FAKE_BUSYBOX"

const fakeBusyboxSource = `package main

import (
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "--list-full" {
		os.Stderr.WriteString("fake busybox: unexpected arguments\n")
		os.Exit(2)
	}
	list := os.Getenv("` + fakeAppletsEnv + `")
	if msg, failing := strings.CutPrefix(list, "fail:"); failing {
		os.Stderr.WriteString(msg + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString(list)
}
`

// fakeBinary is a statically linked x86-64 program built by TestMain: the
// fake busybox, and an init as good as any for layout tests. (The test
// binary itself links pflag, hence net and cgo: it is dynamic.)
var fakeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mkinitramfs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBinary, err = buildFakeBusybox(dir)
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the fake busybox: %v\n", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildFakeBusybox compiles fakeBusyboxSource in dir without cgo, so that
// the result is statically linked.
func buildFakeBusybox(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command, needed to build it, is not in PATH: %w", err)
	}
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(fakeBusyboxSource), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "busybox")
	cmd := exec.Command(goTool, "build", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return bin, nil
}

// fakeBusybox returns the fake busybox, set up to list applets.
func fakeBusybox(t *testing.T, applets string) string {
	t.Helper()
	t.Setenv(fakeAppletsEnv, applets)
	return fakeBinary
}

func TestRunBuildsBaseLayout(t *testing.T) {
	exe := fakeBusybox(t, "usr/bin/md5sum\nbin/sh\n\nlinuxrc\nbin/busybox\nsbin/init\n/usr/libexec/odd\n")
	exeData, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	archive, entries := buildArchive(t, filepath.Join(t.TempDir(), "sub", "initramfs.cpio"),
		"--all-applet-links", "--busybox", exe, "--init", exe)

	byName := make(map[string]initramfstest.Entry)
	for i, e := range entries {
		if parent := path.Dir(e.Name); parent != "." {
			p, ok := byName[parent]
			if !ok {
				t.Errorf("entry %d %q comes before its directory %q", i, e.Name, parent)
			} else if p.Mode&initramfstest.TypeMask != initramfstest.TypeDir {
				t.Errorf("%q lies under %q, mode %o, not a directory", e.Name, parent, p.Mode)
			}
		}
		byName[e.Name] = e
	}

	dirs := map[string]uint32{
		"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "dev": 0o755,
		"proc": 0o555, "sys": 0o555, "tmp": 0o1777, "run": 0o755, "root": 0o700, "etc": 0o755,
		"tracevisor": 0o755, "usr/libexec": 0o755,
	}
	for name, perm := range dirs {
		if e, ok := byName[name]; !ok || e.Mode != initramfstest.TypeDir|perm {
			t.Errorf("directory %q: present %v, mode %o; want %o", name, ok, e.Mode, initramfstest.TypeDir|perm)
		}
	}
	files := map[string]struct {
		mode uint32
		data string
	}{
		"init":        {initramfstest.TypeRegular | 0o755, string(exeData)},
		"bin/busybox": {initramfstest.TypeRegular | 0o755, string(exeData)},
		"etc/passwd":  {initramfstest.TypeRegular | 0o644, "root:x:0:0:root:/root:/bin/sh\n"},
		"etc/group":   {initramfstest.TypeRegular | 0o644, "root:x:0:\n"},
	}
	for name, want := range files {
		e, ok := byName[name]
		if !ok || e.Mode != want.mode || string(e.Data) != want.data {
			t.Errorf("file %q: present %v, mode %o, %d bytes; want mode %o, %d bytes",
				name, ok, e.Mode, len(e.Data), want.mode, len(want.data))
		}
	}
	devices := map[string][3]uint32{"dev/console": {0o600, 5, 1}, "dev/null": {0o666, 1, 3}}
	for name, want := range devices {
		e, ok := byName[name]
		if !ok || e.Mode != initramfstest.TypeCharDev|want[0] || e.RdevMajor != want[1] || e.RdevMinor != want[2] {
			t.Errorf("device %q: present %v, mode %o, %d:%d; want %o %d:%d",
				name, ok, e.Mode, e.RdevMajor, e.RdevMinor, initramfstest.TypeCharDev|want[0], want[1], want[2])
		}
	}
	links := []string{"usr/bin/md5sum", "bin/sh", "linuxrc", "sbin/init", "usr/libexec/odd"}
	for _, name := range links {
		e, ok := byName[name]
		if !ok || e.Mode&initramfstest.TypeMask != initramfstest.TypeSymlink || string(e.Data) != "/bin/busybox" {
			t.Errorf("applet %q: present %v, mode %o, target %q; want a symlink to /bin/busybox", name, ok, e.Mode, e.Data)
		}
	}
	if want := len(dirs) + len(files) + len(devices) + len(links); len(entries) != want {
		t.Errorf("archive holds %d entries, want %d", len(entries), want)
	}

	// The same inputs give the same bytes.
	again := filepath.Join(t.TempDir(), "again.cpio")
	if err := run([]string{"--all-applet-links", "--busybox", exe, "--init", exe, "-o", again}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if second, err := os.ReadFile(again); err != nil || !bytes.Equal(second, archive) {
		t.Errorf("second build differs from the first (err %v)", err)
	}
}

func TestRunHelp(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: mkinitramfs", "--busybox PATH", "--init PATH", "-o, --output FILE", "tracevisor/cmd", "busybox --list-full"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help output lacks %q:\n%s", want, out.String())
		}
	}
	if leftovers, _ := os.ReadDir(dir); len(leftovers) != 0 {
		t.Errorf("--help wrote files: %v", leftovers)
	}
}

func TestRunReportsUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"extra-argument"}} {
		err := run(args, new(bytes.Buffer))
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("run(%q): error %v, want a usage error", args, err)
		}
	}
}

func TestRunReportsBadInputs(t *testing.T) {
	exe := fakeBusybox(t, "bin/sh\n")
	dir := t.TempDir()
	text := filepath.Join(dir, "script")
	dynamic := filepath.Join(dir, "dynamic")
	for name, data := range map[string][]byte{text: []byte("#!/bin/sh\n"), dynamic: minimalELF(true)} {
		if err := os.WriteFile(name, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		what          string
		busybox, init string
		want          []string
	}{
		{"missing busybox", missing, exe, []string{"busybox binary " + missing + " does not exist", "apt-get install busybox-static", "--busybox"}},
		{"missing init", exe, missing, []string{"init binary " + missing + " does not exist", "make build/init", "--init"}},
		{"busybox is a directory", dir, exe, []string{"not a regular file"}},
		{"init is a script", exe, text, []string{"init binary " + text + " is not an ELF executable"}},
		{"dynamic busybox", dynamic, exe, []string{"busybox binary " + dynamic + " is dynamically linked", "install Debian's busybox-static"}},
		{"dynamic init", exe, dynamic, []string{"init binary " + dynamic + " is dynamically linked", "-static"}},
	}
	for _, c := range cases {
		out := filepath.Join(dir, "out.cpio")
		err := run([]string{"--busybox", c.busybox, "--init", c.init, "-o", out}, new(bytes.Buffer))
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one mentioning %q", c.what, err, want)
			}
		}
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("%s: the failed run left %s behind", c.what, out)
		}
	}
}

func TestRunReportsBusyboxFailures(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"fail:applet list unavailable": "applet list unavailable",
		"":                             "no applets listed",
		"bin/../../etc/x\n":            "not a clean path",
		"init/sh\n":                    `"init/sh" lies under "init", which is not a directory`,
	}
	for list, want := range cases {
		exe := fakeBusybox(t, list)
		out := filepath.Join(dir, "out.cpio")
		err := run([]string{"--all-applet-links", "--busybox", exe, "--init", exe, "-o", out}, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("applet list %q: error %v, want one mentioning %q", list, err, want)
		}
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("applet list %q: the failed run left %s behind", list, out)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(leftovers) != 0 {
			t.Errorf("applet list %q: temporary files left behind: %v", list, leftovers)
		}
	}
}

func TestDefaultLinksOnlyTheShell(t *testing.T) {
	exe := fakeBusybox(t, "bin/sh\nusr/bin/md5sum\n")
	_, entries := buildArchive(t, filepath.Join(t.TempDir(), "initramfs.cpio"), "--busybox", exe, "--init", exe)
	var links []string
	for _, e := range entries {
		if e.Mode&initramfstest.TypeMask == initramfstest.TypeSymlink {
			links = append(links, e.Name+" -> "+string(e.Data))
		}
	}
	if len(links) != 1 || links[0] != "bin/sh -> /bin/busybox" {
		t.Errorf("default archive links %v, want only bin/sh -> /bin/busybox", links)
	}
}

// buildArchive runs mkinitramfs with args writing to out, and returns the
// archive and its parsed entries.
func buildArchive(t *testing.T, out string, args ...string) ([]byte, []initramfstest.Entry) {
	t.Helper()
	if err := run(append(args, "-o", out), new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := initramfstest.Parse(archive)
	if err != nil {
		t.Fatalf("output is not one well-formed archive: %v", err)
	}
	return archive, entries
}
