package initramfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tracevisor/tracevisor/guest-kernel/initramfs/initramfstest"
)

// The exact bytes of an archive holding one directory, written out by hand
// from the format's description.
func TestWriterGoldenBytes(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.AddDir("a", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "070701" + "00000001" + "000041ed" + "00000000" + "00000000" + "00000002" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000" +
		"a\x00" + // 110+2 bytes: aligned already
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" +
		"TRAILER!!!\x00" + "\x00\x00\x00" // 110+11 bytes, padded to 124
	if got := b.String(); got != want {
		t.Fatalf("archive bytes:\n got %q\nwant %q", got, want)
	}
}

// wantEntry is what one entry must decode to.
type wantEntry struct {
	name         string
	mode         uint32
	nlink        uint32
	data         string
	major, minor uint32
}

func TestWriterRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	steps := []struct {
		add  func() error
		want wantEntry
	}{
		{func() error { return w.AddDir("bin", 0o755) }, wantEntry{name: "bin", mode: 0o040755, nlink: 2}},
		{func() error { return w.AddDir("tmp", 0o777|fs.ModeSticky) }, wantEntry{name: "tmp", mode: 0o041777, nlink: 2}},
		{func() error { return w.AddDir("dev", 0o755) }, wantEntry{name: "dev", mode: 0o040755, nlink: 2}},
		// Data lengths 0 to 5 and names of every length mod 4 exercise all paddings.
		{func() error { return w.AddFile("bin/e", 0o644, nil) }, wantEntry{name: "bin/e", mode: 0o100644, nlink: 1}},
		{func() error { return w.AddFile("bin/f1", 0o600, []byte("1")) }, wantEntry{name: "bin/f1", mode: 0o100600, nlink: 1, data: "1"}},
		{func() error { return w.AddFile("bin/f22", 0o640, []byte("22")) }, wantEntry{name: "bin/f22", mode: 0o100640, nlink: 1, data: "22"}},
		{func() error { return w.AddFile("bin/f333", 0o755, []byte("333")) }, wantEntry{name: "bin/f333", mode: 0o100755, nlink: 1, data: "333"}},
		{func() error { return w.AddFile("bin/f4444", 0o755|fs.ModeSetuid, []byte("4444")) },
			wantEntry{name: "bin/f4444", mode: 0o104755, nlink: 1, data: "4444"}},
		{func() error {
			return w.AddFileFrom("bin/f55555", 0o700|fs.ModeSetgid, 5, strings.NewReader("55555 and more"))
		}, wantEntry{name: "bin/f55555", mode: 0o102700, nlink: 1, data: "55555"}},
		{func() error { return w.AddSymlink("bin/sh", "/bin/busybox") },
			wantEntry{name: "bin/sh", mode: 0o120777, nlink: 1, data: "/bin/busybox"}},
		{func() error { return w.AddCharDevice("dev/console", 0o600, 5, 1) },
			wantEntry{name: "dev/console", mode: 0o020600, nlink: 1, major: 5, minor: 1}},
		{func() error { return w.AddCharDevice("dev/null", 0o666, 1, 3) },
			wantEntry{name: "dev/null", mode: 0o020666, nlink: 1, major: 1, minor: 3}},
		{func() error { return w.AddCharDevice("dev/big", 0o600, maxMajor, maxMinor) },
			wantEntry{name: "dev/big", mode: 0o020600, nlink: 1, major: maxMajor, minor: maxMinor}},
	}
	for _, s := range steps {
		if err := s.add(); err != nil {
			t.Fatalf("adding %s: %v", s.want.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 4", b.Len())
	}

	got, err := initramfstest.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("parsing the archive back: %v", err)
	}
	if len(got) != len(steps) {
		t.Fatalf("parsed %d entries, wrote %d", len(got), len(steps))
	}
	for i, s := range steps {
		e, want := got[i], s.want
		if e.Name != want.name || e.Mode != want.mode || e.Nlink != want.nlink || string(e.Data) != want.data ||
			e.RdevMajor != want.major || e.RdevMinor != want.minor {
			t.Errorf("entry %d = {name %q mode %o nlink %d data %q rdev %d:%d}, want %+v",
				i, e.Name, e.Mode, e.Nlink, e.Data, e.RdevMajor, e.RdevMinor, want)
		}
		if e.Ino != uint32(i+1) {
			t.Errorf("%s: inode %d, want %d (numbered in order from 1)", e.Name, e.Ino, i+1)
		}
		if e.UID != 0 || e.GID != 0 || e.Mtime != 0 || e.DevMajor != 0 || e.DevMinor != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d dev %d:%d, want all 0", e.Name, e.UID, e.GID, e.Mtime, e.DevMajor, e.DevMinor)
		}
	}
}

