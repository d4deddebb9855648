package probe

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tracevisor/tracevisor/wire"
)

// HostState is the probe host's part of a snapshot (issue 12): what a Host
// restored in another process needs to go on with the guest's driver where
// this one stood. The driver keeps its probes armed across the snapshot (it
// is in guest memory), so a restored Host re-sends nothing: it knows the
// same probes under the same ids, names the guest's events for them, gives
// the next probe a fresh id, continues its counters, and matches the
// answers to the commands that were still out (their callers stayed in the
// old process: the answers update the probes, as they would have there).
//
// Order, with the probe device (virtio/probedev State) under the Host:
// snapshot with the vCPUs stopped and the device paused, the device's
// state first and then the Host's, so that a command sent between the two
// (an API call racing the snapshot) is at worst one the restored Host
// awaits and the guest never got, never one the guest answers and the Host
// does not know. Restore the device's state, then the Host's (instead of
// preloading boot probes: the guest holds them), then let the guest run.
//
// Subscribers, the event hook and the clock are not state: the restored
// process sets its own. Restore checks every field (the state comes from
// a file) before it changes anything; State checks its own output the
// same way, so what State returns Restore accepts.
type HostState struct {
	// LastID is the id allocator: the last id given. Every id is at most
	// LastID; the next probe gets LastID+1.
	LastID uint32 `json:"last_id"`
	// Seq is the last command sequence number given.
	Seq uint32 `json:"seq"`
	// Probes are the attached probes, in id order: at most wire.MaxProbes.
	Probes []ProbeState `json:"probes"`
	// Retired are probes detached or refused, in id order, kept to name
	// the events the guest sent before it let them go: the
	// MaxRetiredProbes latest.
	Retired []RetiredProbe `json:"retired"`
	// Requests are the commands awaiting the guest's answer, in sequence
	// number order: at most MaxStateRequests.
	Requests []RequestState `json:"requests"`
	// Hello is the driver's hello; nil when it has not said it yet.
	Hello *HelloState `json:"hello"`
	// Rearm: the driver said hello again and its probes await a re-arm
	// not yet started; Restore starts it.
	Rearm bool `json:"rearm"`
	// Counts are the host's counters; Outstanding is len(Requests).
	Counts HostStats `json:"counts"`
}

// ProbeState is one attached probe.
type ProbeState struct {
	ID uint32 `json:"id"`
	// Spec is the probe in ParseSpec's syntax (Spec.String).
	Spec string `json:"spec"`
	// State is "arming", "armed" or "unconfirmed", as List shows it.
	State string `json:"state"`
	// Seq is its attach command awaiting an answer (one of Requests); 0
	// when none.
	Seq uint32 `json:"seq,omitempty"`
}

// RetiredProbe is a probe no longer attached, kept for its name.
type RetiredProbe struct {
	ID   uint32 `json:"id"`
	Spec string `json:"spec"`
}

// RequestState is one command awaiting the guest's answer. A detach among
// them (a probe being detached) is not re-armed, and its answer detaches
// the probe.
type RequestState struct {
	Seq uint32 `json:"seq"`
	// Cmd is the command: "attach", "detach", "stats-request" or "inject"
	// (wire.MsgType's String).
	Cmd string `json:"cmd"`
	// Probe is the probe an attach or detach names; 0 for the others.
	Probe uint32 `json:"probe,omitempty"`
	// Rearm: an attach sent by a re-arm.
	Rearm bool `json:"rearm,omitempty"`
}

// HelloState is the driver's hello (wire.Hello).
type HelloState struct {
	Version uint32 `json:"version"`
	Clock   uint16 `json:"clock"`
	NCPUs   uint16 `json:"ncpus"`
	GuestNS uint64 `json:"guest_ns"`
}

// Bounds of a HostState beyond the driver's own (wire.MaxProbes attached).
const (
	// MaxRetiredProbes is how many retired probes a state keeps.
	MaxRetiredProbes = 4096
	// MaxStateRequests is how many outstanding commands a state holds.
	MaxStateRequests = 4096
)

// ErrBadHostState is wrapped by Restore's (and State's) errors for a
// state that is not one a Host can be in.
var ErrBadHostState = errors.New("probe: bad host state")

// stateCmds are the commands a request may await an answer to, by name.
var stateCmds = map[string]wire.MsgType{
	wire.CmdAttach.String(): wire.CmdAttach, wire.CmdDetach.String(): wire.CmdDetach,
	wire.CmdStats.String(): wire.CmdStats, wire.CmdInject.String(): wire.CmdInject,
}

