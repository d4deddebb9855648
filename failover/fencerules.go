package failover

import (
	"strconv"
	"strings"
)

// FenceRules returns the rules' failures that a VMM can recognise by
// itself, in the vmm's fence rule syntax (api.FenceRuleSyntax), for a
// manager to arm in each node's VMM: the guest is then fenced within a
// millisecond of the event, before the verdict reaches the manager. They
// cover:
//
//   - every VM-level class the rules call a failure (oom, panic, oops,
//     hung, lockup), as one rule;
//   - a fatal signal sent to the service (FatalSignals);
//   - the service killed by a fatal signal (its exit event).
//
// What a VMM cannot tell apart stays with the manager: a non-zero exit
// status, a service narrowed to one pid (ServicePID), a thread's exit
// (the VMM's rule matches any task of that comm). With ServicePID set no
// service rule is given at all: the VMM would fence on the service's
// children too.
func (r Rules) FenceRules() []string {
	var out, classes []string
	for _, c := range []struct {
		name string
		kind Kind
	}{{"oom", r.OOM}, {"panic", r.Panic}, {"oops", r.Oops}, {"hung", r.Hung}, {"lockup", r.Lockup}} {
		if c.kind != NoFailure {
			classes = append(classes, c.name)
		}
	}
	if len(classes) > 0 {
		out = append(out, "class="+strings.Join(classes, "|"))
	}
	if r.Service == "" || r.ServicePID != 0 || r.FatalSignals == 0 {
		return out
	}
	var sigs []string
	for n := 1; n <= 63; n++ {
		if r.FatalSignals.Has(n) {
			sigs = append(sigs, strconv.Itoa(n))
		}
	}
	list := strings.Join(sigs, "|")
	out = append(out, "class=signal,comm="+r.Service+",sig="+list)
	if r.Exit {
		out = append(out, "class=exit,comm="+r.Service+",sig="+list)
	}
	return out
}
