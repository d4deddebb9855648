package probe_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
	. "github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/wire"
)

// helloed returns a fake guest whose driver has said hello.
func helloed(t *testing.T) *probetest.Guest {
	t.Helper()
	g := probetest.New(t)
	g.Restart()
	select {
	case <-g.Host.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no hello in 5 s")
	}
	return g
}

func mustState(t *testing.T, h *Host) HostState {
	t.Helper()
	st, err := h.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func nextEvent(t *testing.T, sub *Subscription) Event {
	t.Helper()
	select {
	case e := <-sub.C:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event on the subscription in 5 s")
	}
	return Event{}
}

// A host restored from another's state, on a guest that kept its probes
// armed, sends the guest nothing, lists the same probes under the same ids,
// names the guest's events for them (and for a detached one), continues
// its counters, and gives the next probe a fresh id.
func TestRestoredHostGoesOnWithTheGuest(t *testing.T) {
	g1 := helloed(t)
	h1 := g1.Host
	kill, err := h1.Attach(ctx(t), mustSpec(t, "p:kill send_signal_locked sig=%di task=%dx class:signal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Attach(ctx(t), mustSpec(t, "p:exit do_exit class:exit")); err != nil {
		t.Fatal(err)
	}
	gone, err := h1.Attach(ctx(t), mustSpec(t, "p:gone vfs_read"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Detach(ctx(t), gone); err != nil {
		t.Fatal(err)
	}
	g1.Emit(wire.Event{Probe: kill, Class: wire.ClassSignal, Dropped: 4})
	want, err := h1.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	st := mustState(t, h1)
	counts := h1.Stats()

	g2 := g1.Clone(t)
	h2 := g2.Host
	sub := h2.Subscribe(8)
	if err := h2.Restore(st); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h2.Ready():
	default:
		t.Error("the restored host waits for a hello the driver said before the snapshot")
	}
	if got := h2.Stats(); got != counts {
		t.Errorf("restored counters %+v, want %+v", got, counts)
	}
	got, err := h2.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Errorf("restored list\n %+v\nwant\n %+v", got, want)
	}
	if n := g2.Commands(wire.CmdAttach); n != 0 {
		t.Errorf("the restored host sent %d attach commands to a guest that holds its probes", n)
	}

	g2.Emit(wire.Event{Probe: kill, Class: wire.ClassSignal, Args: []uint64{9, 0xffff888000002000, 0, 0, 0, 0}, Sig: 9})
	if e := nextEvent(t, sub); e.Probe != "kill" || e.ProbeID != kill || e.Args["sig"] != 9 || e.Args["task"] != 0xffff888000002000 {
		t.Errorf("event for restored probe %d: %+v", kill, e)
	}
	g2.Emit(wire.Event{Probe: gone, Class: wire.ClassGeneric, Args: make([]uint64, wire.MaxArgs)})
	if e := nextEvent(t, sub); e.Probe != "gone" {
		t.Errorf("a late event for detached probe %d is named %q, want gone", gone, e.Probe)
	}
	if s := h2.Stats(); s.Events != counts.Events+2 || s.GuestDrops != counts.GuestDrops || s.Received != counts.Received+3 {
		t.Errorf("after two events and a list, counters %+v (restored from %+v)", s, counts)
	}

	id, err := h2.Attach(ctx(t), mustSpec(t, "p:more vfs_write"))
	if err != nil {
		t.Fatal(err)
	}
	if id != st.LastID+1 || id <= gone {
		t.Errorf("a new probe got id %d; the restored allocator gave up to %d", id, st.LastID)
	}
	if n := g2.Commands(wire.CmdAttach); n != 1 {
		t.Errorf("%d attach commands for one new probe", n)
	}
}

// A state survives JSON (as a snapshot section) unchanged, and a host
// restored from it gives back the same state.
func TestHostStateJSONRoundTrip(t *testing.T) {
	g1 := helloed(t)
	h1 := g1.Host
	a, err := h1.Attach(ctx(t), mustSpec(t, "p:a do_exit class:exit comm:httpd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Detach(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Attach(ctx(t), mustSpec(t, "r:ret vfs_read rv=%ax rv>=0x10 rate:5")); err != nil {
		t.Fatal(err)
	}
	g1.Hold()
	if _, err := h1.Preload(mustSpec(t, "p:boot send_signal_locked sig=%di class:signal sig:KILL,TERM")); err != nil {
		t.Fatal(err)
	}
	st := mustState(t, h1)
	if len(st.Probes) != 2 || len(st.Retired) != 1 || len(st.Requests) != 1 || st.Hello == nil || st.Probes[1].Seq == 0 {
		t.Fatalf("state %+v: want 2 probes (one arming), 1 retired, 1 request and the hello", st)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back HostState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // as the snapshot reader decodes sections
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Fatalf("JSON round trip\n %+v\nwant\n %+v", back, st)
	}
	if again, _ := json.Marshal(back); !bytes.Equal(again, b) {
		t.Errorf("re-encoded\n %s\nwant\n %s", again, b)
	}
	h2 := g1.Clone(t).Host
	if err := h2.Restore(back); err != nil {
		t.Fatal(err)
	}
	if st2 := mustState(t, h2); !reflect.DeepEqual(st2, st) {
		t.Errorf("state of the restored host\n %+v\nwant\n %+v", st2, st)
	}
}

// Commands out at the snapshot are answered to the restored host: the
// answers are matched, not malformed, and do what their callers would have
// done (the attach arms its probe, the detach removes its probe).
func TestRestoredHostMatchesAnswersToCommandsInFlight(t *testing.T) {
	g1 := helloed(t)
	h1 := g1.Host
	old, err := h1.Attach(ctx(t), mustSpec(t, "p:old do_exit"))
	if err != nil {
		t.Fatal(err)
	}
	g1.Hold() // the guest takes commands; its answers wait
	boot, err := h1.Preload(mustSpec(t, "p:boot vfs_read"))
	if err != nil {
		t.Fatal(err)
	}
	detached := make(chan error, 1)
	go func() { detached <- h1.Detach(ctx(t), old) }()
	testenv.WaitFor(t, 5*time.Second, "the attach and the detach to be outstanding", func() bool { return h1.Stats().Outstanding == 2 })
	st := mustState(t, h1)
	var attachSeq, detachSeq uint32
	for _, r := range st.Requests {
		switch {
		case r.Cmd == "attach" && r.Probe == boot:
			attachSeq = r.Seq
		case r.Cmd == "detach" && r.Probe == old:
			detachSeq = r.Seq
		}
	}
	if attachSeq == 0 || detachSeq == 0 {
		t.Fatalf("requests %+v: want the attach of %d and the detach of %d", st.Requests, boot, old)
	}

	g2 := g1.Clone(t)
	h2 := g2.Host
	if err := h2.Restore(st); err != nil {
		t.Fatal(err)
	}
	// What the snapshotted guest would answer once it runs again.
	g2.Emit(wire.Reply{Seq: attachSeq, ID: boot})
	g2.Emit(wire.Reply{Seq: detachSeq, ID: old})
	h2.Drain()
	if s := h2.Stats(); s.Malformed != 0 || s.Outstanding != 0 || s.Received != st.Counts.Received+2 {
		t.Errorf("after the answers, counters %+v: want both matched", s)
	}
	list, err := h2.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != boot || list[0].State != "armed" {
		t.Errorf("list %+v: want only probe %d, armed", list, boot)
	}

	g1.Release()
	select {
	case err := <-detached:
		if err != nil {
			t.Errorf("the old host's detach: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the old host's detach still waits 5 s after its answer")
	}
}

// A driver that said hello again just before the snapshot, while a re-arm
// was still out, lost its probes: the restored host arms them again.
func TestRestoreStartsAPendingRearm(t *testing.T) {
	g1 := helloed(t)
	h1 := g1.Host
	id, err := h1.Attach(ctx(t), mustSpec(t, "p:keep do_exit"))
	if err != nil {
		t.Fatal(err)
	}
	g1.Hold()
	g1.Restart() // a re-arm goes out; its answer is held
	testenv.WaitFor(t, 5*time.Second, "the re-arm's attach", func() bool { return g1.Commands(wire.CmdAttach) == 2 })
	g1.Restart() // another restart while it is out: a second re-arm is due
	st := mustState(t, h1)
	if !st.Rearm || len(st.Requests) != 1 || !st.Requests[0].Rearm {
		t.Fatalf("state %+v: want a re-arm due and one re-arm attach out", st)
	}

	g2 := g1.Clone(t) // the driver holds nothing since its restart
	h2 := g2.Host
	if err := h2.Restore(st); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the restored host to re-arm the probe", func() bool {
		_, ok := g2.Armed(id)
		return ok
	})
	list, err := h2.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].State != "armed" {
		t.Errorf("list %+v: want probe %d armed", list, id)
	}
	if s := h2.Stats(); s.Outstanding != 0 || s.Malformed != 0 {
		t.Errorf("after the re-arm, counters %+v", s)
	}
}

// Restore refuses a state no host can be in, saying what is wrong, and
// changes nothing: the same fresh host then takes a good state.
func TestRestoreRefusesHostileStates(t *testing.T) {
	g1 := helloed(t)
	h1 := g1.Host
	for _, s := range []string{"p:a do_exit", "p:b vfs_read"} {
		if _, err := h1.Attach(ctx(t), mustSpec(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := h1.Attach(ctx(t), mustSpec(t, "p:gone vfs_write"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Detach(ctx(t), gone); err != nil {
		t.Fatal(err)
	}
	g1.Hold()
	if _, err := h1.Preload(mustSpec(t, "p:c do_exit")); err != nil {
		t.Fatal(err)
	}
	base := mustState(t, h1)
	if len(base.Probes) != 3 || base.Probes[2].Seq == 0 || len(base.Retired) != 1 || len(base.Requests) != 1 {
		t.Fatalf("base state %+v", base)
	}
	copyOf := func() HostState {
		b, _ := json.Marshal(base)
		var s HostState
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	g2 := g1.Clone(t)
	h := g2.Host
	for _, tc := range []struct {
		name   string
		mutate func(s *HostState)
		want   string
	}{
		{"duplicate id", func(s *HostState) { s.Probes[1].ID = s.Probes[0].ID }, "appears twice"},
		{"retired and attached", func(s *HostState) { s.Retired[0].ID = s.Probes[0].ID }, "appears twice"},
		{"id beyond the allocator", func(s *HostState) { s.Probes[0].ID = s.LastID + 1 }, "outside 1.."},
		{"allocator behind", func(s *HostState) { s.LastID = 1 }, "outside 1..1"},
		{"id 0", func(s *HostState) { s.Retired[0].ID = 0 }, "outside 1.."},
		{"spec that does not parse", func(s *HostState) { s.Probes[0].Spec = "p:x" }, "spec"},
		{"retired spec that does not parse", func(s *HostState) { s.Retired[0].Spec = "q nothing" }, "spec"},
		{"unknown probe state", func(s *HostState) { s.Probes[0].State = "failed" }, `state "failed"`},
		{"too many probes", func(s *HostState) { s.Probes = make([]ProbeState, wire.MaxProbes+1) }, "probes attached"},
		{"too many retired", func(s *HostState) { s.Retired = make([]RetiredProbe, MaxRetiredProbes+1) }, "retired probes"},
		{"too many requests", func(s *HostState) { s.Requests = make([]RequestState, MaxStateRequests+1) }, "outstanding commands"},
		{"probe seq with no request", func(s *HostState) { s.Probes[2].Seq++ }, "no outstanding attach"},
		{"probe seq of another's attach", func(s *HostState) { s.Probes[1].Seq = s.Probes[2].Seq }, "no outstanding attach"},
		{"request seq 0", func(s *HostState) { s.Requests[0].Seq = 0 }, "zero or appears twice"},
		{"request seq twice", func(s *HostState) { s.Requests = append(s.Requests, s.Requests[0]) }, "zero or appears twice"},
		{"unknown command", func(s *HostState) { s.Requests[0].Cmd = "reply" }, `command "reply"`},
		{"attach of an unknown probe", func(s *HostState) { s.Requests[0].Probe = 77 }, "neither attached nor retired"},
		{"stats naming a probe", func(s *HostState) { s.Requests[0].Cmd = "stats-request" }, "names probe"},
		{"re-arm with no restart", func(s *HostState) { s.Requests[0].Rearm = true }, "re-arm"},
		{"outstanding miscounted", func(s *HostState) { s.Counts.Outstanding = 0 }, "outstanding"},
		{"more events than messages", func(s *HostState) { s.Counts.Events = s.Counts.Received + 1 }, "events of"},
		{"restarts with no hello", func(s *HostState) { s.Hello, s.Counts.Restarts = nil, 1 }, "no hello"},
		{"re-arm with no hello", func(s *HostState) { s.Hello, s.Rearm = nil, true }, "no hello"},
		{"bad hello", func(s *HostState) { s.Hello.Clock = 9 }, "hello"},
		{"more hellos than messages", func(s *HostState) { s.Counts.Restarts = s.Counts.Received }, "hellos"},
		{"counts at the limit", func(s *HostState) { s.Counts.Received, s.Counts.Events = math.MaxUint64, math.MaxUint64 }, "hellos"},
	} {
		s := copyOf()
		tc.mutate(&s)
		if err := s.Validate(); !errors.Is(err, ErrBadHostState) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want what Restore refuses, saying %q", tc.name, err, tc.want)
		}
		err := h.Restore(s)
		if !errors.Is(err, ErrBadHostState) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Restore = %v, want ErrBadHostState saying %q", tc.name, err, tc.want)
		}
	}
	select {
	case <-h.Ready():
		t.Error("a refused state closed Ready")
	default:
	}
	if s := h.Stats(); s != (HostStats{}) {
		t.Errorf("refused states changed the counters: %+v", s)
	}
	if err := copyOf().Validate(); err != nil {
		t.Fatalf("Validate of the good state: %v", err)
	}
	if err := h.Restore(copyOf()); err != nil {
		t.Fatalf("the good state after the refused ones: %v", err)
	}
	if err := h.Restore(copyOf()); err == nil || !strings.Contains(err.Error(), "fresh host") {
		t.Errorf("a second Restore: %v, want it refused", err)
	}
}
