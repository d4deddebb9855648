package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeT records what Missing did.
type fakeT struct {
	skipped, failed bool
	msg             string
}

func (f *fakeT) Helper()        {}
func (f *fakeT) Name() string   { return "TestFake" }
func (f *fakeT) Skip(a ...any)  { f.skipped = true; f.msg = a[0].(string) }
func (f *fakeT) Fatal(a ...any) { f.failed = true; f.msg = a[0].(string) }

func TestMissingSkipsUnlessRequired(t *testing.T) {
	log := filepath.Join(t.TempDir(), "skips")
	t.Setenv(SkipLogEnv, log)
	for _, tc := range []struct {
		require  string
		wantFail bool
	}{
		{"", false},
		{"gcc,root", false},
		{"kvm", true},
		{"root, kvm", true},
		{"all", true},
	} {
		t.Setenv(RequireEnv, tc.require)
		f := &fakeT{}
		Missing(f, KVM, "no %s here", "/dev/kvm")
		if f.failed != tc.wantFail || f.skipped == tc.wantFail {
			t.Errorf("%s=%q: failed=%v skipped=%v, want failed=%v", RequireEnv, tc.require, f.failed, f.skipped, tc.wantFail)
		}
		if !strings.Contains(f.msg, "no /dev/kvm here") {
			t.Errorf("message %q lacks the reason", f.msg)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "kvm\tTestFake\tno /dev/kvm here" {
		t.Fatalf("skip log %q: want the two skips, not the failures", b)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, time.Second, "three polls", func() bool { n++; return n >= 3 })
	if n != 3 {
		t.Fatalf("cond polled %d times, want 3", n)
	}
	f := &fakeT{}
	start := time.Now()
	WaitFor(f, 20*time.Millisecond, "never", func() bool { return false })
	if !f.failed || !strings.Contains(f.msg, "waiting for never") || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("WaitFor on a false cond: failed=%v msg=%q after %v", f.failed, f.msg, time.Since(start))
	}
}
