package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/wire"
)

// FenceRuleSyntax is the fence rule grammar, for help texts and errors.
const FenceRuleSyntax = `KEY=VALUE[|VALUE...][,KEY=VALUE...], keys class (required), comm, sig, probe:
  class=oom|panic|oops               the guest's kernel is failing
  class=signal,comm=httpd,sig=KILL|TERM|SEGV   a fatal signal sent to httpd
  class=exit,comm=httpd              httpd exited`

// MaxFenceRules bounds the rules armed at once in one vmm.
const MaxFenceRules = 64

// FenceRule says which probe events make the VMM fence its guest by
// itself. Every key given must match; within a key, any of its values.
// It matches events, it arms no probe: the events come from the probes
// armed with --probe or attach (class=signal needs catalogue:signal, ...).
type FenceRule struct {
	Classes []string // class names (wire classes); at least one
	Comms   []string // the event subject's comm; empty: any
	Probes  []string // the probe's name; empty: any
	Signals []int    // class signal and oops: the signal; class exit: the killing signal; empty: any
}

// signalField is the class field that carries a signal, per class that
// has one (see probe's classFields and the exit class's decoding).
var signalField = map[string]string{
	wire.ClassSignal.String(): "sig",
	wire.ClassOops.String():   "sig",
	wire.ClassExit.String():   "signal",
}

// ParseFenceRule reads one rule in FenceRuleSyntax.
func ParseFenceRule(s string) (FenceRule, error) {
	r, err := parseFenceRule(s)
	if err != nil {
		return FenceRule{}, fmt.Errorf("fence rule %q: %w", s, err)
	}
	return r, nil
}

func parseFenceRule(s string) (FenceRule, error) {
	var r FenceRule
	if strings.TrimSpace(s) == "" {
		return r, errors.New("empty: want " + FenceRuleSyntax)
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return r, fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		if seen[k] {
			return r, fmt.Errorf("key %s given twice (list alternatives with |)", k)
		}
		seen[k] = true
		vals := strings.Split(v, "|")
		for _, x := range vals {
			if x == "" {
				return r, fmt.Errorf("%s: an empty value", k)
			}
		}
		switch k {
		case "class":
			for _, c := range vals {
				if _, ok := wire.ParseClass(c); !ok {
					return r, fmt.Errorf("class %q: want signal, oom, panic, oops, exit, hung, lockup or generic", c)
				}
			}
			r.Classes = vals
		case "comm":
			for _, c := range vals {
				if len(c) >= wire.CommLen {
					return r, fmt.Errorf("comm %q: a guest task's name has at most %d bytes", c, wire.CommLen-1)
				}
			}
			r.Comms = vals
		case "probe":
			r.Probes = vals
		case "sig":
			for _, x := range vals {
				n, err := probe.ParseSignal(x)
				if err != nil {
					return r, err
				}
				r.Signals = append(r.Signals, n)
			}
		default:
			return r, fmt.Errorf("unknown key %q: want class, comm, sig or probe", k)
		}
	}
	if len(r.Classes) == 0 {
		return r, errors.New("no class: every rule names one (class=oom, class=signal, ...)")
	}
	if len(r.Signals) > 0 {
		for _, c := range r.Classes {
			if signalField[c] == "" {
				return r, fmt.Errorf("sig with class %s: only signal, oops and exit events carry a signal", c)
			}
		}
	}
	return r, nil
}

// String writes the rule back in FenceRuleSyntax.
func (r FenceRule) String() string {
	parts := []string{"class=" + strings.Join(r.Classes, "|")}
	if len(r.Comms) > 0 {
		parts = append(parts, "comm="+strings.Join(r.Comms, "|"))
	}
	if len(r.Signals) > 0 {
		var names []string
		for _, n := range r.Signals {
			names = append(names, probe.SignalName(n))
		}
		parts = append(parts, "sig="+strings.Join(names, "|"))
	}
	if len(r.Probes) > 0 {
		parts = append(parts, "probe="+strings.Join(r.Probes, "|"))
	}
	return strings.Join(parts, ",")
}

// Match reports whether e is an event the rule fences on.
func (r FenceRule) Match(e probe.Event) bool {
	if !slices.Contains(r.Classes, e.Class) {
		return false
	}
	if len(r.Comms) > 0 && !slices.Contains(r.Comms, e.Comm) {
		return false
	}
	if len(r.Probes) > 0 && !slices.Contains(r.Probes, e.Probe) {
		return false
	}
	if len(r.Signals) > 0 {
		n, ok := fieldUint(e.Fields[signalField[e.Class]])
		if !ok || !slices.Contains(r.Signals, int(n)) {
			return false
		}
	}
	return true
}

// fieldUint reads a whole number class field as the host decodes it
// (uint32, uint64) or as JSON gives it back.
func fieldUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	case uint16:
		return uint64(n), true
	case uint8:
		return uint64(n), true
	case int:
		return uint64(n), n >= 0
	case float64:
		return uint64(n), n >= 0 && n == float64(uint64(n))
	}
	return 0, false
}
