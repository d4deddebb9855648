package main

import (
	"context"
	"sync"

	"github.com/tracevisor/tracevisor/failover"
)

// recorder keeps every verdict of the detectors it wraps, so that a run
// can ask when each detector first saw the failure it caused, whether or
// not that detector decides.
type recorder struct {
	mu sync.Mutex
	vs []failover.Verdict
}

// maxVerdicts bounds what a recorder keeps (a guest can make a probe
// detector give many verdicts); later verdicts still pass through.
const maxVerdicts = 1 << 16

func (r *recorder) add(v failover.Verdict) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.vs) < maxVerdicts {
		r.vs = append(r.vs, v)
	}
}

// first returns detector's first verdict on node detected at or after
// since.
func (r *recorder) first(detector, node string, since int64) (failover.Verdict, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.vs {
		if v.Detector == detector && v.Node == node && v.DetectedNS >= since {
			return v, true
		}
	}
	return failover.Verdict{}, false
}

// decided reports whether a detector that decides gave a verdict on node
// at or after since.
func (r *recorder) decided(node string, since int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.vs {
		if !v.MeasureOnly && v.Node == node && v.DetectedNS >= since {
			return true
		}
	}
	return false
}

// failure returns the guest's time of the first failure on node a probe
// saw at or after since (the hit's kvmclock mapped to host time), or 0.
func (r *recorder) failure(node string, since int64) (hostNS int64, guestNS uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.vs {
		if v.Detector == "probe" && v.Node == node && v.DetectedNS >= since && v.Cause.HostNS != 0 {
			return v.Cause.HostNS, v.Cause.GuestNS
		}
	}
	return 0, 0
}

// wrap returns d with every verdict it gives recorded before it goes on.
func (r *recorder) wrap(d failover.Detector) failover.Detector { return tapped{d, r} }

// tapped is a Detector whose verdicts a recorder sees.
type tapped struct {
	failover.Detector
	r *recorder
}

// Rearm passes the manager's word that node rejoined on to the wrapped
// detector (failover.Rearmer).
func (t tapped) Rearm(node string) {
	if r, ok := t.Detector.(failover.Rearmer); ok {
		r.Rearm(node)
	}
}

// Run runs the wrapped detector, recording and passing on its verdicts,
// those it gave just before it returned included.
func (t tapped) Run(ctx context.Context, out chan<- failover.Verdict) error {
	mid := make(chan failover.Verdict, 16)
	done := make(chan error, 1)
	go func() { done <- t.Detector.Run(ctx, mid) }()
	pass := func(v failover.Verdict) {
		t.r.add(v)
		select {
		case out <- v:
		case <-ctx.Done():
		}
	}
	for {
		select {
		case v := <-mid:
			pass(v)
		case err := <-done:
			for {
				select {
				case v := <-mid:
					pass(v)
				default:
					return err
				}
			}
		}
	}
}
