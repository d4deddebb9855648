package initramfs

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/guest-kernel/initramfs/initramfstest"
)

func TestCommandOverlayHoldsArgv(t *testing.T) {
	argv := []string{"sh", "-c", "echo hi; exit 3", "", "naïve"}
	overlay, err := CommandOverlay(argv)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := initramfstest.Parse(overlay)
	if err != nil {
		t.Fatalf("overlay does not parse as one archive: %v", err)
	}
	if len(entries) != 2 {
		t.Fatalf("overlay has %d entries, want the directory and the file", len(entries))
	}
	if d := entries[0]; d.Name != "tracevisor" || d.Mode != 0o040755 {
		t.Errorf("first entry %q mode %o, want directory tracevisor 0755", d.Name, d.Mode)
	}
	f := entries[1]
	if f.Name != "tracevisor/cmd" || f.Mode != 0o100644 {
		t.Errorf("second entry %q mode %o, want regular file tracevisor/cmd 0644", f.Name, f.Mode)
	}
	want := "sh\x00-c\x00echo hi; exit 3\x00\x00naïve\x00"
	if string(f.Data) != want {
		t.Errorf("command file holds %q, want %q", f.Data, want)
	}
}

// The VMM appends the overlay to the base archive; the kernel then sees both.
func TestCommandOverlayConcatenates(t *testing.T) {
	var base bytes.Buffer
	w := NewWriter(&base)
	for _, d := range []string{"bin", "tracevisor"} {
		if err := w.AddDir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddFile("bin/true", 0o755, []byte("odd")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	overlay, err := CommandOverlay([]string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := initramfstest.ParseAll(append(base.Bytes(), overlay...))
	if err != nil {
		t.Fatalf("base+overlay: %v", err)
	}
	if len(all) != 2 || len(all[0]) != 3 || len(all[1]) != 2 {
		t.Fatalf("base+overlay parsed as %d archives, want the base's 3 entries then the overlay's 2", len(all))
	}
	if got := string(all[1][1].Data); got != "true\x00" {
		t.Errorf("command %q, want %q", got, "true\x00")
	}
}

func TestCommandOverlayRejectsBadArgv(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{nil, "argv is empty"},
		{[]string{}, "argv is empty"},
		{[]string{""}, "argv[0]) is empty"},
		{[]string{"ls", "a\x00b"}, "argument 1"},
		{[]string{"a\x00"}, "NUL"},
		{[]string{"echo", strings.Repeat("x", maxArgLen)}, "at most 131071 bytes"},
	}
	for _, c := range cases {
		overlay, err := CommandOverlay(c.argv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CommandOverlay(%.30q): error %v, want one mentioning %q", c.argv, err, c.want)
		}
		if overlay != nil {
			t.Errorf("CommandOverlay(%.30q) returned %d bytes with its error", c.argv, len(overlay))
		}
	}
	// The longest argument execve takes is accepted.
	if _, err := CommandOverlay([]string{"echo", strings.Repeat("x", maxArgLen-1)}); err != nil {
		t.Errorf("argument of %d bytes: %v", maxArgLen-1, err)
	}
}
