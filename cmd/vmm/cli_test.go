package main

import (
	"bytes"
	"io"
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
