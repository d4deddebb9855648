package tests

import (
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	vm "github.com/tracevisor/tracevisor/vmm"
)

// shellPrompt is the guest shell's prompt (busybox sh, root, in /).
const shellPrompt = "/ # "

// The package's one snapshot of a guest at its console shell, taken by
// the first test that asks for it (shellSnapshot) and restored by every
// test that only needs a running guest to type its script into
// (restoreShell): one boot for all of them instead of one each.
var shellSnap struct {
	mu  sync.Mutex
	dir string
}

// shellSnapshot returns the shared shell snapshot's directory. The first
// call boots `vmm run` with no command (the console shell, fed by a
// pipe), waits for its prompt and its probe driver, snapshots it and ends
// it; a call that fails doing so fails its test, and the next call tries
// again.
func shellSnapshot(t *testing.T) string {
	t.Helper()
	shellSnap.mu.Lock()
	defer shellSnap.mu.Unlock()
	if shellSnap.dir != "" {
		return shellSnap.dir
	}
	start := time.Now()
	g := launchLiveGuest(t, true)
	g.waitOutput(t, "the shell's prompt", 5*time.Minute, func(out string) bool { return strings.Contains(out, shellPrompt) })
	dir := filepath.Join(goldenDir, "shell")
	if r := g.call(api.Request{Op: api.OpSnapshot, Dir: dir, Paused: true}); r.Machine == nil || r.Machine.State != vm.StatePaused {
		t.Fatalf("the shared shell snapshot: answer %+v, want the guest paused", r.Machine)
	}
	g.cmd.Process.Kill()
	t.Logf("the shared shell snapshot: booted and taken in %.1fs", time.Since(start).Seconds())
	shellSnap.dir = dir
	return dir
}

// restoreShell restores the shared shell snapshot in a new vmm (`vmm run
// --api SOCK --restore DIR runFlags...`, its console fed by a pipe) and
// returns once its probe driver answers. Type the test's script with
// typeIn.
func restoreShell(t *testing.T, runFlags ...string) *liveGuest {
	t.Helper()
	dir := shellSnapshot(t)
	return launchLiveGuest(t, true, append([]string{"--restore", dir}, runFlags...)...)
}

// typeIn types line (a newline is added) into the guest's console shell.
func (g *liveGuest) typeIn(line string) {
	g.t.Helper()
	if g.stdin == nil {
		g.t.Fatal("typeIn: this guest's console reads no input")
	}
	if _, err := io.WriteString(g.stdin, line+"\n"); err != nil {
		g.t.Fatalf("type into the guest's console: %v", err)
	}
}

// TestRestoredShellTakesInput restores the shared shell snapshot twice,
// side by side: each clone's shell runs what is typed into it, the
// clones apart, and exits with the typed status as a booted shell does.
func TestRestoredShellTakesInput(t *testing.T) {
	t.Parallel()
	need(t)
	a, b := restoreShell(t), restoreShell(t)
	a.typeIn("echo clone-$((2*21))")
	b.typeIn("echo other-$((3*7)); exit 7")
	a.waitOutput(t, "clone A's answer", time.Minute, func(out string) bool { return strings.Contains(out, "clone-42") })
	if code := b.wait(); code != 7 {
		t.Errorf("clone B's shell exited with %d, want 7; output:\n%s", code, b.out.String())
	}
	if out := b.out.String(); !strings.Contains(out, "other-21") || strings.Contains(out, "clone-42") {
		t.Errorf("clone B's output:\n%s", out)
	}
	if out := a.out.String(); strings.Contains(out, "other-21") {
		t.Errorf("clone A ran clone B's input:\n%s", out)
	}
	a.typeIn("exit 3")
	if code := a.wait(); code != 3 {
		t.Errorf("clone A's shell exited with %d, want 3", code)
	}
}
