package failover

import (
	"context"
	"fmt"
	"strings"
)

// Kind is what a verdict says failed, or, in Rules, what an event counts
// as.
type Kind uint8

// Kinds. NoFailure in a rule means the event gives no verdict.
const (
	NoFailure      Kind = iota // not a failure
	ServiceFailure             // the watched service died; the VM may be fine
	VMFailure                  // the guest itself is in trouble (OOM, panic, oops, hung)
)

// String returns "none", "service" or "vm".
func (k Kind) String() string {
	switch k {
	case NoFailure:
		return "none"
	case ServiceFailure:
		return "service"
	case VMFailure:
		return "vm"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{NoFailure, ServiceFailure, VMFailure} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("failover: unknown failure kind %q", b)
}

// Cause is why a detector gave a verdict. For the probe detector it is the
// event's subject and class fields; for the heartbeat, the check that
// failed and how often.
type Cause struct {
	Rule    string `json:"rule"`            // the rule that matched: signal, exit, oom, panic, oops, hung, lockup, stream, check
	Probe   string `json:"probe,omitempty"` // the probe's name ("signal", "oom_victim", ...)
	Class   string `json:"class,omitempty"` // the event's class
	PID     uint32 `json:"pid,omitempty"`   // the event's subject (tgid)
	TID     uint32 `json:"tid,omitempty"`
	Comm    string `json:"comm,omitempty"`
	Sig     int    `json:"sig,omitempty"`    // the signal sent, or that killed an exiting task
	Victim  string `json:"victim,omitempty"` // the task the failure befell (signal target, exiting task, OOM victim), where the event names one
	Sender  string `json:"sender,omitempty"` // who sent the signal or ran the OOM killer
	Text    string `json:"text,omitempty"`   // a panic or oops message
	GuestNS uint64 `json:"guest_ns,omitempty"`
	HostNS  int64  `json:"host_ns,omitempty"` // the guest's hit on the host clock (kvmclock mapped); 0 when not known
	Misses  int    `json:"misses,omitempty"`  // heartbeat: consecutive failed checks
	Detail  string `json:"detail,omitempty"`  // heartbeat: the last check's error; stream: why it ended
}

// String describes the cause in one line for the journal.
func (c Cause) String() string {
	var b strings.Builder
	b.WriteString(c.Rule)
	if c.Probe != "" {
		fmt.Fprintf(&b, " (probe %s)", c.Probe)
	}
	if c.Sig != 0 {
		fmt.Fprintf(&b, " sig %s", SignalName(c.Sig))
	}
	if c.Comm != "" || c.PID != 0 {
		fmt.Fprintf(&b, " %s[%d]", c.Comm, c.PID)
	}
	if c.Victim != "" && c.Victim != c.Comm {
		fmt.Fprintf(&b, " victim %s", c.Victim)
	}
	if c.Sender != "" {
		fmt.Fprintf(&b, " by %s", c.Sender)
	}
	if c.Text != "" {
		fmt.Fprintf(&b, " %q", c.Text)
	}
	if c.Misses != 0 {
		fmt.Fprintf(&b, " after %d misses", c.Misses)
	}
	if c.Detail != "" {
		fmt.Fprintf(&b, ": %s", c.Detail)
	}
	return b.String()
}

// Verdict is a detector's decision that a node failed.
type Verdict struct {
	Node     string `json:"node"`
	Kind     Kind   `json:"kind"`
	Detector string `json:"detector"` // the Detector's Name
	Cause    Cause  `json:"cause"`
	// DetectedNS is when the detector decided, host Unix nanoseconds.
	DetectedNS int64 `json:"detected_ns"`
	// MeasureOnly marks a verdict the manager must not act on: a probe
	// detector beside a heartbeat-only cluster, there to time the
	// failure in the guest, not to decide.
	MeasureOnly bool `json:"measure_only,omitempty"`
}

// String describes the verdict in one line.
func (v Verdict) String() string {
	return fmt.Sprintf("%s: %s failure of %s: %s", v.Detector, v.Kind, v.Node, v.Cause)
}

// Detector watches nodes and reports failures. Both the probe detector and
// the heartbeat implement it; a cluster may run several side by side.
type Detector interface {
	// Name says which detector a verdict came from ("probe", "heartbeat").
	Name() string
	// Run watches until ctx ends, sending each verdict on out; it returns
	// ctx's error, or another error that stopped it.
	Run(ctx context.Context, out chan<- Verdict) error
}

// Rearmer is a Detector that reports a failing node once and then holds
// back until it sees the node healthy again (the heartbeat). The manager
// calls Rearm when a node rejoins after its recovery: the rebooted guest
// is a new one, and its failure must be reported even if none of the
// detector's checks passed in between (a check that timed out while a
// neighbour booted, say). A wrapper around a Detector must pass Rearm on.
type Rearmer interface {
	Rearm(node string)
}
