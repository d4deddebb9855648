package probe_test

import (
	"testing"

	. "github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/wire"
)

func TestEventHookSeesEveryEventFirst(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	sub := h.Subscribe(1) // too slow: it keeps one event of three
	var seen []uint32
	h.SetEventHook(func(e Event) {
		if len(sub.C) != 0 && len(seen) == 0 {
			t.Error("a subscriber had the first event before the hook")
		}
		seen = append(seen, e.PID)
	})
	for pid := uint32(1); pid <= 3; pid++ {
		g.Emit(wire.Event{Probe: 1, Class: wire.ClassSignal, PID: pid, Comm: "httpd", Sig: 9})
	}
	h.Drain()
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Errorf("the hook saw pids %v, want 1 2 3", seen)
	}
	if sub.Dropped() != 2 {
		t.Errorf("the subscriber dropped %d, want 2", sub.Dropped())
	}
	h.SetEventHook(nil)
	g.Emit(wire.Event{Probe: 1, Class: wire.ClassSignal, PID: 4})
	h.Drain()
	if len(seen) != 3 {
		t.Errorf("a removed hook saw %v", seen)
	}
}
