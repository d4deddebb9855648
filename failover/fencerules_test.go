package failover_test

import (
	"testing"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/probe"
)

// TestFenceRulesAgreeWithJudge: every event the VMM's fence rules (made
// from the manager's rules) fence on is one the manager's rules call a
// failure, so the VMM never fences what the manager would let live; and
// the failures a VMM can recognise are covered.
func TestFenceRulesAgreeWithJudge(t *testing.T) {
	r := failover.DefaultRules("httpd")
	var rules []api.FenceRule
	for _, s := range r.FenceRules() {
		fr, err := api.ParseFenceRule(s)
		if err != nil {
			t.Fatalf("FenceRules gave %q: %v", s, err)
		}
		rules = append(rules, fr)
	}
	fences := func(e probe.Event) bool {
		for _, fr := range rules {
			if fr.Match(e) {
				return true
			}
		}
		return false
	}
	sig := func(comm string, n uint64) probe.Event {
		return probe.Event{Class: "signal", Probe: "signal", Comm: comm, PID: 40, TID: 40, Fields: map[string]any{"sig": n}}
	}
	exit := func(comm string, status, signal uint64) probe.Event {
		return probe.Event{Class: "exit", Probe: "exit", Comm: comm, PID: 40, TID: 40,
			Fields: map[string]any{"status": status, "signal": signal}}
	}
	for _, c := range []struct {
		name  string
		e     probe.Event
		fence bool
	}{
		{"SIGKILL to httpd", sig("httpd", 9), true},
		{"SIGSEGV to httpd", sig("httpd", 11), true},
		{"SIGTERM to httpd", sig("httpd", 15), true},
		{"SIGHUP to httpd (harmless)", sig("httpd", 1), false},
		{"SIGUSR1 to httpd (harmless)", sig("httpd", 10), false},
		{"SIGKILL to sleep (unwatched)", sig("sleep", 9), false},
		{"httpd killed by SIGKILL", exit("httpd", 0, 9), true},
		{"httpd child's clean exit", exit("httpd", 0, 0), false},
		{"sleep killed", exit("sleep", 0, 9), false},
		{"oom", probe.Event{Class: "oom", Probe: "oom"}, true},
		{"panic", probe.Event{Class: "panic", Probe: "panic"}, true},
		{"oops", probe.Event{Class: "oops", Probe: "oops"}, true},
		{"hung", probe.Event{Class: "hung", Probe: "hung"}, true},
	} {
		got := fences(c.e)
		if got != c.fence {
			t.Errorf("%s: the VMM fences %v, want %v (rules %q)", c.name, got, c.fence, r.FenceRules())
		}
		if kind, _ := r.Judge(c.e); got && kind == failover.NoFailure {
			t.Errorf("%s: the VMM fences on an event the manager's rules call no failure", c.name)
		}
	}

	// A rule set to NoFailure is not fenced on; a service narrowed to one
	// pid gets no service rule (the VMM cannot tell its children apart).
	r.Hung, r.Lockup = failover.NoFailure, failover.NoFailure
	r.ServicePID = 40
	got := r.FenceRules()
	if len(got) != 1 || got[0] != "class=oom|panic|oops" {
		t.Errorf("FenceRules with Hung and Lockup off and ServicePID set: %q", got)
	}
	if got := (failover.Rules{}).FenceRules(); len(got) != 0 {
		t.Errorf("the zero Rules fence on %q", got)
	}
}
