package probe

import (
	"context"
	"fmt"
	"sort"
	"syscall"

	"github.com/tracevisor/tracevisor/wire"
)

// Preload asks the guest to arm spec without waiting for its answer: for
// probes given before boot, which the driver arms before user space starts.
// A refusal is written to the log and shown by List.
func (h *Host) Preload(spec Spec) (uint32, error) {
	id, _, err := h.attach(spec, false)
	return id, err
}

// Attach arms spec in the guest and waits for the driver's answer. When
// none comes before ctx ends, the probe stays listed as "unconfirmed" (the
// guest may hold it): Detach removes it.
func (h *Host) Attach(ctx context.Context, spec Spec) (uint32, error) {
	id, call, err := h.attach(spec, true)
	if err != nil {
		return 0, err
	}
	if _, err := call.await(ctx); err != nil {
		return 0, err
	}
	return id, nil
}

// attach registers spec, sends its attach command and, with wait, returns
// the call to await.
func (h *Host) attach(spec Spec, wait bool) (uint32, *call, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return 0, nil, ErrClosed
	}
	if n := h.reg.count(); n >= wire.MaxProbes {
		h.mu.Unlock()
		return 0, nil, fmt.Errorf("probe: %d probes attached: at most %d", n, wire.MaxProbes)
	}
	a := h.reg.add(spec)
	r := &request{cmd: wire.CmdAttach, op: "attach " + spec.Name, probe: a.id}
	c := h.newCallLocked(r, wait)
	b, err := attachCommand(spec, a.id, r.seq)
	a.seq = r.seq
	if err != nil {
		h.abandonLocked(r, false)
		h.mu.Unlock()
		return 0, nil, err
	}
	h.mu.Unlock()
	if err := h.issue(r, r.seq, b); err != nil {
		return 0, nil, err
	}
	return a.id, c, nil
}

// attachCommand is the wire form of the command that arms spec as probe id.
func attachCommand(spec Spec, id, seq uint32) ([]byte, error) {
	cmd, err := spec.Attach(id, seq)
	if err != nil {
		return nil, err
	}
	return cmd.MarshalBinary()
}

