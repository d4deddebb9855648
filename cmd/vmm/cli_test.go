package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
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
