package golden

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/snapshot"
)

func TestKeyLeavesOutRunPaths(t *testing.T) {
	boot := func(sock, events, script string) []string {
		return []string{"run", "--api", sock, "--net", "tap:tv0", "--mem", "48M", "--events", events, "--", "sh", "-c", script}
	}
	a := Key(boot("/a/vm1.sock", "/a/vm1.1.events.jsonl", "httpd"))
	if b := Key(boot("/b/vm1.sock", "/b/vm1.7.events.jsonl", "httpd")); a != b {
		t.Errorf("the same boot in another directory: key %s, want %s", b, a)
	}
	if c := Key(boot("/a/vm1.sock", "/a/vm1.1.events.jsonl", "httpd -p 81")); c == a {
		t.Error("another guest command gave the same key")
	}
	if d := Key([]string{"run", "--mem", "48M", "--net", "tap:tv0"}); d == Key([]string{"run", "--mem", "48M", "--net", "tap:tv1"}) {
		t.Error("another link gave the same key")
	}
	// An argument boundary moved is another command line.
	if Key([]string{"run", "--", "sh", "-c", "a b"}) == Key([]string{"run", "--", "sh", "-c", "a", "b"}) {
		t.Error("two command lines with the same words gave one key")
	}
}

func TestKeyNamesTheGuestBuild(t *testing.T) {
	build := t.TempDir()
	kernel := filepath.Join(build, "guest-kernel", "vmlinux")
	initrd := filepath.Join(build, "initramfs.cpio")
	os.MkdirAll(filepath.Dir(kernel), 0o755)
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	os.WriteFile(initrd, []byte("initramfs"), 0o644)
	files := GuestFiles("/nowhere/vmm", []string{"PATH=/bin", "TRACEVISOR_BUILD=" + build})
	if len(files) != 2 || files[0] != kernel || files[1] != initrd {
		t.Fatalf("GuestFiles with TRACEVISOR_BUILD=%s: %q", build, files)
	}
	args := []string{"run", "--mem", "48M", "--", "sh", "-c", "httpd"}
	before := Key(args, files...)
	if Key(args, files...) != before {
		t.Fatal("one guest build, two keys")
	}
	// A rebuilt initramfs (another size and time) is another guest.
	os.WriteFile(initrd, []byte("initramfs, rebuilt"), 0o644)
	if Key(args, files...) == before {
		t.Error("a rebuilt initramfs kept the key")
	}
	// The guest command's own words are never taken for run paths.
	g := func(p string) []string { return []string{"run", "--", "prog", "--events", p} }
	if Key(g("/a")) == Key(g("/b")) {
		t.Error("guest commands that differ after their --events got one key")
	}
}

// fakeVMM answers snapshot requests on a unix socket as the vmm would:
// it writes a state file into the requested directory.
func fakeVMM(t *testing.T, fail string) string {
	sock := filepath.Join(t.TempDir(), "vm.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			in := bufio.NewScanner(c)
			for in.Scan() {
				var req api.Request
				resp := api.Response{}
				if err := json.Unmarshal(in.Bytes(), &req); err != nil || req.Op != api.OpSnapshot {
					resp.Error = "unexpected request"
				} else if fail != "" {
					resp.Error = fail
				} else if err := os.WriteFile(filepath.Join(req.Dir, snapshot.StateFile), []byte("state"), 0o600); err != nil {
					resp.Error = err.Error()
				}
				json.NewEncoder(c).Encode(resp)
			}
			c.Close()
		}
	}()
	return sock
}

func TestTakeLookupDiscard(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "golden")}
	args := []string{"run", "--mem", "48M", "--", "sh", "-c", "httpd"}
	key := Key(args)
	if _, ok := s.Lookup(key); ok {
		t.Fatal("Lookup found a snapshot in an empty store")
	}
	ctx := context.Background()
	if err := s.Take(ctx, fakeVMM(t, "no KVM"), key, args); err == nil || !strings.Contains(err.Error(), "no KVM") {
		t.Fatalf("Take through a vmm that refuses: %v, want its error", err)
	}
	if _, ok := s.Lookup(key); ok {
		t.Fatal("Lookup found the snapshot that failed")
	}
	if err := s.Take(ctx, fakeVMM(t, ""), key, args); err != nil {
		t.Fatal(err)
	}
	dir, ok := s.Lookup(key)
	if !ok || dir != s.Path(key) {
		t.Fatalf("Lookup after Take: %q, %v", dir, ok)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ArgsFile)); err != nil || string(b) != strings.Join(args, "\n")+"\n" {
		t.Errorf("boot args beside the snapshot: %q, %v", b, err)
	}
	if err := s.Discard(key); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(key); ok {
		t.Fatal("Lookup found a discarded snapshot")
	}
}

func TestLockSerializes(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// A second holder waits: here it gives up at its deadline.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, "k"); err == nil {
		t.Fatal("a second Lock of a held key did not wait")
	}
	// Another key is not held.
	other, err := s.Lock(ctx, "other")
	if err != nil {
		t.Fatalf("Lock of another key: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		u, err := s.Lock(ctx, "k")
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while the key was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not return in 10 s after the holder released the key")
	}
}
