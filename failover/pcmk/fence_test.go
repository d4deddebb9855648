package pcmk

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/vmm"
)

func TestParseFenceArgs(t *testing.T) {
	r, err := ParseFenceArgs(nil, strings.NewReader("# fencer request\naction=off\nnodename=n2\nport=n1\nstate_dir=/srv/tv\npcmk_host_list=n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r != (FenceRequest{Action: "off", Plug: "n1", StateDir: "/srv/tv"}) {
		t.Errorf("stdin request %+v", r)
	}
	r, err = ParseFenceArgs([]string{"-o", "status", "--plug=n2/vm1", "--state-dir", "/srv/tv"}, nil)
	if err != nil || r != (FenceRequest{Action: "status", Plug: "n2/vm1", StateDir: "/srv/tv"}) {
		t.Errorf("flags: %+v, %v", r, err)
	}
	if r, err := ParseFenceArgs([]string{"-o", "metadata"}, nil); err != nil || r.Action != "metadata" {
		t.Errorf("metadata: %+v %v", r, err)
	}
	for _, bad := range [][]string{
		{"-o", "off"},                        // no plug
		{"-o", "off", "-n", "../etc"},        // escapes the state dir
		{"-o", "off", "-n", "a/b/c"},         // too deep
		{"-o", "explode", "-n", "n1"},        // unknown action
		{"-o", "off", "-n", "n1", "--bogus"}, // unknown flag
		{"-o", "list", "--state-dir", "rel"}, // relative dir
		{"-n"},                               // no value
	} {
		if _, err := ParseFenceArgs(bad, nil); err == nil {
			t.Errorf("ParseFenceArgs(%q) = nil error", bad)
		}
	}
	if _, err := ParseFenceArgs(nil, strings.NewReader("no equals sign\n")); err == nil {
		t.Error("a stdin line without = was taken")
	}
}

// TestFenceOff fences every VM of a node through its VMM and finds them
// off afterwards; a VM whose vmm is gone counts as off.
func TestFenceOff(t *testing.T) {
	dir := t.TempDir()
	a := newFakeVMM(t, StateFor(dir, "n1", "vm1"))
	b := newFakeVMM(t, StateFor(dir, "n1", "vm2"))
	newFakeVMM(t, StateFor(dir, "n2", "vm1")) // another node's: untouched
	gone := newFakeVMM(t, StateFor(dir, "n1", "vm3"))
	gone.close()
	ctx := context.Background()
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		r, err := ParseFenceArgs(append(args, "--state-dir", dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		code := RunFence(ctx, r, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("-o", "status", "-n", "n1"); code != FenceOK || !strings.Contains(out, "ON") {
		t.Fatalf("status before: %d %s", code, out)
	}
	if code, out := run("-o", "list"); code != FenceOK || out != "n1,\nn2,\n" {
		t.Errorf("list: %d %q", code, out)
	}
	if code, out := run("-o", "off", "-n", "n1"); code != FenceOK {
		t.Fatalf("off: %d %s", code, out)
	}
	for _, f := range []*fakeVMM{a, b} {
		if ops := f.asked(); !slices.Equal(ops[len(ops)-2:], []string{"fence", "stop"}) {
			t.Errorf("ops asked of a VM: %v, want fence then stop", ops)
		}
	}
	if code, out := run("-o", "status", "-n", "n1"); code != FenceOff || !strings.Contains(out, "OFF") {
		t.Errorf("status after off: %d %s", code, out)
	}
	if code, _ := run("-o", "status", "-n", "n2"); code != FenceOK {
		t.Errorf("n2 was fenced with n1")
	}
	if code, _ := run("-o", "status", "-n", "n9"); code != FenceOff {
		t.Errorf("a node that never ran a VM is not off")
	}
}

// A paused VM (a snapshot taken --paused) is on: a resume would let it
// answer again, so only a fence makes it off.
func TestFencePausedIsOn(t *testing.T) {
	dir := t.TempDir()
	f := newFakeVMM(t, StateFor(dir, "n1", "vm1"))
	f.mu.Lock()
	f.state = vmm.StatePaused
	f.mu.Unlock()
	r, err := ParseFenceArgs([]string{"-o", "status", "-n", "n1", "--state-dir", dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := RunFence(context.Background(), r, &out, &errb); code != FenceOK || !strings.Contains(out.String(), "ON") {
		t.Errorf("status of a paused VM: %d %s%s, want ON", code, out.String(), errb.String())
	}
}

// A state_dir that is not there cannot confirm anything is off.
func TestFenceMissingStateDir(t *testing.T) {
	r := FenceRequest{Action: "off", Plug: "n1", StateDir: "/nonexistent/tracevisor"}
	var out, errb bytes.Buffer
	if code := RunFence(context.Background(), r, &out, &errb); code != FenceFailed || !strings.Contains(errb.String(), "cannot confirm") {
		t.Errorf("off with a missing state_dir: %d %s", code, errb.String())
	}
	r.Action, r.Plug, r.StateDir = "off", "n1/", t.TempDir()
	if code := RunFence(context.Background(), r, &out, &errb); code != FenceFailed {
		t.Errorf("off of plug %q: %d", r.Plug, code)
	}
}
