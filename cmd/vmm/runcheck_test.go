package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/wire"
)

// runFlagsForTest are the run flags' defaults with a kernel and initrd
// that do not exist: a run that got past its checks would fail on the
// kernel, before KVM, instead of booting.
func runFlagsForTest() runFlags {
	return runFlags{mem: "256M", cpus: 1, console: "serial", profile: "auto",
		kernel: "/nonexistent/vmlinux", initrd: "/nonexistent/initramfs.cpio"}
}

func meminfoOf(totalKB uint64) func() ([]byte, error) {
	return func() ([]byte, error) {
		return fmt.Appendf(nil, "MemFree:         123456 kB\nMemTotal:       %d kB\nMemAvailable:    654321 kB\n", totalKB), nil
	}
}

func wantErr(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want an error with %q", what, wants)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q, want one with %q", what, err, w)
		}
	}
}

func TestMemAboveHostRAMIsRefused(t *testing.T) {
	oneGiB := meminfoOf(1 << 20)
	for _, ok := range []string{"256M", "1G", "1024M"} {
		f := runFlagsForTest()
		f.mem = ok
		if _, err := checkRun(f, oneGiB); err != nil {
			t.Errorf("--mem %s on a 1 GiB host: %v", ok, err)
		}
	}
	f := runFlagsForTest()
	f.mem = "1025M"
	_, err := checkRun(f, oneGiB)
	wantErr(t, "--mem 1025M on a 1 GiB host", err, "--mem 1025M", "only 1024 MiB")

	// run uses the host's /proc/meminfo, before it opens the kernel.
	if b, err := procMeminfo(); err == nil {
		if total, err := memTotal(b); err == nil && total < 1<<40 {
			f := runFlagsForTest()
			f.mem = "1024G"
			_, err := run(f, []string{"true"})
			wantErr(t, "run --mem 1024G", err, "--mem 1024G", "MiB of RAM")
		}
	}

	// Unreadable or odd meminfo: no host check, the layout still is.
	for name, mi := range map[string]func() ([]byte, error){
		"unreadable":  func() ([]byte, error) { return nil, errors.New("no /proc") },
		"no MemTotal": func() ([]byte, error) { return []byte("MemFree: 1 kB\n"), nil },
	} {
		f.mem = "512G"
		if _, err := checkRun(f, mi); err != nil {
			t.Errorf("%s meminfo: %v", name, err)
		}
		f.mem = "65537K"
		_, err := checkRun(f, mi)
		wantErr(t, name+" meminfo, --mem 65537K", err, "page size")
	}
}

func TestMemTotal(t *testing.T) {
	if n, err := memTotal([]byte("MemTotal:       16318440 kB\nMemFree: 1 kB\n")); err != nil || n != 16318440<<10 {
		t.Errorf("memTotal = %d, %v", n, err)
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: lots kB\n", "MemTotal: 12 MB\n", "MemTotal: 0 kB\n"} {
		if n, err := memTotal([]byte(bad)); err == nil {
			t.Errorf("memTotal(%q) = %d, want an error", bad, n)
		}
	}
}

func TestTooManyProbesAreRefusedBeforeBoot(t *testing.T) {
	specs := func(n int, format string) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(format, i))
		}
		return s
	}
	if got, err := parseProbes(specs(wire.MaxProbes, "p:p%d do_exit")); err != nil || len(got) != wire.MaxProbes {
		t.Errorf("%d probes: %d, %v", wire.MaxProbes, len(got), err)
	}
	_, err := parseProbes(specs(wire.MaxProbes+1, "p:p%d do_exit"))
	wantErr(t, "65 probes", err, "65 probes", fmt.Sprintf("at most %d", wire.MaxProbes))
	// A catalogue entry counts as the probes it names (catalogue:oom, two).
	_, err = parseProbes(specs(wire.MaxProbes/2+1, "catalogue:oom:comm=s%d"))
	wantErr(t, "33 catalogue:oom", err, "66 probes")

	// run refuses them before it opens the kernel.
	f := runFlagsForTest()
	f.probes = specs(wire.MaxProbes+1, "p:p%d do_exit")
	_, err = run(f, []string{"true"})
	wantErr(t, "run with 65 probes", err, "--probe", "at most 64")
}

