package api

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/vmm"
	"github.com/tracevisor/tracevisor/wire"
)

// fakeMachine is a Machine that records what the API asks of it.
type fakeMachine struct {
	mu      sync.Mutex
	st      vmm.Status
	fences  int // fences begun
	stopped chan string
}

func newFakeMachine() *fakeMachine {
	return &fakeMachine{st: vmm.Status{State: vmm.StateRunning, VCPUs: []vmm.VCPUStatus{{ID: 0, KVMRuns: 5}}},
		stopped: make(chan string, 4)}
}

func (f *fakeMachine) BeginFence(reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.State == vmm.StateFenced {
		return false
	}
	f.fences++
	f.st = vmm.Status{State: vmm.StateFenced, FencedAtNS: time.Now().UnixNano(), FenceReason: reason, FenceTookNS: 1234,
		VCPUs: []vmm.VCPUStatus{{ID: 0, KVMRuns: 5, Fenced: true, Regs: true, RIP: 0xffffffff81000000}}}
	return true
}

func (f *fakeMachine) Fence(reason string) (vmm.Status, error) {
	f.BeginFence(reason)
	return f.Status(), nil
}

func (f *fakeMachine) Status() vmm.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeMachine) Stop(reason string) { f.stopped <- reason }

func serveMachine(t *testing.T) (*probetest.Guest, *fakeMachine, *Control, string) {
	t.Helper()
	g := probetest.New(t)
	m := newFakeMachine()
	ctl := NewControl(m)
	g.Host.SetEventHook(ctl.Observe)
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := Listen(sock, g.Host, ctl, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return g, m, ctl, sock
}

func TestFenceStatusStopOverTheSocket(t *testing.T) {
	_, m, _, sock := serveMachine(t)
	r, err := Status(sock)
	if err != nil || r.Machine == nil || r.Machine.State != vmm.StateRunning || len(r.Machine.VCPUs) != 1 {
		t.Fatalf("status before the fence: %+v, %v", r.Machine, err)
	}
	r, err = Fence(sock, "split brain test")
	if err != nil {
		t.Fatal(err)
	}
	st := r.Machine
	if st == nil || st.State != vmm.StateFenced || st.FenceReason != "split brain test" || st.FenceTookNS != 1234 ||
		st.VCPUs[0].RIP != 0xffffffff81000000 || r.WaitedNS <= 0 {
		t.Fatalf("fence answer: %+v (waited %d ns)", st, r.WaitedNS)
	}
	r, err = Fence(sock, "")
	if err != nil || r.Machine.FenceReason != "split brain test" || m.fences != 1 {
		t.Errorf("second fence: %+v, %v (%d fences begun); want the first one's status", r.Machine, err, m.fences)
	}
	if r, err := Status(sock); err != nil || r.Machine.State != vmm.StateFenced || r.Machine.FencedAtNS != st.FencedAtNS {
		t.Errorf("status after the fence: %+v, %v", r.Machine, err)
	}
	select {
	case why := <-m.stopped:
		t.Fatalf("stopped (%q) before any stop request", why)
	default:
	}
	r, err = Stop(sock, "test over")
	if err != nil || r.Machine == nil || r.Machine.State != vmm.StateFenced {
		t.Fatalf("stop answer: %+v, %v", r.Machine, err)
	}
	select {
	case why := <-m.stopped:
		if why != "test over" {
			t.Errorf("stopped with reason %q", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop request did not stop the machine in 10 s")
	}
}

func TestMachineMethodsWithoutAMachine(t *testing.T) {
	_, sock := serve(t)
	for _, op := range []string{OpFence, OpStatus, OpStop, OpFenceOn} {
		if _, err := Call(sock, Request{Op: op}); err == nil || !strings.Contains(err.Error(), "no machine") {
			t.Errorf("%s without a machine: %v", op, err)
		}
	}
}

func TestFenceRuleFencesOnTheEvent(t *testing.T) {
	g, m, ctl, sock := serveMachine(t)
	if _, err := FenceOn(sock, "class=signal,comm=httpd,sig=KILL"); err != nil {
		t.Fatal(err)
	}
	if _, err := FenceOn(sock, "class=signal,sig=KILL,color=red"); err == nil || !strings.Contains(err.Error(), "color") {
		t.Errorf("a bad rule was armed: %v", err)
	}
	if r, _ := Status(sock); len(r.FenceRules) != 1 || r.FenceRules[0] != "class=signal,comm=httpd,sig=KILL" {
		t.Fatalf("armed rules %q", r.FenceRules)
	}
	emit := func(comm string, sig uint32) {
		g.Emit(wire.Event{Probe: 1, Class: wire.ClassSignal, PID: 42, Comm: comm, Sig: sig, OtherPID: 1, OtherComm: "sh"})
		g.Host.Drain()
	}
	emit("httpd", 1) // SIGHUP: harmless
	emit("sleep", 9) // another process
	if st := m.Status(); st.State != vmm.StateRunning {
		t.Fatalf("fenced on an event no rule matches: %q", st.FenceReason)
	}
	emit("httpd", 9)
	st := m.Status()
	if st.State != vmm.StateFenced || !strings.Contains(st.FenceReason, "class=signal,comm=httpd,sig=KILL") ||
		!strings.Contains(st.FenceReason, `"comm":"httpd"`) {
		t.Fatalf("after SIGKILL to httpd: %+v", st)
	}
	if e, ok := ctl.Event(); !ok || e.PID != 42 || e.Comm != "httpd" {
		t.Errorf("the fencing event: %+v, %v", e, ok)
	}
	if r, _ := Status(sock); r.FenceEvent == nil || r.FenceEvent.Comm != "httpd" {
		t.Errorf("status does not name the fencing event: %+v", r.FenceEvent)
	}
	emit("httpd", 9)
	if m.fences != 1 {
		t.Errorf("%d fences begun, want 1", m.fences)
	}
}

func TestFenceRulesAreBounded(t *testing.T) {
	ctl := NewControl(newFakeMachine())
	r, _ := ParseFenceRule("class=oom")
	for i := 0; i < MaxFenceRules; i++ {
		if err := ctl.Arm(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctl.Arm(r); err == nil {
		t.Errorf("rule %d armed", MaxFenceRules+1)
	}
}
