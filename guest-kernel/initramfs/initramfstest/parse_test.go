package initramfstest

import (
	"fmt"
	"strings"
	"testing"
)

// rawEntry builds one newc entry by hand, independently of package
// initramfs: header, name, NUL, padding, data, padding.
func rawEntry(ino, mode, nlink uint32, name, data string) string {
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	s := h + name + "\x00"
	s += strings.Repeat("\x00", (4-len(s)%4)%4)
	s += data
	s += strings.Repeat("\x00", (4-len(data)%4)%4)
	return s
}

var trailer = rawEntry(0, 0, 1, "TRAILER!!!", "")

func TestParseReadsHandMadeArchive(t *testing.T) {
	archive := rawEntry(1, 0o040755, 2, "etc", "") +
		rawEntry(2, 0o100644, 1, "etc/hostname", "guest\n") +
		trailer
	entries, err := Parse([]byte(archive))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(entries), entries)
	}
	if e := entries[0]; e.Name != "etc" || e.Mode != 0o040755 || e.Nlink != 2 || e.Ino != 1 || e.Offset != 0 {
		t.Errorf("first entry %+v", e)
	}
	if e := entries[1]; e.Name != "etc/hostname" || string(e.Data) != "guest\n" || e.Ino != 2 || e.Offset != 116 {
		t.Errorf("second entry %+v", e)
	}
}

func TestParseRejectsMalformedArchives(t *testing.T) {
	good := rawEntry(1, 0o100644, 1, "a", "xyz") + trailer
	cases := map[string]struct {
		archive string
		want    string
	}{
		"bad magic":         {strings.Replace(good, "070701", "070707", 1), "magic"},
		"no trailer":        {rawEntry(1, 0o100644, 1, "a", "xyz"), "truncated header"},
		"bytes after end":   {good + "\x00\x00\x00\x00", "after the trailer"},
		"non-hex field":     {"070701zzzzzzzz" + good[14:], "not 8 hex digits"},
		"non-zero padding":  {strings.Replace(good, "xyz\x00", "xyz\x01", 1), "padding byte"},
		"truncated data":    {good[:114], "truncated data"},
		"checksum set":      {good[:102] + "00000001" + good[110:], "check field"},
		"name without NUL":  {strings.Replace(good, "a\x00", "ab", 1), "does not end with NUL"},
		"empty name":        {rawEntry(1, 0o100644, 1, "", "") + trailer, "leaves no name"},
		"trailer with data": {good[:len(good)-len(trailer)] + rawEntry(0, 0, 1, "TRAILER!!!", "x"), "trailer"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.archive))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse: error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestParseAllSplitsConcatenatedArchives(t *testing.T) {
	first := rawEntry(1, 0o040755, 2, "d", "") + trailer
	second := rawEntry(1, 0o100600, 1, "d/f", "1234") + trailer
	all, err := ParseAll([]byte(first + "\x00\x00\x00\x00" + second))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(all[0]) != 1 || len(all[1]) != 1 || all[1][0].Name != "d/f" {
		t.Fatalf("ParseAll = %+v, want [[d] [d/f]]", all)
	}

	// One stray byte misaligns the second archive.
	if _, err := ParseAll([]byte(first + "\x00\x00" + second)); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
		t.Fatalf("misaligned second archive: error %v", err)
	}
	if _, err := ParseAll(make([]byte, 8)); err == nil {
		t.Fatal("ParseAll accepted zeros without an archive")
	}
}
