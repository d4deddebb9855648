package failover_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

type cluster struct {
	m       *failover.Manager
	act     *recorder
	clock   *failover.FakeClock
	journal *bytes.Buffer
	done    chan failover.Timeline
}

func newCluster(t *testing.T, gated bool, nodes ...string) *cluster {
	t.Helper()
	c := &cluster{clock: failover.NewFakeClock(t0), journal: &bytes.Buffer{}, done: make(chan failover.Timeline, 10)}
	c.act = newRecorder(c.clock, nodes[0])
	c.act.gated = gated
	m, err := failover.NewManager(failover.Config{
		Nodes: nodes, Actions: c.act, Clock: c.clock, Journal: failover.NewJournal(c.journal),
		AwaitServing: func(_ context.Context, node string) (time.Time, error) {
			return c.clock.Now().Add(5 * time.Millisecond), nil
		},
		OnTimeline: func(tl failover.Timeline) { c.done <- tl },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	c.m = m
	return c
}

func (c *cluster) timeline(t *testing.T) failover.Timeline {
	t.Helper()
	select {
	case tl := <-c.done:
		return tl
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a timeline")
	}
	panic("unreachable")
}

func verdict(node, detector string, kind failover.Kind, hostNS int64, detected time.Time) failover.Verdict {
	return failover.Verdict{Node: node, Kind: kind, Detector: detector, DetectedNS: detected.UnixNano(),
		Cause: failover.Cause{Rule: "signal", Comm: "httpd", PID: 100, Sig: 9, HostNS: hostNS, GuestNS: 77}}
}

// TestFailover: a verdict for the active fences it, then moves the
// address to the standby (which becomes active), then recovers the failed
// node, which rejoins as the standby; every stage is timed.
func TestFailover(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	failure := t0.Add(-3 * time.Millisecond)
	if err := c.m.Handle(verdict("a", "probe", failover.ServiceFailure, failure.UnixNano(), t0)); err != nil {
		t.Fatal(err)
	}
	tl := c.timeline(t)
	waitState(t, c.m, "a", failover.Standby)
	if got, want := c.act.log(), []string{"fence a", "move b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q (fence before move)", got, want)
	}
	c.act.recovered(t, "recover a (service)")
	if st := c.m.Status(); st.Active != "b" || st.Nodes["b"] != failover.Active || c.act.holder() != "b" {
		t.Errorf("status %+v, address on %s: want b active", st, c.act.holder())
	}
	if tl.Node != "a" || tl.To != "b" || tl.Down || tl.Err != "" || !tl.Complete {
		t.Errorf("timeline %+v", tl)
	}
	// Stages in order on the fake clock: fence took 1 ms, the move 1 ms,
	// the first answer 5 ms after.
	if tl.FailureNS != failure.UnixNano() || tl.FailureGuestNS != 77 || tl.DetectedNS != t0.UnixNano() ||
		tl.FencedNS != t0.Add(time.Millisecond).UnixNano() || tl.MovedNS != t0.Add(2*time.Millisecond).UnixNano() ||
		tl.ServingNS != t0.Add(7*time.Millisecond).UnixNano() {
		t.Errorf("timeline stages %+v", tl)
	}
	if d, ok := tl.DetectionTime(); !ok || d != 3*time.Millisecond {
		t.Errorf("detection time %v %v, want 3ms", d, ok)
	}
	if d, ok := tl.ServingTime(); !ok || d != 10*time.Millisecond {
		t.Errorf("serving time %v %v, want 10ms", d, ok)
	}
	if all := c.m.Timelines(); len(all) != 1 || all[0].RecoveredNS == 0 {
		t.Errorf("timelines %+v: want one, recovered", all)
	}
	checkJournal(t, c.journal.String(), []string{
		"a active failed", "a failed fenced", "b standby active", "service up b",
		"a fenced recovering", "a recovering standby",
	})
	if s := c.m.Stats(); s.Failovers != 1 || s.Recoveries != 1 || s.Duplicates != 0 {
		t.Errorf("stats %+v", s)
	}
}

// checkJournal checks the journal's lines, each written as "node from to"
// or "service up|down [active]".
func checkJournal(t *testing.T, journal string, want []string) {
	t.Helper()
	var got []string
	sc := bufio.NewScanner(strings.NewReader(journal))
	for sc.Scan() {
		var l struct {
			Node, From, To, Service, Active, Cause string
			TimeNS                                 int64 `json:"time_ns"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		if l.TimeNS == 0 || l.Cause == "" {
			t.Errorf("journal line %s lacks a time or a cause", sc.Text())
		}
		if l.Service != "" {
			got = append(got, strings.TrimSpace("service "+l.Service+" "+l.Active))
		} else {
			got = append(got, l.Node+" "+l.From+" "+l.To)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("journal:\n%s\nwant:\n%s\n(raw:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), journal)
	}
}

// TestFailback: after the failed node rejoins, a failure of the new active
// moves the address back.
func TestFailback(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	c.m.Handle(verdict("a", "probe", failover.ServiceFailure, 0, t0))
	c.timeline(t)
	waitState(t, c.m, "a", failover.Standby)
	c.m.Handle(verdict("b", "probe", failover.VMFailure, 0, t0))
	tl := c.timeline(t)
	waitState(t, c.m, "b", failover.Standby)
	want := []string{"fence a", "move b", "fence b", "move a"}
	if got := c.act.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}
	c.act.recovered(t, "recover a (service)", "recover b (vm)")
	if tl.Node != "b" || tl.To != "a" || c.m.Status().Active != "a" || c.act.holder() != "a" {
		t.Errorf("after failback: timeline %+v, status %+v", tl, c.m.Status())
	}
	if s := c.m.Stats(); s.Failovers != 2 || s.Recoveries != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestThreeNodes: the first standby in order takes over; the next
// failure goes to the next healthy one.
func TestThreeNodes(t *testing.T) {
	c := newCluster(t, true, "a", "b", "c")
	c.m.Handle(verdict("a", "probe", failover.ServiceFailure, 0, t0))
	if tl := c.timeline(t); tl.To != "b" {
		t.Fatalf("a's failover went to %q, want b", tl.To)
	}
	c.m.Handle(verdict("b", "probe", failover.ServiceFailure, 0, t0)) // a still recovering
	if tl := c.timeline(t); tl.To != "c" {
		t.Fatalf("b's failover went to %q, want c", tl.To)
	}
	if st := c.m.Status(); st.Active != "c" || st.Nodes["a"] != failover.Recovering || st.Nodes["b"] != failover.Recovering {
		t.Errorf("status %+v", st)
	}
}

// TestServiceDown: with the standby already out, a failure of the active
// fences it and moves nothing: the service is reported down, with no
// failover loop; the first node to rejoin takes the service.
func TestServiceDown(t *testing.T) {
	c := newCluster(t, true, "a", "b")
	if err := c.m.Handle(verdict("b", "heartbeat", failover.VMFailure, 0, t0)); err != nil {
		t.Fatal(err)
	}
	if st := c.m.Status(); st.Active != "a" || st.Nodes["b"] != failover.Recovering {
		t.Fatalf("after the standby failed: %+v", st)
	}
	c.m.Handle(verdict("a", "probe", failover.ServiceFailure, 0, t0))
	tl := c.timeline(t)
	if !tl.Down || tl.To != "" || tl.MovedNS != 0 || tl.FencedNS == 0 {
		t.Errorf("timeline %+v: want down, fenced, nothing moved", tl)
	}
	want := []string{"fence b", "fence a"}
	if got := c.act.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q: no move while no standby is healthy", got, want)
	}
	c.act.recovered(t, "recover a (service)", "recover b (vm)")
	if st := c.m.Status(); st.Active != "" {
		t.Errorf("status %+v: want no active node", st)
	}
	if s := c.m.Stats(); s.Down != 1 || s.StandbyFailures != 1 || s.Failovers != 0 {
		t.Errorf("stats %+v", s)
	}
	if !strings.Contains(c.journal.String(), `"service":"down"`) {
		t.Errorf("journal does not say the service is down:\n%s", c.journal.String())
	}
	// More verdicts for the failed nodes change nothing.
	c.m.Handle(verdict("a", "heartbeat", failover.ServiceFailure, 0, t0))
	c.m.Handle(verdict("b", "heartbeat", failover.ServiceFailure, 0, t0))
	if got := c.act.log(); len(got) != 2 {
		t.Fatalf("actions after duplicate verdicts %q", got)
	}
	c.act.release("b")
	waitState(t, c.m, "b", failover.Active)
	if got := c.act.log(); got[len(got)-1] != "move b" || c.m.Status().Active != "b" {
		t.Errorf("after b rejoined: actions %q, status %+v", got, c.m.Status())
	}
}

// TestDuplicateVerdicts: the probe and the heartbeat both see one failure;
// the second verdict is counted and timed, not acted on.
func TestDuplicateVerdicts(t *testing.T) {
	c := newCluster(t, true, "a", "b")
	c.m.Handle(verdict("a", "probe", failover.ServiceFailure, 0, t0))
	c.timeline(t)
	later := t0.Add(5 * time.Second)
	for i := 0; i < 3; i++ {
		if err := c.m.Handle(verdict("a", "heartbeat", failover.ServiceFailure, 0, later.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.act.log(); !reflect.DeepEqual(got, []string{"fence a", "move b"}) {
		t.Fatalf("actions %q: duplicates acted on", got)
	}
	c.act.recovered(t, "recover a (service)")
	if s := c.m.Stats(); s.Duplicates != 3 || s.Failovers != 1 {
		t.Errorf("stats %+v: want 3 duplicates, 1 failover", s)
	}
	tl := c.m.Timelines()[0]
	if tl.Detections["probe"] != t0.UnixNano() || tl.Detections["heartbeat"] != later.UnixNano() {
		t.Errorf("detections %v: want the probe's and the heartbeat's first", tl.Detections)
	}
	if err := c.m.Handle(verdict("zz", "probe", failover.VMFailure, 0, t0)); err == nil || c.m.Stats().Unknown != 1 {
		t.Errorf("verdict for an unknown node: %v, stats %+v", err, c.m.Stats())
	}
}

// TestFenceFails: a node that cannot be fenced keeps the address away from
// the standby (no split brain) and is not recovered.
func TestFenceFails(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	c.act.failFence["a"] = errors.New("vmm not answering")
	if err := c.m.Handle(verdict("a", "probe", failover.VMFailure, 0, t0)); err == nil {
		t.Error("a failed fence returned no error")
	}
	tl := c.timeline(t)
	if got := c.act.log(); !reflect.DeepEqual(got, []string{"fence a"}) {
		t.Fatalf("actions %q: want only the fence", got)
	}
	c.act.recovered(t) // an unfenced node's state is unknown: not recovered
	if !tl.Down || !strings.Contains(tl.Err, "vmm not answering") {
		t.Errorf("timeline %+v", tl)
	}
	if st := c.m.Status(); st.Active != "" || st.Nodes["a"] != failover.Failed || st.Nodes["b"] != failover.Standby {
		t.Errorf("status %+v", st)
	}
}

// TestMoveFails: a standby that cannot take the address is taken out and
// the next one is tried.
func TestMoveFails(t *testing.T) {
	c := newCluster(t, true, "a", "b", "c")
	c.act.failMove["b"] = errors.New("netlink: no such device")
	err := c.m.Handle(verdict("a", "probe", failover.ServiceFailure, 0, t0))
	if err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("Handle: %v", err)
	}
	tl := c.timeline(t)
	want := []string{"fence a", "move b", "fence b", "move c"}
	if got := c.act.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}
	c.act.recovered(t, "recover a (service)", "recover b (vm)")
	if tl.To != "c" || c.act.holder() != "c" || c.m.Status().Active != "c" {
		t.Errorf("timeline %+v, holder %s", tl, c.act.holder())
	}
}

// TestRecoveryFails: a node whose recovery fails is fenced again and
// stays out: it never rejoins as a standby.
func TestRecoveryFails(t *testing.T) {
	c := newCluster(t, false, "a", "b")
	c.act.failRec["a"] = errors.New("boot failed")
	c.m.Handle(verdict("a", "probe", failover.VMFailure, 0, t0))
	c.timeline(t)
	testenv.WaitFor(t, 5*time.Second, "recovery failure", func() bool { return c.m.Stats().RecoveryFailures == 1 })
	waitState(t, c.m, "a", failover.Fenced)
	want := []string{"fence a", "move b", "fence a"}
	if got := c.act.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}
	c.act.recovered(t, "recover a (vm)")
	if s, _ := c.m.State("a"); s != failover.Fenced {
		t.Errorf("a is %s after its recovery failed, want fenced", s)
	}
}

// TestMeasureOnly: in a heartbeat-only cluster, a measure-only probe
// verdict decides nothing but gives the failover its failure time.
func TestMeasureOnly(t *testing.T) {
	c := newCluster(t, true, "a", "b")
	failure := t0.Add(-4 * time.Second)
	m := verdict("a", "probe", failover.ServiceFailure, failure.UnixNano(), failure.Add(time.Millisecond))
	m.MeasureOnly = true
	c.m.Handle(m)
	if got := c.act.log(); len(got) != 0 || c.m.Status().Active != "a" {
		t.Fatalf("a measure-only verdict was acted on: %q", got)
	}
	c.m.Handle(verdict("a", "heartbeat", failover.ServiceFailure, 0, t0))
	tl := c.timeline(t)
	if tl.Detector != "heartbeat" || tl.FailureNS != failure.UnixNano() {
		t.Errorf("timeline %+v: want the heartbeat's, with the probe's failure time", tl)
	}
	if d, ok := tl.DetectionTime(); !ok || d != 4*time.Second {
		t.Errorf("detection time %v %v, want 4s", d, ok)
	}
	if s := c.m.Stats(); s.MeasureOnly != 1 || s.Duplicates != 0 {
		t.Errorf("stats %+v", s)
	}

	// A measurement from long before the failure is not taken for it.
	c2 := newCluster(t, true, "a", "b")
	old := verdict("a", "probe", failover.VMFailure, t0.Add(-time.Hour).UnixNano(), t0.Add(-time.Hour))
	old.MeasureOnly = true
	c2.m.Handle(old)
	c2.m.Handle(verdict("a", "heartbeat", failover.ServiceFailure, 0, t0))
	if tl := c2.timeline(t); tl.FailureNS != 0 {
		t.Errorf("an hour-old measurement timed this failure: %+v", tl)
	}
}

// TestMeasuringHeartbeat: a measure-only heartbeat (a tuned 1 s one
// beside the deciding 10 s one) times no failure in the guest: a probe's
// measurement after it still gives the failover its failure time, and its
// verdict after the decision is kept in the timeline's detections.
func TestMeasuringHeartbeat(t *testing.T) {
	c := newCluster(t, true, "a", "b")
	failure := t0.Add(-4 * time.Second)
	hb1 := verdict("a", "heartbeat-1s", failover.ServiceFailure, 0, failure.Add(500*time.Millisecond))
	hb1.MeasureOnly = true
	c.m.Handle(hb1)
	pr := verdict("a", "probe", failover.ServiceFailure, failure.UnixNano(), failure.Add(time.Second))
	pr.MeasureOnly = true
	c.m.Handle(pr)
	c.m.Handle(verdict("a", "heartbeat", failover.ServiceFailure, 0, t0))
	tl := c.timeline(t)
	if tl.FailureNS != failure.UnixNano() {
		t.Errorf("timeline %+v: want the probe's failure time %d", tl, failure.UnixNano())
	}
	late := verdict("a", "heartbeat-30s", failover.ServiceFailure, 0, t0.Add(time.Second))
	late.MeasureOnly = true
	c.m.Handle(late)
	if got := c.m.Timelines()[0].Detections["heartbeat-30s"]; got != t0.Add(time.Second).UnixNano() {
		t.Errorf("a measure-only verdict after the decision: detections %v", c.m.Timelines()[0].Detections)
	}
}

func TestNewManagerErrors(t *testing.T) {
	act := newRecorder(nil, "a")
	for _, cfg := range []failover.Config{
		{Actions: act},
		{Nodes: []string{"a"}},
		{Nodes: []string{"a", "a"}, Actions: act},
		{Nodes: []string{"a", ""}, Actions: act},
	} {
		if _, err := failover.NewManager(cfg); err == nil {
			t.Errorf("NewManager(%+v) accepted", cfg)
		}
	}
}
