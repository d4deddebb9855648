package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/internal/testenv"
	vm "github.com/tracevisor/tracevisor/vmm"
)

// tickLoop prints a tick a second, for as long as the guest runs.
const tickLoop = "while :; do echo tick; sleep 1; done"

// ticks counts the guest's ticks on its console so far (a console that
// takes input ends its lines in \r\n; the typed loop's echo is no tick).
func (g *liveGuest) ticks() int { return len(tickLine.FindAllStringIndex(g.out.String(), -1)) }

var tickLine = regexp.MustCompile(`(?m)^tick\r?$`)

// waitTicks waits until the console shows at least n ticks.
func (g *liveGuest) waitTicks(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for g.ticks() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the guest printed %d ticks in 2 minutes, want %d", g.ticks(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSilent fails the test if a tick comes in the 3 s after the fence
// answer (a tick already on its way out of the vmm's pipe gets 300 ms).
func (g *liveGuest) checkSilent(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	n := g.ticks()
	time.Sleep(3 * time.Second)
	if m := g.ticks(); m != n {
		t.Errorf("the fenced guest printed %d more ticks in 3 s", m-n)
	}
}

// stopFenced stops the vmm through the API and checks it exits as fenced.
func (g *liveGuest) stopFenced(t *testing.T) {
	t.Helper()
	if _, err := apiCall(g.sock, api.Request{Op: api.OpStop, Reason: "test over"}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		code, werr := exitCode(err)
		if werr != nil || code != vm.ExitFenced {
			t.Fatalf("vmm exited with %d (%v), want %d (fenced)", code, werr, vm.ExitFenced)
		}
		if out := g.out.String(); !strings.Contains(out, "fenced at") || !strings.Contains(out, "test over") {
			t.Errorf("vmm's last words do not tell the fence and the stop:\n%s", out)
		}
	case <-time.After(time.Minute):
		t.Fatal("vmm did not exit in a minute after the API's stop")
	}
}

// checkFenced checks a fenced status: every vCPU out, with its registers.
func checkFenced(t *testing.T, st *vm.Status) {
	t.Helper()
	if st == nil || st.State != vm.StateFenced || st.FencedAtNS == 0 || st.FenceTookNS <= 0 || len(st.VCPUs) == 0 {
		t.Fatalf("status %+v, want fenced", st)
	}
	for _, c := range st.VCPUs {
		if !c.Fenced || !c.Regs || c.RIP == 0 {
			t.Errorf("vCPU %d after the fence: %+v", c.ID, c)
		}
	}
}

// checkCore dumps the fenced guest of g as an ELF core and opens it in gdb
// with the guest's vmlinux: vCPU 0's RIP is the one its fence recorded,
// and the kernel's banner reads through the core's kernel mappings.
func checkCore(t *testing.T, g *liveGuest, st *vm.Status) {
	t.Helper()
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		testenv.Missing(t, testenv.GDB, "gdb is absent: the fenced guest's core is not opened")
		return
	}
	core := filepath.Join(t.TempDir(), "vm.core")
	r := g.call(api.Request{Op: api.OpDump, Path: core})
	if r.Machine == nil || r.Machine.State != vm.StateFenced {
		t.Fatalf("dump answer %+v: want the machine still fenced", r.Machine)
	}
	fi, err := os.Stat(core)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("core %v, %v: want a file of mode 0600", fi, err)
	}
	t.Logf("dump: %d MiB in %v", fi.Size()>>20, time.Duration(r.DumpNS))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gdb, "-nx", "-batch", "-ex", "info registers rip", "-ex", "x/s (char *)&linux_banner",
		filepath.Join(buildDir, "guest-kernel", "vmlinux"), core)
	out, err := cmd.CombinedOutput()
	t.Logf("gdb:\n%s", out)
	if err != nil {
		t.Fatalf("gdb: %v", err)
	}
	if want := fmt.Sprintf("%#x", st.VCPUs[0].RIP); !strings.Contains(string(out), want) {
		t.Errorf("gdb's rip is not the fence's %s", want)
	}
	if !strings.Contains(string(out), "Linux version") {
		t.Errorf("gdb did not read the kernel's banner through the core")
	}
}

func TestFence(t *testing.T) {
	need(t)
	t.Run("through the API", func(t *testing.T) {
		g := restoreShell(t)
		defer g.as(t)()
		g.typeIn(tickLoop)
		g.waitTicks(t, 2)
		st := g.call(api.Request{Op: api.OpStatus}).Machine
		if st == nil || st.State != vm.StateRunning {
			t.Fatalf("status before the fence: %+v", st)
		}
		r := g.call(api.Request{Op: api.OpFence, Reason: "e2e fence"})
		checkFenced(t, r.Machine)
		t.Logf("fence: every vCPU out of KVM_RUN %v after it began; the request waited %v",
			time.Duration(r.Machine.FenceTookNS), time.Duration(r.WaitedNS))
		g.checkSilent(t)
		s := g.call(api.Request{Op: api.OpStatus}).Machine
		if s.State != vm.StateFenced || s.FenceReason != "e2e fence" || s.FencedAtNS != r.Machine.FencedAtNS {
			t.Errorf("status after the fence: %+v", s)
		}
		again := g.call(api.Request{Op: api.OpFence, Reason: "again"}).Machine
		if again.FencedAtNS != r.Machine.FencedAtNS || again.FenceReason != "e2e fence" {
			t.Errorf("a second fence changed the first: %+v", again)
		}
		t.Run("its core opens in gdb", func(t *testing.T) { checkCore(t, g, s) })
		g.stopFenced(t)
	})
	t.Run("by a fence rule in the VMM", func(t *testing.T) {
		// The restored guest's shell kills its own sleep 600 after 3 s,
		// the signal probe attached before; the VMM fences itself on
		// the kprobe's event (--fence-on), with no request from outside.
		g := restoreShell(t, "--fence-on", "class=signal,comm=sleep,sig=TERM")
		defer g.as(t)()
		if ids := g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:signal"}).IDs; len(ids) == 0 {
			t.Fatal("attach catalogue:signal: no probe ids")
		}
		g.typeIn(tickLoop + " & sleep 600 & S=$!; sleep 3; echo killing; kill -TERM $S; wait")
		var r api.Response
		deadline := time.Now().Add(2 * time.Minute)
		for {
			r = g.call(api.Request{Op: api.OpStatus})
			if r.Machine != nil && r.Machine.State == vm.StateFenced {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not fenced 2 minutes after the guest's driver answered: %+v", r.Machine)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(r.FenceRules) != 1 || r.FenceRules[0] != "class=signal,comm=sleep,sig=TERM" {
			t.Errorf("armed rules %q", r.FenceRules)
		}
		g.checkSilent(t)
		r = g.call(api.Request{Op: api.OpStatus})
		checkFenced(t, r.Machine)
		e := r.FenceEvent
		if e == nil || e.Class != "signal" || e.Comm != "sleep" || !strings.Contains(r.Machine.FenceReason, "class=signal,comm=sleep,sig=TERM") {
			t.Fatalf("fenced by %+v: %q", e, r.Machine.FenceReason)
		}
		if !regexp.MustCompile(`(?m)^killing\r?$`).MatchString(g.out.String()) { // the line, not its typed echo
			t.Errorf("fenced before the guest's kill")
		}
		if e.HostNS > 0 {
			t.Logf("self-fence: the kill's kprobe hit (guest kvmclock, host time) -> fence began %v -> every vCPU out %v later",
				time.Duration(r.Machine.FencedAtNS-e.HostNS), time.Duration(r.Machine.FenceTookNS))
		}
		g.stopFenced(t)
	})
}