func TestNeverStartedLineOnlyWhenTheGuestRan(t *testing.T) {
	specs, err := parseProbes([]string{"catalogue:signal"})
	if err != nil {
		t.Fatal(err)
	}
	const line = "never started"
	for _, tc := range []struct {
		name     string
		guestRan bool
		hello    bool
		want     bool
	}{
		{"the guest never ran", false, false, false},
		{"the guest ran, no hello", true, false, true},
		{"the guest ran and said hello", true, true, false},
	} {
		p, err := newProbing(specs, "")
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		p.log = &log
		if err := p.startHost(nil, nil, "", nil); err != nil {
			t.Fatal(err)
		}
		if tc.hello {
			b, err := wire.Hello{Version: wire.Version, Clock: wire.ClockKVM, NCPUs: 1}.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			p.host.Receive(b, 0)
		}
		if err := p.stop(tc.guestRan); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(log.String(), line); got != tc.want {
			t.Errorf("%s: %q printed: %v, want %v (log %q)", tc.name, line, got, tc.want, log.String())
		}
	}
}

func TestOutputPathsAreCheckedBeforeBoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "out.json")
	for _, tc := range []struct {
		name  string
		set   func(f *runFlags)
		wants []string
	}{
		{"--report in a missing directory", func(f *runFlags) { f.report = missing }, []string{"--report", "does not exist"}},
		{"--events in a missing directory", func(f *runFlags) { f.events = missing }, []string{"--events", "does not exist"}},
		{"--api in a missing directory", func(f *runFlags) { f.api = missing }, []string{"--api", "does not exist"}},
		{"--report a directory", func(f *runFlags) { f.report = dir }, []string{"--report", "is a directory"}},
		{"--report under a file", func(f *runFlags) { f.report = filepath.Join(file, "r.json") }, []string{"--report", "not a directory"}},
		{"--api on a regular file", func(f *runFlags) { f.api = file }, []string{"--api", "not a socket"}},
		{"--api too long", func(f *runFlags) { f.api = filepath.Join(dir, strings.Repeat("s", 120)) }, []string{"--api", "at most 107 bytes"}},
		{"--report and --events the same", func(f *runFlags) { f.report, f.events = file, dir+"/./file" }, []string{"--report and --events"}},
	} {
		f := runFlagsForTest()
		tc.set(&f)
		_, err := checkRun(f, meminfoOf(1<<30))
		wantErr(t, tc.name, err, tc.wants...)
		// run checks before it opens the kernel (or any other file).
		_, err = run(f, []string{"true"})
		wantErr(t, "run with "+tc.name, err, tc.wants...)
	}
	// Paths that can be written pass: new files, an existing file, a socket path.
	f := runFlagsForTest()
	f.report, f.events, f.api = filepath.Join(dir, "r.json"), file, filepath.Join(dir, "api.sock")
	if _, err := checkRun(f, meminfoOf(1<<30)); err != nil {
		t.Errorf("writable outputs: %v", err)
	}
}

func TestOutputInAnUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes any directory")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	f := runFlagsForTest()
	f.report = filepath.Join(dir, "r.json")
	_, err := checkRun(f, meminfoOf(1<<30))
	wantErr(t, "--report in a read-only directory", err, "--report", "not writable")
}

func TestOutputsDoNotOverwriteInputs(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	f := runFlagsForTest()
	f.disks = []string{img + ",ro"}
	f.events = img
	_, err := checkRun(f, meminfoOf(1<<30))
	wantErr(t, "--events onto the --disk image", err, "--events", "--disk", "not overwriting")
	f.events = ""
	f.kernel, f.report = img, img
	_, err = checkRun(f, meminfoOf(1<<30))
	wantErr(t, "--report onto the kernel", err, "--report", "--kernel")
}
