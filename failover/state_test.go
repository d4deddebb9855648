package failover_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

var allStates = []failover.State{failover.Active, failover.Standby, failover.Failed, failover.Fenced, failover.Recovering}

// TestTransitionTable checks every pair of states against the issue's
// life cycle: exactly these moves are legal.
func TestTransitionTable(t *testing.T) {
	legal := map[[2]failover.State]bool{
		{failover.Active, failover.Failed}:      true,
		{failover.Standby, failover.Active}:     true,
		{failover.Standby, failover.Failed}:     true,
		{failover.Failed, failover.Fenced}:      true,
		{failover.Fenced, failover.Recovering}:  true,
		{failover.Recovering, failover.Standby}: true,
		{failover.Recovering, failover.Failed}:  true,
	}
	for _, from := range allStates {
		for _, to := range allStates {
			if got, want := failover.CanTransition(from, to), legal[[2]failover.State{from, to}]; got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

// TestMachineTransitions walks one node through its life cycle, checks
// that illegal moves are refused and change nothing, and that every legal
// one is one journal line with the fake clock's time.
func TestMachineTransitions(t *testing.T) {
	clock := failover.NewFakeClock(t0)
	var buf bytes.Buffer
	m := failover.NewMachine(clock, failover.NewJournal(&buf))
	if err := m.Add("a", failover.Active); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		to    failover.State
		legal bool
	}{
		{failover.Standby, false}, // active → standby: not a thing
		{failover.Failed, true},
		{failover.Active, false}, // a failed node never serves again unfenced
		{failover.Recovering, false},
		{failover.Fenced, true},
		{failover.Standby, false}, // must recover first
		{failover.Recovering, true},
		{failover.Standby, true},
		{failover.Active, true},
	}
	want := failover.Active
	var lines int
	for i, s := range steps {
		clock.Advance(time.Second)
		err := m.Transition("a", s.to, "step")
		if (err == nil) != s.legal {
			t.Fatalf("step %d: %s → %s: err %v, legal %v", i, want, s.to, err, s.legal)
		}
		if s.legal {
			want = s.to
			lines++
		} else if !strings.Contains(err.Error(), "illegal transition") {
			t.Errorf("step %d: error %q does not say why", i, err)
		}
		if got, _ := m.State("a"); got != want {
			t.Fatalf("step %d: state %s, want %s", i, got, want)
		}
	}
	if err := m.Transition("nope", failover.Failed, "x"); err == nil {
		t.Error("transition of an unknown node accepted")
	}
	journal := buf.String()
	sc := bufio.NewScanner(strings.NewReader(journal))
	var got []failover.TransitionLine
	for sc.Scan() {
		var l failover.TransitionLine
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"time_ns", "node", "from", "to", "cause"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("journal line %s lacks %q", sc.Text(), k)
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
		if !failover.CanTransition(l.From, l.To) {
			t.Errorf("journal line %s: not a legal transition", sc.Text())
		}
	}
	if len(got) != lines {
		t.Fatalf("%d journal lines, want %d (one per legal transition):\n%s", len(got), lines, journal)
	}
	// Step 1 (the first legal one) happened 2 s after t0.
	if got[0].TimeNS != t0.Add(2*time.Second).UnixNano() || got[0].Node != "a" {
		t.Errorf("first line %+v: want node a at t0+2s", got[0])
	}
	if !strings.Contains(journal, `"from":"active","to":"failed","cause":"step"`) {
		t.Errorf("journal lacks the active → failed line:\n%s", journal)
	}
}

func TestMachineAdd(t *testing.T) {
	m := failover.NewMachine(nil, nil)
	for _, s := range []failover.State{failover.Failed, failover.Fenced, failover.Recovering} {
		if err := m.Add("x", s); err == nil {
			t.Errorf("a node joined %s", s)
		}
	}
	if err := m.Add("", failover.Standby); err == nil {
		t.Error("a node without a name joined")
	}
	if err := m.Add("a", failover.Standby); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("a", failover.Active); err == nil {
		t.Error("node a added twice")
	}
	if _, ok := m.State("x"); ok {
		t.Error("a refused node is in the cluster")
	}
}
