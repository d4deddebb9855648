package failover_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/probe"
)

// ev builds an event as the host decodes it (class fields typed as
// decodeEvent types them: sig uint32, the rest uint64).
func ev(class, probeName, comm string, pid, tid uint32, fields map[string]any) probe.Event {
	return probe.Event{Probe: probeName, Class: class, Comm: comm, PID: pid, TID: tid,
		GuestNS: 1000, HostNS: 2000, Fields: fields}
}

func sigEv(comm string, pid uint32, sig uint32) probe.Event {
	return ev("signal", "signal", comm, pid, pid, map[string]any{"sig": sig, "sender_pid": uint32(1), "sender_comm": "sh"})
}

func exitEv(comm string, pid, tid uint32, status, signal uint64) probe.Event {
	return ev("exit", "exit", comm, pid, tid, map[string]any{"code": status<<8 | signal, "status": status, "signal": signal})
}

func TestRules(t *testing.T) {
	def := failover.DefaultRules("httpd")
	pinned := def
	pinned.ServicePID = 100
	noHung := def
	noHung.Hung = failover.NoFailure
	var zero failover.Rules
	cases := []struct {
		name  string
		rules failover.Rules
		e     probe.Event
		want  failover.Kind
	}{
		// Fatal signals to the service.
		{"KILL to httpd", def, sigEv("httpd", 100, 9), failover.ServiceFailure},
		{"TERM to httpd", def, sigEv("httpd", 100, 15), failover.ServiceFailure},
		{"SEGV to httpd", def, sigEv("httpd", 100, 11), failover.ServiceFailure},
		{"INT to httpd", def, sigEv("httpd", 100, 2), failover.ServiceFailure},
		// Harmless signals to the service: no failover.
		{"HUP to httpd", def, sigEv("httpd", 100, 1), failover.NoFailure},
		{"USR1 to httpd", def, sigEv("httpd", 100, 10), failover.NoFailure},
		{"USR2 to httpd", def, sigEv("httpd", 100, 12), failover.NoFailure},
		{"PIPE to httpd", def, sigEv("httpd", 100, 13), failover.NoFailure},
		{"ALRM to httpd", def, sigEv("httpd", 100, 14), failover.NoFailure},
		{"CHLD to httpd", def, sigEv("httpd", 100, 17), failover.NoFailure},
		{"WINCH to httpd", def, sigEv("httpd", 100, 28), failover.NoFailure},
		{"CONT to httpd", def, sigEv("httpd", 100, 18), failover.NoFailure},
		{"glibc's 33 to httpd", def, sigEv("httpd", 100, 33), failover.NoFailure},
		// Fatal signals to processes that are not the service.
		{"KILL to sleep", def, sigEv("sleep", 200, 9), failover.NoFailure},
		{"KILL to the OOM hog", def, sigEv("hog", 300, 9), failover.NoFailure},
		{"KILL to httpd, other pid", pinned, sigEv("httpd", 101, 9), failover.NoFailure},
		{"KILL to httpd, its pid", pinned, sigEv("httpd", 100, 9), failover.ServiceFailure},
		{"KILL, no service", failover.DefaultRules(""), sigEv("httpd", 100, 9), failover.NoFailure},
		// Exits.
		{"httpd killed by KILL", def, exitEv("httpd", 100, 100, 0, 9), failover.ServiceFailure},
		{"httpd exit 1", def, exitEv("httpd", 100, 100, 1, 0), failover.ServiceFailure},
		{"httpd child exit 0", def, exitEv("httpd", 150, 150, 0, 0), failover.NoFailure},
		{"pinned httpd exit 0", pinned, exitEv("httpd", 100, 100, 0, 0), failover.ServiceFailure},
		{"pinned httpd child exit 1", pinned, exitEv("httpd", 150, 150, 1, 0), failover.NoFailure},
		{"httpd thread killed", def, exitEv("httpd", 100, 104, 0, 9), failover.NoFailure},
		{"sleep killed", def, exitEv("sleep", 200, 200, 0, 9), failover.NoFailure},
		{"httpd killed, code only", def, ev("exit", "exit", "httpd", 100, 100, map[string]any{"code": uint64(9)}), failover.ServiceFailure},
		{"httpd exit 0, code only", def, ev("exit", "exit", "httpd", 150, 150, map[string]any{"code": uint64(0)}), failover.NoFailure},
		// The guest itself.
		{"out_of_memory", def, ev("oom", "oom", "hog", 300, 300, nil), failover.VMFailure},
		{"oom victim", def, ev("oom", "oom_victim", "hog", 300, 300, map[string]any{"killer_comm": "hog", "rss_pages": uint64(5000)}), failover.VMFailure},
		{"panic", def, ev("panic", "panic", "swapper/0", 0, 0, map[string]any{"message": "boom"}), failover.VMFailure},
		{"oops", def, ev("oops", "oops", "insmod", 5, 5, map[string]any{"message": "Oops", "sig": uint32(11)}), failover.VMFailure},
		{"hung task", def, ev("hung", "hung", "stall", 7, 7, nil), failover.VMFailure},
		{"hung task ignored", noHung, ev("hung", "hung", "stall", 7, 7, nil), failover.NoFailure},
		{"soft lockup", def, ev("lockup", "lockup", "spin", 8, 8, nil), failover.VMFailure},
		// Not failures at all.
		{"generic probe", def, ev("generic", "opens", "httpd", 100, 100, nil), failover.NoFailure},
		{"zero rules: oom", zero, ev("oom", "oom", "hog", 300, 300, nil), failover.NoFailure},
		{"zero rules: KILL", zero, sigEv("httpd", 100, 9), failover.NoFailure},
		// Hostile fields: never a verdict, never a panic.
		{"sig as string", def, ev("signal", "signal", "httpd", 100, 100, map[string]any{"sig": "9"}), failover.NoFailure},
		{"sig negative", def, ev("signal", "signal", "httpd", 100, 100, map[string]any{"sig": -9.0}), failover.NoFailure},
		{"sig NaN", def, ev("signal", "signal", "httpd", 100, 100, map[string]any{"sig": math.NaN()}), failover.NoFailure},
		{"sig huge", def, ev("signal", "signal", "httpd", 100, 100, map[string]any{"sig": uint64(1<<40 | 9)}), failover.NoFailure},
		{"no fields", def, ev("signal", "signal", "httpd", 100, 100, nil), failover.NoFailure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, cause := c.rules.Judge(c.e)
			if got != c.want {
				t.Fatalf("Judge = %s (%s), want %s", got, cause, c.want)
			}
			if cause.GuestNS != c.e.GuestNS || cause.HostNS != c.e.HostNS || cause.Comm != c.e.Comm || cause.PID != c.e.PID {
				t.Errorf("cause %+v does not carry the event's subject and times", cause)
			}
			// The same event after a JSON round trip (as `vmm probe
			// events` delivers it: fields become uint64) judges the same.
			b, err := json.Marshal(c.e)
			if err != nil {
				if c.e.Fields["sig"] != nil { // NaN does not marshal
					return
				}
				t.Fatal(err)
			}
			var back probe.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := c.rules.Judge(back); again != got {
				t.Errorf("after JSON: %s, before: %s", again, got)
			}
		})
	}
}

