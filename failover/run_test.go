package failover_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// detectorFunc is a Detector made of a function.
type detectorFunc struct {
	name string
	run  func(ctx context.Context, out chan<- failover.Verdict) error
}

func (d detectorFunc) Name() string { return d.name }
func (d detectorFunc) Run(ctx context.Context, out chan<- failover.Verdict) error {
	return d.run(ctx, out)
}

// TestRun: the probe detector and a second detector side by side on one
// cluster; the event fails the active over, the later verdict on the same
// failure is a duplicate, and an unwatched process's kill does nothing.
func TestRun(t *testing.T) {
	c := newCluster(t, true, "a", "b") // a stays recovering: the late verdict finds it out
	sa, sb := newStreams(), newStreams()
	pd := &failover.ProbeDetector{Rules: failover.DefaultRules("httpd"), Clock: c.clock,
		Sources: []failover.Source{{Node: "a", Open: sa.open}, {Node: "b", Open: sb.open}}}
	late := make(chan struct{})
	hb := detectorFunc{"heartbeat", func(ctx context.Context, out chan<- failover.Verdict) error {
		select {
		case <-late:
			out <- verdict("a", "heartbeat", failover.ServiceFailure, 0, t0.Add(10*time.Second))
		case <-ctx.Done():
		}
		<-ctx.Done()
		return ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.m.Run(ctx, pd, hb) }()
	streamA, streamB := sa.next(t), sb.next(t)
	send(t, streamB, sigEv("sleep", 50, 9)) // not the service
	send(t, streamA, sigEv("httpd", 100, 15))
	tl := c.timeline(t)
	if tl.Node != "a" || tl.To != "b" || tl.Detector != "probe" || tl.Cause.Sig != 15 {
		t.Errorf("timeline %+v", tl)
	}
	close(late)
	testenv.WaitFor(t, 5*time.Second, "the duplicate", func() bool { return c.m.Stats().Duplicates == 1 })
	if s := c.m.Stats(); s.Failovers != 1 || s.Verdicts != 2 {
		t.Errorf("stats %+v", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestRunDetectorError: a detector that cannot start stops Run with its
// error.
func TestRunDetectorError(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.m.Run(ctx, &failover.Heartbeat{}) // no targets
	if err == nil || !strings.Contains(err.Error(), "heartbeat") || ctx.Err() != nil {
		t.Errorf("Run: %v", err)
	}
}

// rearmDetector sends one verdict for a and records the manager's Rearm
// calls.
type rearmDetector struct {
	detectorFunc
	rearmed chan string
}

func (d rearmDetector) Rearm(node string) { d.rearmed <- node }

// TestRunRearmsOnRejoin: once a failed node is recovered and rejoins, the
// manager tells each detector that holds back repeated verdicts
// (failover.Rearmer), so a failure of the rebooted guest is reported.
func TestRunRearmsOnRejoin(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	d := rearmDetector{detectorFunc{"heartbeat", func(ctx context.Context, out chan<- failover.Verdict) error {
		out <- verdict("a", "heartbeat", failover.ServiceFailure, 0, t0)
		<-ctx.Done()
		return ctx.Err()
	}}, make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.m.Run(ctx, d)
	c.timeline(t) // a failed over to b
	select {
	case node := <-d.rearmed:
		if node != "a" {
			t.Errorf("rearmed %q, want a (the node that rejoined)", node)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the manager did not rearm the detector when a rejoined")
	}
	if s, _ := c.m.State("a"); s != failover.Standby {
		t.Errorf("a is %v after its recovery, want standby", s)
	}
}
