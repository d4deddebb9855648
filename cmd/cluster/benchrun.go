package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

// The experiment's failures, as the seed's Tables 1 and 2.
const (
	failSignal = "signal" // the service daemon killed by SIGKILL
	failOOM    = "oom"    // a memory hog drives the guest into OOM; the OOM killer takes the hog
)

// result is one run's outcome in one cluster.
type result struct {
	Run     int
	Failure string
	Cluster string
	Node    string // the active node the failure was caused on

	InjectNS       int64  // when the host asked the guest to fail
	FailureNS      int64  // the failure in the guest (a probe's hit on the host clock); 0 not seen
	FailureGuestNS uint64 // the same on the guest's kvmclock
	// Detected is each awaited detector's first verdict on the node
	// (host ns); absent: not within the never-detected timeout.
	Detected map[string]int64
	// Timeline is the failover this failure caused, if any.
	Timeline *failover.Timeline
	Outage   vmmnode.Outage
	Err      string
}

// from is the time detection and outage are measured from: the failure in
// the guest, else (never seen by a probe) the injection.
func (r result) from() int64 {
	if r.FailureNS != 0 {
		return r.FailureNS
	}
	return r.InjectNS
}

// detection returns detector's detection time; false when it never
// detected the failure, the failure time is not known, or its verdict
// came before the failure (early).
func (r result) detection(detector string) (time.Duration, bool) {
	ns, ok := r.Detected[detector]
	if !ok || r.FailureNS == 0 || ns < r.FailureNS {
		return 0, false
	}
	return time.Duration(ns - r.FailureNS), true
}

// early reports whether detector's verdict came before the failure in the
// guest, or with no failure seen at all: a heartbeat whose check timed out
// while the memory hog was still
// filling the guest (an emulated guest under memory pressure answers
// nothing for seconds) failed the node before its OOM.
func (r result) early(detector string) bool {
	ns, ok := r.Detected[detector]
	return ok && (r.FailureNS == 0 || ns < r.FailureNS)
}

// runOnce causes failure in every cluster's active node at once and
// returns once each cluster has seen it out: every awaited detector
// detected it or the never-detected timeout passed, a failover it caused
// is complete and the client saw the new active, and the cluster is
// protected again (the failed node rejoined as a standby).
func runOnce(ctx context.Context, o benchOpts, k int, failure string, cs []*benchCluster) ([]result, error) {
	rs := make([]result, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, b := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i], errs[i] = runCluster(ctx, o, k, failure, b)
		}()
	}
	wg.Wait()
	return rs, errors.Join(errs...)
}