// State returns the host's state for a snapshot. The guest must be paused
// (its vCPUs stopped, the probe device paused and its state taken first:
// see HostState); State first decodes every message already received
// (Drain), so none is lost between the two. It fails (ErrBadHostState)
// only if the host is in a state Restore would refuse.
func (h *Host) State() (HostState, error) {
	h.Drain()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := HostState{LastID: h.reg.lastID, Seq: h.seq, Rearm: h.rearm.again, Counts: h.counts}
	s.Counts.InboxDrops = h.drops.Load()
	s.Counts.Outstanding = len(h.reqs)
	ids := make([]uint32, 0, len(h.reg.ever))
	for id := range h.reg.ever {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		a := h.reg.ever[id]
		if h.reg.attached[id] == a {
			s.Probes = append(s.Probes, ProbeState{ID: id, Spec: a.spec.String(), State: a.state.String(), Seq: a.seq})
		} else {
			s.Retired = append(s.Retired, RetiredProbe{ID: id, Spec: a.spec.String()})
		}
	}
	if n := len(s.Retired); n > MaxRetiredProbes {
		s.Retired = s.Retired[n-MaxRetiredProbes:]
	}
	for _, r := range h.reqs {
		s.Requests = append(s.Requests, RequestState{Seq: r.seq, Cmd: r.cmd.String(), Probe: r.probe, Rearm: r.batch != nil})
	}
	sort.Slice(s.Requests, func(i, j int) bool { return s.Requests[i].Seq < s.Requests[j].Seq })
	if m := h.hello; m != nil {
		s.Hello = &HelloState{Version: m.Version, Clock: uint16(m.Clock), NCPUs: m.NCPUs, GuestNS: m.GuestNS}
	}
	if _, err := s.build(); err != nil {
		return HostState{}, err
	}
	return s, nil
}

// Restore makes a fresh Host (NewHost, no command sent, no message
// received) the one s describes, or refuses s with an error wrapping
// ErrBadHostState and changes nothing. It sends nothing to the guest,
// unless s holds a pending re-arm (Rearm), which it starts: restore the
// probe device's state first, so those commands queue behind the ones it
// held, and Restore before the guest runs, so that its answers find their
// requests.
func (h *Host) Restore(s HostState) error {
	rs, err := s.build()
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if h.reg.lastID != 0 || h.seq != 0 || len(h.reqs) != 0 || h.hello != nil || h.counts != (HostStats{}) || h.drops.Load() != 0 {
		return errors.New("probe: Restore needs a fresh host: this one has sent commands or received messages")
	}
	h.reg, h.reqs, h.seq = rs.reg, rs.reqs, s.Seq
	h.counts = s.Counts
	h.counts.InboxDrops, h.counts.Outstanding = 0, 0 // Stats derives them
	h.drops.Store(s.Counts.InboxDrops)
	if rs.hello != nil {
		h.hello = rs.hello
		close(h.ready)
	}
	if s.Rearm {
		h.rearm.again, h.rearm.running = true, true
		go h.rearmLoop()
	}
	return nil
}

// Validate reports whether s is a state Restore would accept (an error
// wrapping ErrBadHostState otherwise); it changes nothing, so a restore
// can check every layer's state before it restores any.
func (s HostState) Validate() error {
	_, err := s.build()
	return err
}

// restored is a checked HostState in the Host's own form.
type restored struct {
	reg   registry
	reqs  pendingTable
	hello *wire.Hello
}

func badState(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadHostState}, args...)...)
}