// Detach disarms probe id and waits for the driver's answer. Events the
// guest sent before it still arrive. A guest that holds no such probe
// (ENOENT) has it detached all the same: the error says so, and the probe
// is no longer listed.
func (h *Host) Detach(ctx context.Context, id uint32) error {
	h.mu.Lock()
	a := h.reg.get(id)
	if a == nil {
		h.mu.Unlock()
		return fmt.Errorf("probe: no probe %d attached", id)
	}
	r := &request{cmd: wire.CmdDetach, op: fmt.Sprintf("detach %d", id), probe: id}
	c := h.newCallLocked(r, true)
	a.detaching = true
	h.mu.Unlock()

	b, err := wire.Detach{Seq: r.seq, ID: id}.MarshalBinary()
	if err == nil {
		err = h.issue(r, r.seq, b)
	}
	if err == nil {
		_, err = c.await(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a.detaching = false
	if ge, ok := err.(*GuestError); err == nil || ok && ge.Errno == syscall.ENOENT {
		h.reg.remove(id)
	}
	return err
}

// Status is one attached probe with the guest's counters for it.
type Status struct {
	ID    uint32 `json:"id"`
	Name  string `json:"name"`
	Spec  string `json:"spec"`
	State string `json:"state"` // "arming", "armed", or "unconfirmed" (the guest never answered its attach)
	wire.Stat
}

// List asks the guest for every probe's counters.
func (h *Host) List(ctx context.Context) ([]Status, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	r := &request{cmd: wire.CmdStats, op: "stats"}
	c := h.newCallLocked(r, true)
	h.mu.Unlock()
	b, _ := wire.StatsRequest{Seq: r.seq}.MarshalBinary()
	if err := h.issue(r, r.seq, b); err != nil {
		return nil, err
	}
	ans, err := c.await(ctx)
	if err != nil {
		return nil, err
	}
	counters := make(map[uint32]wire.Stat, len(ans.stats))
	for _, s := range ans.stats {
		counters[s.ID] = s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Status, 0, h.reg.count())
	for id, a := range h.reg.attached {
		st, listed := counters[id]
		if listed && a.state == stateUnconfirmed {
			a.state = stateArmed // the guest holds it after all
		}
		st.ID = id
		out = append(out, Status{ID: id, Name: a.spec.Name, Spec: a.spec.String(), State: a.stateText(), Stat: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Injection is a fault for the guest's driver to cause, for testbeds.
type Injection struct {
	Kind    wire.InjectKind
	Comm    string // TVP_INJECT_SIGNAL: processes named so
	Signal  uint32 // TVP_INJECT_SIGNAL: the signal
	CPU     uint32 // TVP_INJECT_HANG: the CPU to spin
	Seconds uint32 // TVP_INJECT_HANG, TVP_INJECT_STALL: how long
}

// Inject asks the guest's driver to cause a fault and waits until it says
// it did (for a panic or a hang: that it is about to).
func (h *Host) Inject(ctx context.Context, in Injection) error {
	cmd := wire.Inject{Kind: in.Kind, Comm: in.Comm}
	switch in.Kind {
	case wire.InjectSignal:
		cmd.Arg = in.Signal
	case wire.InjectHang:
		cmd.Arg, cmd.Arg2 = in.CPU, in.Seconds
	case wire.InjectStall:
		cmd.Arg2 = in.Seconds
	}
	if _, err := cmd.MarshalBinary(); err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	r := &request{cmd: wire.CmdInject, op: "inject " + in.Kind.String()}
	c := h.newCallLocked(r, true)
	h.mu.Unlock()
	cmd.Seq = r.seq
	b, _ := cmd.MarshalBinary()
	if err := h.issue(r, r.seq, b); err != nil {
		return err
	}
	_, err := c.await(ctx)
	return err
}

// call is a request a caller waits on.
type call struct {
	h   *Host
	r   *request
	ans chan answer
}

// newCallLocked puts r in the pending table; with wait, the call returned
// receives its answer. Host.mu is held.
func (h *Host) newCallLocked(r *request, wait bool) *call {
	if !wait {
		h.addRequestLocked(r)
		return nil
	}
	c := &call{h: h, r: r, ans: make(chan answer, 1)}
	r.wait = c.ans
	h.addRequestLocked(r)
	return c
}

// issue hands r's command (sequence number seq) to the transport. When it
// cannot, r ends unanswered and the error says why.
func (h *Host) issue(r *request, seq uint32, cmd []byte) error {
	err := h.tr.Send(cmd)
	if err == nil {
		return nil
	}
	h.mu.Lock()
	if h.ownsLocked(r, seq) {
		if r.wait != nil {
			r.wait <- answer{err: fmt.Errorf("probe: %s: sending the command: %w", r.op, err)}
		}
		h.abandonLocked(r, false)
	}
	h.mu.Unlock()
	h.log.Printf("probe: sending %s (command %d): %v", r.op, seq, err)
	return fmt.Errorf("probe: %s: sending the command: %w", r.op, err)
}

// await waits for the call's answer and turns a refusal into a GuestError.
// A caller that gives up takes its request out of the table: an answer
// after that is malformed.
func (c *call) await(ctx context.Context) (answer, error) {
	h, r := c.h, c.r
	select {
	case a := <-c.ans:
		return c.result(a)
	case <-ctx.Done():
	case <-h.done:
	case <-h.stopped:
	}
	h.mu.Lock()
	select {
	case a := <-c.ans: // answered as we gave up
		h.mu.Unlock()
		return c.result(a)
	default:
	}
	if h.reqs[r.seq] == r {
		h.abandonLocked(r, true)
	}
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return answer{}, ErrClosed
	}
	select {
	case <-h.stopped:
		return answer{}, fmt.Errorf("probe: %s: %w", r.op, ErrGuestStopped)
	default:
	}
	return answer{}, fmt.Errorf("probe: %s: no answer from the guest driver: %w", r.op, ctx.Err())
}

func (c *call) result(a answer) (answer, error) {
	if a.err != nil {
		return answer{}, a.err
	}
	if a.reply.Status != 0 {
		return answer{}, refusal(c.r.op, c.r.cmd, a.reply.Status)
	}
	return a, nil
}
