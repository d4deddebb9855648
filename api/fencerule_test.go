package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/probe"
)

func TestParseFenceRule(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the rule's String, or the error's text
		ok       bool
	}{
		{"class=oom", "class=oom", true},
		{"class=oom|panic|oops", "class=oom|panic|oops", true},
		{"class=signal,comm=httpd,sig=KILL|TERM|SEGV", "class=signal,comm=httpd,sig=KILL|TERM|SEGV", true},
		{"class=signal,comm=httpd,sig=9|sigterm|11", "class=signal,comm=httpd,sig=KILL|TERM|SEGV", true},
		{" class=exit , comm=httpd", "class=exit,comm=httpd", true},
		{"class=exit,comm=httpd,sig=KILL", "class=exit,comm=httpd,sig=KILL", true},
		{"class=panic,probe=panic", "class=panic,probe=panic", true},
		{"", "empty", false},
		{"comm=httpd", "no class", false},
		{"class=meteor", `class "meteor"`, false},
		{"class=oom,class=panic", "given twice", false},
		{"class=oom,color=red", `unknown key "color"`, false},
		{"class=oom,", "not KEY=VALUE", false},
		{"class", "not KEY=VALUE", false},
		{"class=oom|", "empty value", false},
		{"class=signal,sig=FOO", "FOO", false},
		{"class=signal,sig=99", "99", false},
		{"class=oom,sig=KILL", "only signal, oops and exit", false},
		{"class=signal,comm=" + strings.Repeat("x", 16), "at most 15 bytes", false},
	} {
		r, err := ParseFenceRule(tc.in)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.ok && r.String() != tc.want:
			t.Errorf("%q parsed as %q, want %q", tc.in, r.String(), tc.want)
		case !tc.ok && err == nil:
			t.Errorf("%q parsed as %q; want an error with %q", tc.in, r, tc.want)
		case !tc.ok && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: error %q, want one with %q", tc.in, err, tc.want)
		}
	}
}

func signalEvent(comm string, sig uint32) probe.Event {
	return probe.Event{Probe: "signal", Class: "signal", PID: 7, Comm: comm,
		Fields: map[string]any{"sig": sig, "sender_pid": uint32(1), "sender_comm": "sh"}}
}

func TestFenceRuleMatch(t *testing.T) {
	mustRule := func(s string) FenceRule {
		r, err := ParseFenceRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	fatal := mustRule("class=signal,comm=httpd,sig=KILL|TERM|SEGV")
	exit := mustRule("class=exit,comm=httpd")
	killed := mustRule("class=exit,comm=httpd,sig=KILL")
	vm := mustRule("class=oom|panic|oops")
	// An event as the API's stream gives it back: class fields as uint64.
	var fromJSON probe.Event
	if err := json.Unmarshal([]byte(`{"probe":"signal","class":"signal","comm":"httpd","pid":3,"sig":9}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	exitEvent := func(comm string, signal uint64) probe.Event {
		return probe.Event{Probe: "exit", Class: "exit", Comm: comm,
			Fields: map[string]any{"code": signal, "signal": signal, "status": uint64(0)}}
	}
	for _, tc := range []struct {
		name string
		r    FenceRule
		e    probe.Event
		want bool
	}{
		{"SIGKILL to httpd", fatal, signalEvent("httpd", 9), true},
		{"SIGTERM to httpd", fatal, signalEvent("httpd", 15), true},
		{"SIGSEGV to httpd", fatal, signalEvent("httpd", 11), true},
		{"SIGKILL to httpd, from JSON", fatal, fromJSON, true},
		{"SIGHUP to httpd", fatal, signalEvent("httpd", 1), false},
		{"SIGKILL to another comm", fatal, signalEvent("sleep", 9), false},
		{"a signal event without sig", fatal, probe.Event{Class: "signal", Comm: "httpd"}, false},
		{"an exit of httpd is not a signal", fatal, exitEvent("httpd", 9), false},
		{"httpd exits", exit, exitEvent("httpd", 0), true},
		{"sh exits", exit, exitEvent("sh", 0), false},
		{"httpd killed by SIGKILL", killed, exitEvent("httpd", 9), true},
		{"httpd exits normally", killed, exitEvent("httpd", 0), false},
		{"oom", vm, probe.Event{Class: "oom", Comm: "hog"}, true},
		{"panic", vm, probe.Event{Class: "panic"}, true},
		{"hung is not in the rule", vm, probe.Event{Class: "hung"}, false},
	} {
		if got := tc.r.Match(tc.e); got != tc.want {
			t.Errorf("%s: rule %s matched %v, want %v", tc.name, tc.r, got, tc.want)
		}
	}
}
