package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/api"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"256M": 256 << 20, "256MiB": 256 << 20, "1G": 1 << 30, "1gb": 1 << 30,
		"512": 512 << 20, "65536K": 64 << 20, " 2G ": 2 << 30,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "0", "-1G", "1T", "2000G", "1.5G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestCRLFFilter(t *testing.T) {
	var out bytes.Buffer
	f := &crlfFilter{w: &out}
	// Split writes, a lone CR and CR LF across a write boundary.
	for _, chunk := range []string{"42\r\nab\r", "\ncd\rx\r", "\n"} {
		if n, err := f.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if got, want := out.String(), "42\nab\ncd\rx\n"; got != want {
		t.Errorf("filtered %q, want %q", got, want)
	}
}

func TestEscapeReader(t *testing.T) {
	in := "ls\n\x01\x01a\x01x"
	r := &escapeReader{r: strings.NewReader(in)}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	// Ctrl-A Ctrl-A passes one Ctrl-A on; Ctrl-A x (stop) is swallowed.
	if want := "ls\n\x01a"; string(got) != want {
		t.Errorf("passed %q, want %q", got, want)
	}
}

func TestParseInjection(t *testing.T) {
	good := []struct {
		args []string
		want api.Injection
	}{
		{[]string{"signal", "httpd"}, api.Injection{Kind: "signal", Comm: "httpd", Signal: 15}},
		{[]string{"signal", "httpd", "KILL"}, api.Injection{Kind: "signal", Comm: "httpd", Signal: 9}},
		{[]string{"oom"}, api.Injection{Kind: "oom"}},
		{[]string{"hang"}, api.Injection{Kind: "hang", CPU: 1, Seconds: 7}},
		{[]string{"stall"}, api.Injection{Kind: "stall", Seconds: 7}},
	}
	for _, tc := range good {
		got, err := parseInjection(tc.args, 1, 7)
		if err != nil || got != tc.want {
			t.Errorf("parseInjection(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, args := range [][]string{nil, {"signal"}, {"signal", "a", "NOSIG"}, {"panic", "now"},
		{"stall", "5"}, {"meteor"}} {
		if got, err := parseInjection(args, 0, 30); err == nil {
			t.Errorf("parseInjection(%q) = %+v, want an error", args, got)
		}
	}
}

func TestStrayArgumentsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"doctor", "now"},
		{"probe", "list", "extra", "--api", "/nonexistent/api.sock"},
		{"probe", "events", "extra", "--api", "/nonexistent/api.sock"},
		{"probe", "catalogue", "extra"},
		{"probe", "detach", "seven", "--api", "/nonexistent/api.sock"},
		{"probe", "frobnicate", "--api", "/nonexistent/api.sock"},
	} {
		if code := dispatch(args); code != exitUsage {
			t.Errorf("vmm %q: exit %d, want %d (bad command line)", args, code, exitUsage)
		}
	}
}

func TestCheckProbeArgs(t *testing.T) {
	for _, ok := range [][]string{{"attach", "catalogue:oom"}, {"detach", "7"}, {"list"}, {"events"}, {"catalogue"}} {
		if err := checkProbeArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"attach"}, {"attach", "a", "b"}, {"detach"}, {"detach", "-1"}, {"detach", "1", "2"}, {"list", "x"}, {"reboot"}} {
		if err := checkProbeArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOneImageTwiceOnlyReadOnly(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		specs []string
		ok    bool
	}{
		{[]string{img + ",ro", img + ",ro"}, true},
		{[]string{img, img}, false},
		{[]string{img + ",ro", img}, false},
		{[]string{img, filepath.Dir(img) + "/./disk.img,ro"}, false},
	} {
		devs, closeAll, err := openDisks(tc.specs)
		if err == nil {
			closeAll()
		}
		if (err == nil) != tc.ok {
			t.Errorf("openDisks(%q): %d devices, %v; want ok=%v", tc.specs, len(devs), err, tc.ok)
		}
	}
}

func TestParseMAC(t *testing.T) {
	if m, err := parseMAC("52:54:00:12:34:56"); err != nil || m != [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56} {
		t.Errorf("parseMAC = %x, %v", m, err)
	}
	for _, bad := range []string{"", "52:54:00:12:34", "52:54:00:12:34:5g", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"} {
		if _, err := parseMAC(bad); err == nil {
			t.Errorf("parseMAC(%q) accepted", bad)
		}
	}
}

// TestHostMAC: the tap's host-side MAC is made from the guest's (so the
// same on a restore): unicast, locally administered, never the guest's.
func TestHostMAC(t *testing.T) {
	for _, g := range [][6]byte{{0x52, 0x54, 0, 0x12, 0x34, 0x56}, {0xfe, 1, 2, 3, 4, 5}, {0xfa, 1, 2, 3, 4, 5}} {
		h := hostMAC(g)
		if h == g || h[0]&1 != 0 || h[0]&2 == 0 || [5]byte(h[1:]) != [5]byte(g[1:]) {
			t.Errorf("hostMAC(%x) = %x: want another unicast, local MAC with the guest's last five bytes", g, h)
		}
	}
}
