package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseApplets(t *testing.T) {
	got, err := parseApplets("bin/sh\n\n  /usr/bin/md5sum  \nlinuxrc")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bin/sh", "usr/bin/md5sum", "linuxrc"}; !slices.Equal(got, want) {
		t.Errorf("parseApplets = %q, want %q", got, want)
	}
	bad := map[string]string{
		"":                 "no applets listed",
		"\n\n":             "no applets listed",
		"bin/sh extra\n":   "not an applet path",
		"bin/./sh\n":       "not a clean path",
		"../escape\n":      "not a clean path",
		"/\n":              "not a clean path",
		"usr/bin/../sh\n":  "not a clean path",
		"usr/bin/x/\n":     "not a clean path",
		"bin/sh\n..\n":     "not a clean path",
		"bin/sh\n\t/\t\n:": "not a clean path",
	}
	for in, want := range bad {
		if _, err := parseApplets(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseApplets(%q): error %v, want one mentioning %q", in, err, want)
		}
	}
}

func TestComparePathsPutsDirectoriesFirst(t *testing.T) {
	names := []string{"usr-local", "usr/sbin", "usr/bin/x", "usr", "usr/bin", "bin/sh", "bin", "a"}
	slices.SortFunc(names, comparePaths)
	want := []string{"a", "bin", "bin/sh", "usr", "usr/bin", "usr/bin/x", "usr/sbin", "usr-local"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted %q, want %q", names, want)
	}
}

func TestBaseLayoutSkipsTakenAppletPaths(t *testing.T) {
	l, err := baseLayout("/host/busybox", "/host/init", []string{"bin/busybox", "init", "bin/sh", "bin/sh", "etc/passwd"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]kind{"bin/busybox": kindFile, "init": kindFile, "etc/passwd": kindFile, "bin/sh": kindSymlink} {
		if n, ok := l.nodes[name]; !ok || n.kind != want {
			t.Errorf("%q: present %v, kind %d; want kind %d", name, ok, n.kind, want)
		}
	}
	if src := l.nodes["init"].source; src != "/host/init" {
		t.Errorf("init comes from %q, want /host/init", src)
	}
	if src := l.nodes["bin/busybox"].source; src != "/host/busybox" {
		t.Errorf("bin/busybox comes from %q, want /host/busybox", src)
	}
}