func TestWriterRejectsBadNames(t *testing.T) {
	cases := map[string]string{
		"":             "empty name",
		"a\x00b":       "NUL",
		"/bin/sh":      `write "bin/sh"`,
		"bin/":         "not a clean relative path",
		"./bin":        "not a clean relative path",
		"bin//sh":      "not a clean relative path",
		"bin/./sh":     "not a clean relative path",
		"bin/../sh":    "not a clean relative path",
		".":            "not a clean relative path",
		"..":           "climbs out",
		"../etc":       "climbs out",
		"TRAILER!!!":   "reserved",
		longName(4096): "longer than 4096",
	}
	for name, want := range cases {
		var b bytes.Buffer
		w := NewWriter(&b)
		err := w.AddFile(name, 0o644, []byte("x"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("AddFile(%.20q): error %v, want one mentioning %q", name, err, want)
		}
		if b.Len() != 0 {
			t.Errorf("AddFile(%.20q) failed but wrote %d bytes", name, b.Len())
		}
		// A rejected call leaves the writer usable.
		if err := w.AddDir("ok", 0o755); err != nil {
			t.Errorf("after rejecting %.20q: %v", name, err)
		}
	}

	var w = NewWriter(io.Discard)
	for _, name := range []string{"a", "a/b.c", "..a", "a/...", longName(4095)} {
		if err := w.AddDir(name, 0o755); err != nil {
			t.Errorf("AddDir(%.20q): %v", name, err)
		}
	}
}

func longName(n int) string { return strings.Repeat("n", n) }

func TestWriterRejectsDuplicateNames(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.AddDir("etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("etc", 0o644, nil); err == nil || !strings.Contains(err.Error(), "already in the archive") {
		t.Fatalf("second %q: error %v", "etc", err)
	}
}

func TestWriterRejectsBadModesAndDevices(t *testing.T) {
	w := NewWriter(io.Discard)
	checks := []struct {
		what string
		err  error
		want string
	}{
		{"type bit in a file's mode", w.AddFile("f", fs.ModeDir|0o755, nil), "besides permissions"},
		{"raw setuid bit", w.AddFile("g", 0o4755, nil), "fs.ModeSetuid"},
		{"type bit in a device's mode", w.AddCharDevice("c", fs.ModeCharDevice|0o600, 5, 1), "besides permissions"},
		{"major too large", w.AddCharDevice("d", 0o600, maxMajor+1, 0), "out of range"},
		{"minor too large", w.AddCharDevice("e", 0o600, 0, maxMinor+1), "out of range"},
		{"empty symlink target", w.AddSymlink("l", ""), "empty target"},
		{"NUL in symlink target", w.AddSymlink("m", "a\x00b"), "NUL"},
		{"long symlink target", w.AddSymlink("n", longName(4097)), "targets longer than 4096"},
		{"negative size", w.AddFileFrom("o", 0o644, -1, strings.NewReader("")), "32-bit size"},
	}
	for _, c := range checks {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.what, c.err, c.want)
		}
	}
}

// A size past the 32-bit field is refused before anything is read.
func TestWriterRejectsOversizedFileUnread(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	r := iotest.ErrReader(errors.New("the writer read data it should have refused"))
	err := w.AddFileFrom("huge", 0o644, 1<<32, r)
	if err == nil || !strings.Contains(err.Error(), "32-bit size field") {
		t.Fatalf("error %v, want one about the 32-bit size field", err)
	}
	if b.Len() != 0 {
		t.Fatalf("wrote %d bytes for a refused file", b.Len())
	}
}

func TestWriterShortReaderBreaksTheArchive(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.AddFileFrom("f", 0o644, 10, strings.NewReader("abc"))
	if err == nil || !strings.Contains(err.Error(), "data ended after 3 of 10 bytes") {
		t.Fatalf("error %v, want one saying the data ended early", err)
	}
	if err2 := w.AddDir("d", 0o755); err2 != err {
		t.Errorf("next call: error %v, want the first failure %v again", err2, err)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close: error %v, want the first failure %v again", err2, err)
	}
}

func TestWriterReportsOutputErrors(t *testing.T) {
	broken := errors.New("disk full")
	w := NewWriter(failingWriter{broken})
	if err := w.AddDir("d", 0o755); !errors.Is(err, broken) {
		t.Fatalf("AddDir: error %v, want it to wrap %v", err, broken)
	}
	if err := w.Close(); !errors.Is(err, broken) {
		t.Fatalf("Close after a failed write: error %v, want it to wrap %v", err, broken)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterAfterClose(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := b.Len()
	if err := w.AddDir("late", 0o755); !errors.Is(err, ErrClosed) {
		t.Errorf("AddDir after Close: error %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: error %v, want ErrClosed", err)
	}
	if b.Len() != n {
		t.Errorf("calls after Close wrote %d bytes", b.Len()-n)
	}
	if entries, err := initramfstest.Parse(b.Bytes()); err != nil || len(entries) != 0 {
		t.Errorf("empty archive parses to %v, %v; want no entries", entries, err)
	}
}
