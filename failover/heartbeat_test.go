package failover_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

// switchCheck fails while down is set, and counts its calls.
type switchCheck struct {
	down  atomic.Bool
	calls atomic.Int64
}

func (c *switchCheck) Check(context.Context) error {
	c.calls.Add(1)
	if c.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// hbRun starts h on a fake clock and returns the clock, the verdicts and
// a step function: advance the clock one period once h waits on it, and
// wait for that round's checks.
func hbRun(t *testing.T, h *failover.Heartbeat, check *switchCheck) (*failover.FakeClock, chan failover.Verdict, func(time.Duration)) {
	t.Helper()
	clock := failover.NewFakeClock(t0)
	h.Clock = clock
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan failover.Verdict, 10)
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("heartbeat did not stop")
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(wcancel)
	waitRound := func() {
		if err := clock.WaitForWaiters(wctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitRound() // the first round ran at start
	step := func(d time.Duration) {
		before := h.Polls()
		clock.Advance(d)
		waitRound()
		if h.Polls() != before+1 {
			t.Fatalf("advancing %v ran %d rounds, want 1", d, h.Polls()-before)
		}
	}
	return clock, out, step
}

func noVerdict(t *testing.T, out chan failover.Verdict) {
	t.Helper()
	select {
	case v := <-out:
		t.Fatalf("unexpected verdict %s", v)
	default:
	}
}

func oneVerdict(t *testing.T, out chan failover.Verdict) failover.Verdict {
	t.Helper()
	select {
	case v := <-out:
		return v
	default:
		t.Fatal("no verdict")
	}
	panic("unreachable")
}

// TestHeartbeatMisses: two consecutive misses (counted on the fake clock)
// give one verdict; it is not repeated while the check keeps failing; a
// pass resets the count.
func TestHeartbeatMisses(t *testing.T) {
	check := &switchCheck{}
	h := &failover.Heartbeat{Targets: []failover.Target{{Node: "a", Kind: failover.ServiceFailure, Check: check}},
		Period: 10 * time.Second, Misses: 2}
	clock, out, step := hbRun(t, h, check)
	step(10 * time.Second)
	noVerdict(t, out)
	check.down.Store(true)
	step(10 * time.Second) // miss 1
	noVerdict(t, out)
	step(10 * time.Second) // miss 2
	v := oneVerdict(t, out)
	if v.Node != "a" || v.Kind != failover.ServiceFailure || v.Detector != "heartbeat" || v.Cause.Misses != 2 ||
		!strings.Contains(v.Cause.Detail, "connection refused") || v.DetectedNS != t0.Add(30*time.Second).UnixNano() {
		t.Errorf("verdict %+v", v)
	}
	if v.DetectedNS != clock.Now().UnixNano() {
		t.Errorf("detected at %d, clock at %d", v.DetectedNS, clock.Now().UnixNano())
	}
	step(10 * time.Second)
	step(10 * time.Second)
	noVerdict(t, out) // still down: reported once
	check.down.Store(false)
	step(10 * time.Second)
	check.down.Store(true)
	step(10 * time.Second)
	noVerdict(t, out) // one miss after a pass
	check.down.Store(false)
	step(10 * time.Second)
	check.down.Store(true)
	step(10 * time.Second)
	step(10 * time.Second)
	oneVerdict(t, out)
	if n := check.calls.Load(); n != int64(h.Polls()) {
		t.Errorf("%d checks in %d rounds", n, h.Polls())
	}
}

// TestHeartbeatDefaults: a 10 s period, and the first failed poll decides
// (the seed's Heartbeat measurement).
func TestHeartbeatDefaults(t *testing.T) {
	check := &switchCheck{}
	h := &failover.Heartbeat{Targets: []failover.Target{{Node: "a", Kind: failover.VMFailure, Check: check}}}
	clock, out, step := hbRun(t, h, check)
	check.down.Store(true)
	clock.Advance(9 * time.Second) // not yet a period
	if h.Polls() != 1 {
		t.Fatalf("%d rounds 9 s in, want 1", h.Polls())
	}
	step(time.Second)
	v := oneVerdict(t, out)
	if v.Kind != failover.VMFailure || v.Cause.Misses != 1 || v.DetectedNS != t0.Add(10*time.Second).UnixNano() {
		t.Errorf("verdict %+v: want a VM failure after one miss, 10 s in", v)
	}
}

// TestHeartbeatTimeout: a check that hangs is a miss once its timeout
// passes.
func TestHeartbeatTimeout(t *testing.T) {
	hang := failover.CheckFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	h := &failover.Heartbeat{Targets: []failover.Target{{Node: "a", Kind: failover.ServiceFailure, Check: hang}},
		Period: time.Second, Timeout: 20 * time.Millisecond, Label: "heartbeat-1s"}
	out := make(chan failover.Verdict, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go h.Run(ctx, out)
	select {
	case v := <-out:
		if v.Detector != "heartbeat-1s" || !strings.Contains(v.Cause.Detail, "deadline") {
			t.Errorf("verdict %+v", v)
		}
	case <-ctx.Done():
		t.Fatal("a hanging check never timed out")
	}
}

func TestHeartbeatConfigErrors(t *testing.T) {
	ok := failover.Target{Node: "a", Kind: failover.ServiceFailure, Check: &switchCheck{}}
	for _, h := range []*failover.Heartbeat{
		{},
		{Targets: []failover.Target{ok}, Period: time.Second, Timeout: 2 * time.Second},
		{Targets: []failover.Target{ok}, Period: -time.Second},
		{Targets: []failover.Target{{Node: "a", Check: &switchCheck{}}}}, // no kind
		{Targets: []failover.Target{{Node: "a", Kind: failover.VMFailure}}},
	} {
		if err := h.Run(context.Background(), make(chan failover.Verdict)); err == nil {
			t.Errorf("Run accepted %+v", h)
		}
	}
}

// TestHeartbeatMeasureOnly: a measuring heartbeat (the tuned one beside
// the deciding one) marks its verdicts measure-only under its label.
func TestHeartbeatMeasureOnly(t *testing.T) {
	check := &switchCheck{}
	h := &failover.Heartbeat{Targets: []failover.Target{{Node: "a", Kind: failover.ServiceFailure, Check: check}},
		Period: time.Second, Label: "heartbeat-1s", MeasureOnly: true}
	_, out, step := hbRun(t, h, check)
	check.down.Store(true)
	step(time.Second)
	if v := oneVerdict(t, out); !v.MeasureOnly || v.Detector != "heartbeat-1s" {
		t.Errorf("verdict %+v: want measure-only from heartbeat-1s", v)
	}
}

// hookCheck fails while down is set and runs during (if set) inside the
// check, as a round is in flight.
type hookCheck struct {
	switchCheck
	during func()
}

func (c *hookCheck) Check(ctx context.Context) error {
	if c.during != nil {
		c.during()
		c.during = nil
	}
	return c.switchCheck.Check(ctx)
}

// TestHeartbeatRearm: a node reported once is not reported again while
// its checks keep failing, unless the manager rearms it (the node was
// rebooted): then the next round that started after Rearm reports it,
// even with no pass in between; a Rearm while a round is in flight does
// not apply to that round (its check may have seen the old guest).
func TestHeartbeatRearm(t *testing.T) {
	check := &hookCheck{}
	check.down.Store(true)
	h := &failover.Heartbeat{Targets: []failover.Target{{Node: "a", Kind: failover.ServiceFailure, Check: check}},
		Period: 10 * time.Second}
	_, out, step := hbRun(t, h, &check.switchCheck)
	oneVerdict(t, out) // the first round's miss
	step(10 * time.Second)
	noVerdict(t, out) // still down: reported once
	h.Rearm("a")
	step(10 * time.Second)
	if v := oneVerdict(t, out); v.Node != "a" {
		t.Errorf("verdict after Rearm for %q", v.Node)
	}
	step(10 * time.Second)
	noVerdict(t, out) // once again
	check.during = func() { h.Rearm("a") }
	step(10 * time.Second) // Rearm inside this round's check
	noVerdict(t, out)
	step(10 * time.Second)
	oneVerdict(t, out)
	h.Rearm("b") // not a target: nothing
	step(10 * time.Second)
	noVerdict(t, out)
}
