package pcmk

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

// testAgent is an agent over a temp state directory whose "vmm" is a
// sleep carrying the socket's path on its command line (as the real
// vmm's --api does) and a fakeVMM on the socket.
func testAgent(t *testing.T) (*Agent, *fakeCRM, *bytes.Buffer) {
	t.Helper()
	p, err := ParseParams(envOf(baseEnv()))
	if err != nil {
		t.Fatal(err)
	}
	p.StateDir, p.Check, p.Promotable, p.Interval = t.TempDir(), false, true, 10000
	crm := &fakeCRM{}
	var stderr bytes.Buffer
	return &Agent{P: p, CRM: crm, Stderr: &stderr}, crm, &stderr
}

// fakeRun starts the instance's stand-in vmm process and API.
func fakeRun(t *testing.T, a *Agent) (*fakeVMM, *exec.Cmd) {
	t.Helper()
	s := a.state()
	f := newFakeVMM(t, s)
	cmd := exec.Command("sleep", "60")
	cmd.Args[0] = s.Sock() // the socket's path on its command line, as vmm's --api puts it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	s.WritePID("vmm.pid", cmd.Process.Pid)
	s.Mark("started")
	// Until the child has exec'd, its cmdline is the test binary's, not
	// the socket's: wait for the exec (a loaded host can take a while).
	for deadline := time.Now().Add(10 * time.Second); s.PID("vmm.pid", s.Sock()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in vmm's cmdline never showed its socket")
		}
	}
	return f, cmd
}

func TestMonitorStates(t *testing.T) {
	ctx := context.Background()
	a, crm, stderr := testAgent(t)
	if code := a.Monitor(ctx); code != NotRunning {
		t.Fatalf("never started: %d, want %d", code, NotRunning)
	}
	a.state().Mark("started")
	if code := a.Monitor(ctx); code != ErrGeneric || !strings.Contains(stderr.String(), "ocf-exit-reason:the vmm is gone") {
		t.Fatalf("started, no vmm: %d %q", code, stderr.String())
	}
	f, _ := fakeRun(t, a)
	if code := a.Monitor(ctx); code != Success {
		t.Fatalf("running: %d (%s)", code, stderr.String())
	}
	if code := a.Promote(ctx); code != Success {
		t.Fatalf("promote: %d", code)
	}
	if code := a.Monitor(ctx); code != RunningPromote {
		t.Fatalf("promoted: %d", code)
	}
	// A standing verdict fails the promoted instance and drops its score.
	crm.calls = nil
	a.state().WriteVerdict(failover.Verdict{Node: "n1", Kind: failover.ServiceFailure, Detector: "probe",
		Cause: failover.Cause{Rule: "signal", Sig: 9, Comm: "httpd"}})
	stderr.Reset()
	if code := a.Monitor(ctx); code != FailedPromoted || !strings.Contains(stderr.String(), "failure verdict") {
		t.Fatalf("verdict: %d %q", code, stderr.String())
	}
	if len(crm.calls) != 1 || crm.calls[0] != "set vm1 -1000000" {
		t.Errorf("CRM calls on a failure: %v, want the score set to -INFINITY", crm.calls)
	}
	a.state().Unmark("verdict.json")
	a.Demote(ctx)
	f.mu.Lock()
	f.state = "fenced"
	f.mu.Unlock()
	stderr.Reset()
	if code := a.Monitor(ctx); code != ErrGeneric || !strings.Contains(stderr.String(), "fenced") {
		t.Fatalf("fenced: %d %q", code, stderr.String())
	}
	if code := a.Promote(ctx); code == Success {
		t.Error("a fenced instance was promoted")
	}
}

func TestStopEndsTheInstance(t *testing.T) {
	ctx := context.Background()
	a, _, stderr := testAgent(t)
	if code := a.Stop(ctx); code != Success {
		t.Fatalf("stop of a stopped instance: %d", code)
	}
	f, cmd := fakeRun(t, a)
	a.state().Mark("promoted")
	a.state().WriteVerdict(failover.Verdict{Node: "n1"})
	start := time.Now()
	if code := a.Stop(ctx); code != Success {
		t.Fatalf("stop: %d %s", code, stderr.String())
	}
	if ops := f.asked(); len(ops) == 0 || ops[len(ops)-1] != "stop" {
		t.Errorf("the vmm was not asked to stop: %v", ops)
	}
	if !isGone(cmd.Process.Pid) {
		t.Error("the vmm process still runs after stop")
	}
	t.Logf("stop took %v (the stand-in ignores the API stop: SIGTERM ended it)", time.Since(start))
	for _, f := range []string{"started", "promoted", "verdict.json", "vmm.pid"} {
		if a.state().Has(f) {
			t.Errorf("%s left after stop", f)
		}
	}
	if !a.state().Has("verdict.last.json") {
		t.Error("the verdict was not kept for a post-mortem")
	}
	if code := a.Monitor(ctx); code != NotRunning {
		t.Errorf("monitor after stop: %d", code)
	}
}

// isGone reports whether pid has exited (or is a zombie).
func isGone(pid int) bool { return syscall.Kill(pid, 0) != nil || isZombie(pid) }

func TestRunAgentBadParams(t *testing.T) {
	env := baseEnv()
	delete(env, "OCF_RESKEY_host_addr")
	var out, errb bytes.Buffer
	if code := RunAgent(context.Background(), "start", envOf(env), &out, &errb); code != ErrArgs {
		t.Errorf("start without host_addr: %d, want %d", code, ErrArgs)
	}
	if code := RunAgent(context.Background(), "stop", envOf(env), &out, &errb); code != Success {
		t.Errorf("stop with broken parameters: %d, want success", code)
	}
	if code := RunAgent(context.Background(), "monitor", envOf(env), &out, &errb); code != NotRunning {
		t.Errorf("probe with broken parameters: %d, want not running", code)
	}
	if code := RunAgent(context.Background(), "frobnicate", envOf(baseEnv()), &out, &errb); code != ErrUnimpl {
		t.Errorf("unknown action: %d", code)
	}
	env = baseEnv()
	env["OCF_RESKEY_vmm"] = "/nonexistent/vmm"
	if code := RunAgent(context.Background(), "validate-all", envOf(env), &out, &errb); code != ErrInstalled {
		t.Errorf("validate-all without the vmm: %d, want %d", code, ErrInstalled)
	}
}

// A probe (interval 0) of an instance whose vmm is gone without a stop
// (its node was lost) finds it not running and clears the leftovers.
func TestProbeAfterCrash(t *testing.T) {
	a, _, _ := testAgent(t)
	a.P.Interval = 0
	s := a.state()
	s.Mark("started")
	s.Mark("promoted")
	s.WritePID("vmm.pid", 1<<22) // no such process
	if code := a.Monitor(context.Background()); code != NotRunning {
		t.Fatalf("probe after a crash: %d, want %d", code, NotRunning)
	}
	if s.Has("started") || s.Has("promoted") {
		t.Error("the crash's marks were left")
	}
}
