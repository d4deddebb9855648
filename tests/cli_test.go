package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These exercise vmm's refusals: each must fail fast with one clear line,
// without booting anything.

func TestCLIErrors(t *testing.T) {
	need(t)
	notKernel := filepath.Join(t.TempDir(), "not-a-kernel")
	os.WriteFile(notKernel, []byte("this is not a kernel image at all, just text"), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"run", "--bogus"}, 2, "unknown flag"},
		{"bad memory", []string{"run", "--mem", "lots"}, 1, "bad memory size"},
		{"too many cpus", []string{"run", "--cpus", "99", "--", "true"}, 1, "--cpus 99"},
		{"missing kernel", []string{"run", "--kernel", "/nonexistent/vmlinux", "--", "true"}, 1, "no such file"},
		{"not a kernel", []string{"run", "--kernel", notKernel, "--", "true"}, 1, "kernel"},
		{"too little memory", []string{"run", "--mem", "16M", "--", "true"}, 1, "memory"},
		{"bad profile", []string{"run", "--host-profile", "fast"}, 1, "host profile"},
		{"stray argument", []string{"run", "true"}, 2, "after --"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, c := range cases {
		r := vmm(t, "", c.args...)
		if r.code != c.code || !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(c.want)) {
			t.Errorf("%s: want exit %d and %q on stderr: %s", c.name, c.code, c.want, r)
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); c.code == 1 && n > 0 {
			t.Errorf("%s: want a one-line error, got %d lines: %q", c.name, n+1, r.stderr)
		}
	}
}

func TestDoctor(t *testing.T) {
	r := vmm(t, "", "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "host profile:") || !strings.Contains(r.stdout, "KVM_CAP_IRQCHIP") {
		t.Fatalf("doctor: %s", r)
	}
}

func TestHelpTeaches(t *testing.T) {
	r := vmm(t, "", "run", "--help")
	for _, want := range []string{"--kernel", "--cpus", "--host-profile", "82", "vmm run -- false"} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}

func TestDiskFlagErrors(t *testing.T) {
	need(t)
	odd := filepath.Join(t.TempDir(), "odd.img")
	os.WriteFile(odd, make([]byte, 1000), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--disk", "/nonexistent.img", "--", "true"}, "no such file"},
		{[]string{"run", "--disk", odd, "--", "true"}, "not a multiple of 512"},
		{[]string{"run", "--disk", odd + ",fast", "--", "true"}, "unknown option"},
	} {
		r := vmm(t, "", c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: want exit 1 and %q: %s", c.args, c.want, r)
		}
	}
}