// runCluster is runOnce for one cluster. A run that cannot be measured
// (the failure never happened in the guest) is a result with Err set;
// an error means the cluster cannot go on.
func runCluster(ctx context.Context, o benchOpts, k int, failure string, b *benchCluster) (result, error) {
	r := result{Run: k, Failure: failure, Cluster: b.name, Detected: map[string]int64{}}
	if err := waitUntil(ctx, o.settle, b.healthy); err != nil {
		return r, fmt.Errorf("%s cluster not protected before run %d: %w; states %v", b.name, k, err, b.m.Status().Nodes)
	}
	for drained := false; !drained; {
		select {
		case <-b.timelines: // a failover no run caused: counted as false by the manager's stats
		default:
			drained = true
		}
	}
	r.Node = b.m.Status().Active
	// The client must reach the active first. It polls only from the
	// failure on: each request forks a child of busybox httpd, which
	// takes a guest seconds while four guests share two emulating cores,
	// and a client polling all along would time the heartbeat's own checks
	// out (false failovers).
	svc := b.cl.Service().String()
	if err := waitUntil(ctx, time.Minute, func() bool {
		by, err := b.cl.Client().Get(ctx, svc, o.reqTimeout)
		return err == nil && by == r.Node
	}); err != nil {
		// Not measurable; the next run waits for the cluster again.
		r.Err = fmt.Sprintf("the client got no answer from %s before the failure: %v", r.Node, err)
		return r, waitUntil(ctx, o.settle, b.healthy)
	}
	poll := b.cl.Client().PollN(svc, o.poll, o.reqTimeout, 1)
	defer poll.Stop()

	r.InjectNS = time.Now().UnixNano()
	if s, _ := b.m.State(r.Node); s != failover.Active {
		// A false failover took the node between the checks.
		r.Err = fmt.Sprintf("%s was %s, not active, when the failure was to be caused", r.Node, s)
		return r, waitUntil(ctx, o.settle, b.healthy)
	}
	go inject(ctx, b, r.Node, failure) // its answer may never come: the fence can beat it

	// The failure in the guest, as a probe saw it.
	failWait := o.never
	if failure == failOOM {
		failWait = o.oomWait
	}
	// A node fenced before its failure (a heartbeat that timed out while
	// the hog filled the guest) never gets to fail: a few seconds for a
	// probe event in flight, then no more waiting.
	var leftActive time.Time
	if err := waitUntil(ctx, failWait, func() bool {
		r.FailureNS, r.FailureGuestNS = b.rec.failure(r.Node, r.InjectNS)
		if r.FailureNS != 0 {
			return true
		}
		if s, _ := b.m.State(r.Node); s != failover.Active && leftActive.IsZero() {
			leftActive = time.Now()
		}
		return !leftActive.IsZero() && time.Since(leftActive) > 5*time.Second
	}); err != nil {
		r.Err = fmt.Sprintf("no probe saw the %s failure within %v of the injection", failure, failWait)
	} else if r.FailureNS == 0 {
		r.Err = fmt.Sprintf("%s was failed over before the %s failure happened in it", r.Node, failure)
	}
	// Each awaited detector, until all have detected or the timeout.
	deadline := time.Unix(0, r.from()).Add(o.never)
	waitUntil(ctx, time.Until(deadline), func() bool {
		all := true
		for _, d := range b.awaited {
			if _, ok := r.Detected[d]; ok {
				continue
			}
			if v, ok := b.rec.first(d, r.Node, r.InjectNS); ok {
				r.Detected[d] = v.DetectedNS
			} else {
				all = false
			}
		}
		return all
	})
	// A failover the failure caused: its timeline, the client back.
	for tl := range collectTimelines(b, r.Node, r.InjectNS, 2*o.never) {
		r.Timeline = &tl
		break
	}
	if tl := r.Timeline; tl != nil && tl.To != "" {
		waitUntil(ctx, 30*time.Second, func() bool { return poll.Outage().Last == tl.To })
	}
	r.Outage = poll.Stop()
	if err := waitUntil(ctx, o.settle, b.healthy); err != nil {
		return r, fmt.Errorf("%s cluster not protected again after run %d: %w; states %v", b.name, k, err, b.m.Status().Nodes)
	}
	return r, nil
}

// collectTimelines yields the complete failover of node, if one comes:
// it waits up to wait when a deciding detector gave a verdict on node
// since since (the manager takes it just after the recorder) or the node
// is no longer active, and only looks once otherwise.
func collectTimelines(b *benchCluster, node string, since int64, wait time.Duration) <-chan failover.Timeline {
	out := make(chan failover.Timeline, 1)
	go func() {
		defer close(out)
		if s, _ := b.m.State(node); s == failover.Active && !b.rec.decided(node, since) {
			wait = 0
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case tl := <-b.timelines:
				if tl.Node == node {
					out <- tl
					return
				}
			case <-t.C:
				return
			}
		}
	}()
	return out
}

// inject causes the failure in node's guest.
func inject(ctx context.Context, b *benchCluster, node, failure string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch failure {
	case failSignal:
		b.cl.Inject(ctx, node, api.Injection{Kind: "signal", Comm: vmmnode.DefaultService, Signal: 9})
	case failOOM:
		b.cl.StartHog(ctx, node)
	}
}

// waitUntil calls ok every 20 ms until it says true, for up to d (or
// until ctx ends).
func waitUntil(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
