package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestKeepEvidence copies regular files with their layout, keeps only
// the end of a large one and skips a socket.
func TestKeepEvidence(t *testing.T) {
	state, dir := t.TempDir(), filepath.Join(t.TempDir(), "evidence")
	vm := filepath.Join(state, "n1", "vm1")
	if err := os.MkdirAll(vm, 0o755); err != nil {
		t.Fatal(err)
	}
	big := append(bytes.Repeat([]byte{'a'}, maxEvidence), []byte("the end")...)
	if err := os.WriteFile(filepath.Join(vm, "vmm.log"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vm, "agent.log"), []byte("start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(vm, "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	if err := keepEvidence(state, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "n1", "vm1", "vmm.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxEvidence || !bytes.HasSuffix(got, []byte("the end")) {
		t.Errorf("vmm.log: %d bytes ending %q, want its last %d", len(got), got[max(0, len(got)-7):], maxEvidence)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "n1", "vm1", "agent.log")); err != nil || string(b) != "start\n" {
		t.Errorf("agent.log: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "n1", "vm1", "api.sock")); err == nil {
		t.Error("the socket was copied")
	}
}
