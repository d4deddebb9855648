package failover

import "time"

// Timeline is one failover, every stage a host Unix nanosecond time (0: the
// stage did not happen, or is not known yet):
//
//	failure   in the guest: the probe hit that saw it (kvmclock mapped to
//	          host time), from the deciding verdict or from a measure-only
//	          probe detector beside a heartbeat
//	detected  the detector decided
//	received  the manager took the verdict
//	fenced    the failed node's VMM stopped it
//	moved     the service address is on the new active node
//	serving   the first successful client request after the move (from
//	          Config.AwaitServing)
//	recovered the failed node rejoined as a standby
type Timeline struct {
	Node     string `json:"node"`         // the failed active node
	To       string `json:"to,omitempty"` // the new active node; "" when the service went down
	Kind     Kind   `json:"kind"`
	Detector string `json:"detector"`
	Cause    Cause  `json:"cause"`

	FailureNS      int64  `json:"failure_ns,omitempty"`
	FailureGuestNS uint64 `json:"failure_guest_ns,omitempty"` // the guest's kvmclock at the hit
	DetectedNS     int64  `json:"detected_ns"`
	ReceivedNS     int64  `json:"received_ns"`
	FencedNS       int64  `json:"fenced_ns,omitempty"`
	MovedNS        int64  `json:"moved_ns,omitempty"`
	ServingNS      int64  `json:"serving_ns,omitempty"`
	RecoveredNS    int64  `json:"recovered_ns,omitempty"`

	// Detections is each detector's first verdict on this failure,
	// counting the ones that came after it was decided: what a heartbeat
	// beside the probes would have seen.
	Detections map[string]int64 `json:"detections"`

	Down     bool   `json:"down,omitempty"`  // no standby took over: the service is down
	Err      string `json:"error,omitempty"` // a fence, move or serving check that failed
	Complete bool   `json:"complete"`        // every stage up to serving is in (recovery may follow)
}

// stage returns the time from the failure (or, when that is not known,
// the detection) to ns.
func (t Timeline) stage(ns int64) (time.Duration, bool) {
	from := t.FailureNS
	if from == 0 {
		from = t.DetectedNS
	}
	if ns == 0 || from == 0 {
		return 0, false
	}
	return time.Duration(ns - from), true
}

// DetectionTime is failure → detected; false when the failure time in the
// guest is not known.
func (t Timeline) DetectionTime() (time.Duration, bool) {
	if t.FailureNS == 0 {
		return 0, false
	}
	return t.stage(t.DetectedNS)
}

// ServingTime is failure (or detection, when the failure time is not
// known) → the first successful request on the new active node.
func (t Timeline) ServingTime() (time.Duration, bool) { return t.stage(t.ServingNS) }

// clone returns a copy that shares nothing with t.
func (t *Timeline) clone() Timeline {
	c := *t
	c.Detections = make(map[string]int64, len(t.Detections))
	for k, v := range t.Detections {
		c.Detections[k] = v
	}
	return c
}
