package failover

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/tracevisor/tracevisor/probe"
)

// SignalSet is a set of signals 1-63: bit N is signal N, as in a probe's
// signal filter.
type SignalSet uint64

// Signals returns the set of the given signal numbers; numbers outside
// 1-63 are left out.
func Signals(sigs ...int) SignalSet {
	var s SignalSet
	for _, n := range sigs {
		if n >= 1 && n <= 63 {
			s |= 1 << n
		}
	}
	return s
}

// Has reports whether signal n is in the set.
func (s SignalSet) Has(n int) bool { return n >= 1 && n <= 63 && s&(1<<n) != 0 }

// String lists the set's signals by name ("KILL,TERM,40").
func (s SignalSet) String() string {
	var names []string
	for m := uint64(s); m != 0; m &= m - 1 {
		names = append(names, probe.SignalName(bits.TrailingZeros64(m)))
	}
	return strings.Join(names, ",")
}

// ParseSignalSet reads a comma-separated list of signals, each a number
// or a name with or without "SIG" ("TERM,sigkill,9").
func ParseSignalSet(list string) (SignalSet, error) {
	var s SignalSet
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := probe.ParseSignal(f)
		if err != nil {
			return 0, fmt.Errorf("failover: signal list %q: %w", list, err)
		}
		s |= 1 << n
	}
	return s, nil
}

// SignalName returns "SIG" and a signal's name ("SIGTERM"), or "SIG40"
// for one without a name.
func SignalName(n int) string { return "SIG" + probe.SignalName(n) }

// Linux x86-64 signal numbers the rules name.
const (
	sigHUP    = 1
	sigINT    = 2
	sigQUIT   = 3
	sigILL    = 4
	sigTRAP   = 5
	sigABRT   = 6
	sigBUS    = 7
	sigFPE    = 8
	sigKILL   = 9
	sigUSR1   = 10
	sigSEGV   = 11
	sigUSR2   = 12
	sigPIPE   = 13
	sigALRM   = 14
	sigTERM   = 15
	sigSTKFLT = 16
	sigXCPU   = 24
	sigXFSZ   = 25
	sigVTALRM = 26
	sigPROF   = 27
	sigIO     = 29
	sigPWR    = 30
	sigSYS    = 31
)

// FatalByDefault is signal(7)'s list of signals whose default action
// terminates the process (Term or Core) on Linux x86-64: HUP INT QUIT ILL
// TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT XCPU XFSZ
// VTALRM PROF IO PWR SYS and the real-time signals 32-63. The others —
// CHLD, URG, WINCH (ignored), CONT (continue), STOP, TSTP, TTIN, TTOU
// (stop) — never kill a process that has no handler.
var FatalByDefault = Signals(sigHUP, sigINT, sigQUIT, sigILL, sigTRAP, sigABRT, sigBUS, sigFPE,
	sigKILL, sigUSR1, sigSEGV, sigUSR2, sigPIPE, sigALRM, sigTERM, sigSTKFLT, sigXCPU, sigXFSZ,
	sigVTALRM, sigPROF, sigIO, sigPWR, sigSYS) | realTimeSignals

// realTimeSignals are 32-63 (SIGRTMIN..; the mask holds no 64).
const realTimeSignals SignalSet = ^SignalSet(0) &^ (1<<32 - 1)

// CommonlyCaught are signals that are fatal by default but that servers
// routinely catch, ignore or use for themselves, so that a send of one is
// no sign of a death: HUP (reload), USR1, USR2 (log reopen, status), PIPE
// (a write to a closed connection; servers ignore it), ALRM (timeouts, as
// busybox httpd's per-request alarm) and the real-time signals (glibc
// uses 32 and 33 for its threads; programs that use the others handle
// them). DefaultRules leaves them out of FatalSignals; if one does kill
// the service, the exit rule sees the death.
var CommonlyCaught = Signals(sigHUP, sigUSR1, sigUSR2, sigPIPE, sigALRM) | realTimeSignals