// build checks s whole and returns the registry, pending table and hello
// it describes. It is the one place of HostState's rules.
func (s HostState) build() (*restored, error) {
	switch {
	case len(s.Probes) > wire.MaxProbes:
		return nil, badState("%d probes attached, at most %d", len(s.Probes), wire.MaxProbes)
	case len(s.Retired) > MaxRetiredProbes:
		return nil, badState("%d retired probes, at most %d", len(s.Retired), MaxRetiredProbes)
	case len(s.Requests) > MaxStateRequests:
		return nil, badState("%d outstanding commands, at most %d", len(s.Requests), MaxStateRequests)
	}
	rs := &restored{reg: newRegistry(), reqs: pendingTable{}}
	rs.reg.lastID = s.LastID
	known := func(what string, i int, id uint32, spec string) (*armed, error) {
		if id == 0 || id > s.LastID {
			return nil, badState("%s %d: id %d outside 1..%d (last_id)", what, i, id, s.LastID)
		}
		if rs.reg.ever[id] != nil {
			return nil, badState("%s %d: id %d appears twice", what, i, id)
		}
		sp, err := ParseSpec(spec)
		if err != nil {
			return nil, badState("%s %d (id %d): spec %q: %v", what, i, id, spec, err)
		}
		a := &armed{id: id, spec: sp} // a retired one's state is never read
		rs.reg.ever[id] = a
		return a, nil
	}
	for i, p := range s.Probes {
		a, err := known("probe", i, p.ID, p.Spec)
		if err != nil {
			return nil, err
		}
		switch p.State {
		case stateArming.String():
			a.state = stateArming
		case stateArmed.String():
			a.state = stateArmed
		case stateUnconfirmed.String():
			a.state = stateUnconfirmed
		default:
			return nil, badState("probe %d (id %d): state %q: not arming, armed or unconfirmed", i, p.ID, p.State)
		}
		a.seq = p.Seq
		rs.reg.attached[p.ID] = a
	}
	for i, p := range s.Retired {
		if _, err := known("retired probe", i, p.ID, p.Spec); err != nil {
			return nil, err
		}
	}
	if err := s.buildRequests(rs); err != nil {
		return nil, err
	}
	for i, p := range s.Probes {
		if r := rs.reqs[p.Seq]; p.Seq != 0 && (r == nil || r.cmd != wire.CmdAttach || r.probe != p.ID) {
			return nil, badState("probe %d (id %d): seq %d is no outstanding attach of it", i, p.ID, p.Seq)
		}
	}
	if err := s.buildHello(rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// buildRequests checks s.Requests into rs's pending table; the probes are
// in rs already.
func (s HostState) buildRequests(rs *restored) error {
	var batch *rearmBatch
	for i, q := range s.Requests {
		cmd, ok := stateCmds[q.Cmd]
		switch {
		case !ok:
			return badState("request %d: command %q: not attach, detach, stats-request or inject", i, q.Cmd)
		case q.Seq == 0 || rs.reqs[q.Seq] != nil:
			return badState("request %d: seq %d is zero or appears twice", i, q.Seq)
		case q.Rearm && (cmd != wire.CmdAttach || s.Counts.Restarts == 0):
			return badState("request %d: a re-arm %s with %d driver restarts", i, q.Cmd, s.Counts.Restarts)
		}
		r := &request{seq: q.Seq, cmd: cmd, probe: q.Probe}
		a := rs.reg.ever[q.Probe]
		switch {
		case (cmd == wire.CmdAttach || cmd == wire.CmdDetach) && a == nil:
			// A detach may name a retired probe: its attach was
			// refused while the detach was out.
			return badState("request %d: %s of probe %d, which is neither attached nor retired", i, q.Cmd, q.Probe)
		case cmd == wire.CmdDetach:
			r.op = fmt.Sprintf("detach %d", q.Probe)
			if rs.reg.attached[q.Probe] == a {
				a.detaching = true
			}
		case cmd == wire.CmdAttach && q.Rearm:
			r.op = "re-arm " + a.spec.Name
		case cmd == wire.CmdAttach:
			r.op = "attach " + a.spec.Name
		case q.Probe != 0:
			return badState("request %d: %s names probe %d", i, q.Cmd, q.Probe)
		case cmd == wire.CmdStats:
			r.op = "stats"
		default:
			r.op = "inject"
		}
		if q.Rearm {
			if batch == nil {
				batch = &rearmBatch{done: make(chan struct{})}
			}
			batch.left++
			r.batch = batch
		}
		rs.reqs[q.Seq] = r
	}
	return nil
}

// buildHello checks s.Hello and the counters that depend on it.
func (s HostState) buildHello(rs *restored) error {
	c := s.Counts
	hellos := uint64(0) // received hellos, less one
	if s.Hello != nil {
		m := wire.Hello{Version: s.Hello.Version, Clock: wire.Clock(s.Hello.Clock), NCPUs: s.Hello.NCPUs, GuestNS: s.Hello.GuestNS}
		if _, err := m.MarshalBinary(); err != nil {
			return badState("hello: %v", err)
		}
		rs.hello = &m
		hellos = c.Restarts
	} else if c.Restarts != 0 || s.Rearm {
		return badState("%d driver restarts, re-arm %v, but no hello", c.Restarts, s.Rearm)
	}
	switch {
	case c.Outstanding != len(s.Requests):
		return badState("counts: %d outstanding, %d requests", c.Outstanding, len(s.Requests))
	case c.Events > c.Received:
		return badState("counts: %d events of %d messages received", c.Events, c.Received)
	case s.Hello != nil && hellos >= c.Received-c.Events:
		return badState("counts: %d messages received, %d of them events, and %d hellos", c.Received, c.Events, hellos+1)
	}
	return nil
}
