package failover

import (
	"math"

	"github.com/tracevisor/tracevisor/probe"
)

// Rules turn probe events into failures: which events are a service
// failure, which a VM failure, and (everything else) which are nothing.
// They are data: build them with DefaultRules and change fields. The zero
// Rules judges nothing a failure.
type Rules struct {
	// Service is the watched service's comm as the guest kernel knows it
	// (at most 15 bytes, e.g. "httpd"); "" watches no service.
	Service string
	// ServicePID, when not 0, narrows the service to the process with
	// that tgid. Without it every task named Service is the service, and
	// a forking server's per-connection children (busybox httpd's are
	// all "httpd") are judged like the daemon.
	ServicePID uint32
	// FatalSignals: a signal in the set sent to the service is a service
	// failure. A signal outside it is harmless: no verdict.
	FatalSignals SignalSet
	// Exit of the service is a service failure when the task dies by a
	// signal or exits with a non-zero status, or, with ServicePID set,
	// whenever that process ends. With ServicePID 0 a clean exit (status
	// 0) is not a failure: it is what a forking server's children do
	// after each request. Only the thread-group leader's exit counts; a
	// thread ending is not the process ending.
	Exit bool
	// What the VM-level classes count as (NoFailure: ignored).
	OOM    Kind // class oom: the OOM killer ran, or picked a victim
	Panic  Kind // class panic
	Oops   Kind // class oops
	Hung   Kind // class hung: khungtaskd reports a task in D state
	Lockup Kind // class lockup: a soft lockup
	// StreamLost is what the end of a node's event stream counts as: a
	// vmm's API closes it when the VMM stops, so it is the fastest sign
	// that the VMM itself died. NoFailure ignores it.
	StreamLost Kind
}

// DefaultRules returns the rules for watching service:
//
//   - a signal in FatalByDefault less CommonlyCaught sent to the service
//     (INT QUIT ILL TRAP ABRT BUS FPE KILL SEGV TERM STKFLT XCPU XFSZ
//     VTALRM PROF IO PWR SYS), or an abnormal exit of it → service failure;
//   - oom, panic, oops → VM failure (as the paper: an OOM kill means some
//     process was killed, and the service may no longer be right);
//   - hung and lockup → VM failure: khungtaskd reports a task only after
//     kernel.hung_task_timeout_secs (120 s by default) in uninterruptible
//     sleep, and a soft lockup is a CPU stuck in the kernel — both a
//     kernel-level stall a service rarely survives. A guest with
//     legitimately long D-state sleeps (slow storage) sets Hung to
//     NoFailure;
//   - the end of the vmm's event stream → VM failure.
func DefaultRules(service string) Rules {
	return Rules{
		Service:      service,
		FatalSignals: FatalByDefault &^ CommonlyCaught,
		Exit:         true,
		OOM:          VMFailure,
		Panic:        VMFailure,
		Oops:         VMFailure,
		Hung:         VMFailure,
		Lockup:       VMFailure,
		StreamLost:   VMFailure,
	}
}

// Judge returns what e counts as under the rules, with its cause; kind
// NoFailure for an event that is not a failure. Every field of e may come
// from a hostile guest: Judge reads them without trusting their types.
func (r Rules) Judge(e probe.Event) (Kind, Cause) {
	c := Cause{Rule: e.Class, Probe: e.Probe, Class: e.Class, PID: e.PID, TID: e.TID, Comm: e.Comm,
		GuestNS: e.GuestNS, HostNS: e.HostNS}
	switch e.Class {
	case "signal":
		sig, _ := eventUint(e, "sig")
		c.Sig = clampSig(sig)
		c.Victim = e.Comm
		c.Sender = fieldString(e, "sender_comm")
		if r.isService(e) && r.FatalSignals.Has(c.Sig) {
			return ServiceFailure, c
		}
	case "exit":
		c.Victim = e.Comm
		status, signal := exitStatus(e)
		c.Sig = clampSig(signal)
		if r.Exit && r.isService(e) && (e.TID == 0 || e.TID == e.PID) &&
			(signal != 0 || status != 0 || r.ServicePID != 0) {
			return ServiceFailure, c
		}
	case "oom":
		if e.Probe != "oom" { // oom_victim: the subject is the victim
			c.Victim = e.Comm
			c.Sender = fieldString(e, "killer_comm")
		}
		return r.OOM, c
	case "panic":
		c.Text = fieldString(e, "message")
		return r.Panic, c
	case "oops":
		c.Text = fieldString(e, "message")
		sig, _ := eventUint(e, "sig")
		c.Sig = clampSig(sig)
		return r.Oops, c
	case "hung":
		c.Victim = e.Comm
		return r.Hung, c
	case "lockup":
		return r.Lockup, c
	}
	return NoFailure, c
}

// isService reports whether e's subject is the watched service.
func (r Rules) isService(e probe.Event) bool {
	return r.Service != "" && e.Comm == r.Service && (r.ServicePID == 0 || e.PID == r.ServicePID)
}

// exitStatus reads an exit event's status and killing signal: the
// "status" and "signal" fields the host decodes, else the wait(2) status
// in "code".
func exitStatus(e probe.Event) (status, signal uint64) {
	st, okS := eventUint(e, "status")
	sg, okG := eventUint(e, "signal")
	if okS || okG {
		return st, sg
	}
	if code, ok := eventUint(e, "code"); ok {
		return (code >> 8) & 0xff, code & 0x7f
	}
	return 0, 0
}

// eventUint reads a whole non-negative number from e's class fields, else
// its arguments. Fields hold uint32 or uint64 from the host's decoder and
// uint64 (or float64, for what is not a whole non-negative number) after
// a JSON round trip; anything else is absent.
func eventUint(e probe.Event, key string) (uint64, bool) {
	if v, ok := e.Fields[key]; ok {
		switch n := v.(type) {
		case uint64:
			return n, true
		case uint32:
			return uint64(n), true
		case uint16:
			return uint64(n), true
		case uint8:
			return uint64(n), true
		case uint:
			return uint64(n), true
		case int:
			if n >= 0 {
				return uint64(n), true
			}
		case int64:
			if n >= 0 {
				return uint64(n), true
			}
		case float64:
			if n >= 0 && n <= math.MaxUint32 && n == math.Trunc(n) {
				return uint64(n), true
			}
		}
		return 0, false
	}
	if v, ok := e.Args[key]; ok {
		return v, true
	}
	return 0, false
}

// fieldString reads a string class field; anything else is "".
func fieldString(e probe.Event, key string) string {
	s, _ := e.Fields[key].(string)
	return s
}

// clampSig makes a guest's signal number an int: 0 for none or nonsense.
func clampSig(n uint64) int {
	if n > 64 {
		return 0
	}
	return int(n)
}