// TestRulesCause checks what a verdict says about its cause.
func TestRulesCause(t *testing.T) {
	r := failover.DefaultRules("httpd")
	_, c := r.Judge(sigEv("httpd", 100, 9))
	if c.Rule != "signal" || c.Probe != "signal" || c.Sig != 9 || c.Victim != "httpd" || c.Sender != "sh" || c.PID != 100 {
		t.Errorf("signal cause %+v", c)
	}
	_, c = r.Judge(ev("oom", "oom_victim", "hog", 300, 300, map[string]any{"killer_comm": "cc1"}))
	if c.Victim != "hog" || c.Sender != "cc1" {
		t.Errorf("oom_victim cause %+v: want victim hog, sender cc1", c)
	}
	_, c = r.Judge(ev("oom", "oom", "cc1", 300, 300, nil))
	if c.Victim != "" {
		t.Errorf("out_of_memory names no victim, cause says %q", c.Victim)
	}
	_, c = r.Judge(exitEv("httpd", 100, 100, 0, 15))
	if c.Sig != 15 || c.Victim != "httpd" {
		t.Errorf("exit cause %+v: want sig 15", c)
	}
	_, c = r.Judge(ev("panic", "panic", "sh", 1, 1, map[string]any{"message": "Kernel panic - not syncing: sysrq"}))
	if c.Text != "Kernel panic - not syncing: sysrq" {
		t.Errorf("panic cause %+v lacks the message", c)
	}
}

// TestSignalSets pins the default sets to signal(7).
func TestSignalSets(t *testing.T) {
	fatal := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31, 32, 40, 63}
	notFatal := []int{17, 18, 19, 20, 21, 22, 23, 28} // CHLD CONT STOP TSTP TTIN TTOU URG WINCH
	for _, n := range fatal {
		if !failover.FatalByDefault.Has(n) {
			t.Errorf("FatalByDefault lacks %s", failover.SignalName(n))
		}
	}
	for _, n := range append(notFatal, 0, 64, -1) {
		if failover.FatalByDefault.Has(n) {
			t.Errorf("FatalByDefault has %d", n)
		}
	}
	def := failover.DefaultRules("x").FatalSignals
	if got := def.String(); got != "INT,QUIT,ILL,TRAP,ABRT,BUS,FPE,KILL,SEGV,TERM,STKFLT,XCPU,XFSZ,VTALRM,PROF,IO,PWR,SYS" {
		t.Errorf("default fatal signals %s", got)
	}
	s, err := failover.ParseSignalSet("TERM, sigkill,40")
	if err != nil || s != failover.Signals(9, 15, 40) {
		t.Errorf("ParseSignalSet = %v (%s), %v", uint64(s), s, err)
	}
	if _, err := failover.ParseSignalSet("TERM,BOGUS"); err == nil {
		t.Error("ParseSignalSet accepted BOGUS")
	}
	if failover.SignalName(9) != "SIGKILL" || failover.SignalName(40) != "SIG40" {
		t.Errorf("SignalName: %s %s", failover.SignalName(9), failover.SignalName(40))
	}
}
