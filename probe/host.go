package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/wire"
)

// Transport carries commands to the guest's probe driver: the communication
// layer under Host (virtio/probedev's Device; any transport with Send).
// Messages come back through Host.Receive.
type Transport interface {
	Send(cmd []byte) error
}

// Clock maps a guest kvmclock reading to host wall-clock time (Unix ns).
// vmm's Machine provides one from KVM_GET_CLOCK.
type Clock interface {
	HostNS(guestNS uint64) (int64, bool)
}

// inboxSize bounds guest messages received but not yet decoded; beyond it
// they are counted in HostStats.InboxDrops.
const inboxSize = 4096

// ErrClosed is returned by calls on a closed Host.
var ErrClosed = errors.New("probe: host closed")

// GuestError is a command the guest's driver refused, with its errno.
type GuestError struct {
	Op    string
	Errno syscall.Errno
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("probe: guest refused %s: %v", e.Op, e.Errno)
}

// Unwrap lets errors.Is match the errno (e.g. syscall.ENOENT).
func (e *GuestError) Unwrap() error { return e.Errno }

// Host is the host side of the probe channel: it arms and disarms probes
// in the guest, asks for counters, injects faults, and decodes the guest's
// events into a stream. Its methods are safe for concurrent use.
type Host struct {
	tr    Transport
	clock Clock
	log   io.Writer
	now   func() int64

	inbox chan inbound
	done  chan struct{}

	mu      sync.Mutex
	seq     uint32
	nextID  uint32
	probes  map[uint32]*armed // by id, while attached
	names   map[uint32]*armed // every probe ever attached, for late events
	waits   map[uint32]chan wire.Message
	pending map[uint32]uint32      // attach commands awaiting an answer: seq -> probe id
	stats   map[uint32][]wire.Stat // partial TVP_MSG_STATS answers, by seq
	hello   *wire.Hello
	ready   chan struct{} // closed at the driver's hello
	subs    map[*Subscription]struct{}
	closed  bool
	counts  HostStats
	drops   atomic.Uint64
}

// armed is one probe the host asked for.
type armed struct {
	id    uint32
	spec  Spec
	state string // "arming", "armed", or why it failed
}

type inbound struct {
	msg     []byte
	at      int64
	drained chan struct{} // a Drain marker instead of a message
}

// HostStats counts the host side of the channel.
type HostStats struct {
	Received   uint64 `json:"received"`    // guest messages decoded
	Events     uint64 `json:"events"`      // events among them
	Malformed  uint64 `json:"malformed"`   // messages that failed to decode
	InboxDrops uint64 `json:"inbox_drops"` // received faster than decoded: lost on the host
	GuestDrops uint64 `json:"guest_drops"` // drops the guest reported inside events
}

// NewHost returns a Host sending commands through tr. clock may be nil (no
// host_ns mapping); log receives one line per asynchronous failure (a boot
// probe the guest refused, a malformed message) and may be nil.
func NewHost(tr Transport, clock Clock, log io.Writer) *Host {
	if log == nil {
		log = io.Discard
	}
	h := &Host{
		tr: tr, clock: clock, log: log,
		now:     func() int64 { return time.Now().UnixNano() },
		inbox:   make(chan inbound, inboxSize),
		done:    make(chan struct{}),
		probes:  map[uint32]*armed{},
		names:   map[uint32]*armed{},
		waits:   map[uint32]chan wire.Message{},
		pending: map[uint32]uint32{},
		stats:   map[uint32][]wire.Stat{},
		ready:   make(chan struct{}),
		subs:    map[*Subscription]struct{}{},
	}
	go h.loop()
	return h
}

// Close stops decoding and ends every subscription.
func (h *Host) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
	h.mu.Unlock()
}

// Receive takes one guest message with the time the VMM received it. It is
// the transport's receiver: it only queues, so the vCPU that delivered the
// message goes back to the guest at once.
func (h *Host) Receive(msg []byte, receivedNS int64) {
	select {
	case h.inbox <- inbound{msg: msg, at: receivedNS}:
	default:
		h.drops.Add(1)
	}
}

// Drain returns once every message Receive took before the call has been
// decoded and handed to subscribers.
func (h *Host) Drain() {
	c := make(chan struct{})
	select {
	case h.inbox <- inbound{drained: c}:
	case <-h.done:
		return
	}
	select {
	case <-c:
	case <-h.done:
	}
}

// Ready is closed when the guest's driver has said hello.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Hello returns the driver's hello, once it arrived.
func (h *Host) Hello() (wire.Hello, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hello == nil {
		return wire.Hello{}, false
	}
	return *h.hello, true
}

// Stats returns the host-side counters.
func (h *Host) Stats() HostStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.counts
	s.InboxDrops = h.drops.Load()
	return s
}

// Preload asks the guest to arm spec without waiting for its answer: for
// probes given before boot, which the driver arms before user space starts.
// A refusal is written to the log and shown by List.
func (h *Host) Preload(spec Spec) (uint32, error) {
	id, _, err := h.attach(spec, false)
	return id, err
}

// Attach arms spec in the guest and waits for the driver's answer.
func (h *Host) Attach(ctx context.Context, spec Spec) (uint32, error) {
	id, wait, err := h.attach(spec, true)
	if err != nil {
		return 0, err
	}
	if _, err := h.await(ctx, wait, "attach "+spec.Name); err != nil {
		return 0, err
	}
	return id, nil
}

func (h *Host) attach(spec Spec, wait bool) (uint32, chan wire.Message, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return 0, nil, ErrClosed
	}
	if len(h.probes) >= wire.MaxProbes {
		h.mu.Unlock()
		return 0, nil, fmt.Errorf("probe: %d probes attached: at most %d", len(h.probes), wire.MaxProbes)
	}
	h.nextID++
	id := h.nextID
	seq := h.nextSeq()
	a := &armed{id: id, spec: spec, state: "arming"}
	h.probes[id], h.names[id] = a, a
	h.pending[seq] = id
	h.mu.Unlock()

	b, err := attachCommand(spec, id, seq)
	if err == nil {
		return id, h.send(seq, b, wait), nil
	}
	h.mu.Lock()
	delete(h.probes, id)
	delete(h.pending, seq)
	h.mu.Unlock()
	return 0, nil, err
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
// guest sent before it still arrive.
func (h *Host) Detach(ctx context.Context, id uint32) error {
	h.mu.Lock()
	if _, ok := h.probes[id]; !ok {
		h.mu.Unlock()
		return fmt.Errorf("probe: no probe %d attached", id)
	}
	seq := h.nextSeq()
	h.mu.Unlock()
	b, err := wire.Detach{Seq: seq, ID: id}.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := h.await(ctx, h.send(seq, b, true), fmt.Sprintf("detach %d", id)); err != nil {
		return err
	}
	h.mu.Lock()
	delete(h.probes, id)
	h.mu.Unlock()
	return nil
}

// Status is one attached probe with the guest's counters for it.
type Status struct {
	ID    uint32 `json:"id"`
	Name  string `json:"name"`
	Spec  string `json:"spec"`
	State string `json:"state"`
	wire.Stat
}

// List asks the guest for every probe's counters.
func (h *Host) List(ctx context.Context) ([]Status, error) {
	h.mu.Lock()
	seq := h.nextSeq()
	h.mu.Unlock()
	b, err := wire.StatsRequest{Seq: seq}.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m, err := h.await(ctx, h.send(seq, b, true), "stats")
	if err != nil {
		return nil, err
	}
	counters := map[uint32]wire.Stat{}
	for _, s := range m.(wire.Stats).Entries {
		counters[s.ID] = s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Status
	for id, a := range h.probes {
		st := Status{ID: id, Name: a.spec.Name, Spec: a.spec.String(), State: a.state, Stat: counters[id]}
		st.Stat.ID = id
		out = append(out, st)
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
	h.mu.Lock()
	seq := h.nextSeq()
	h.mu.Unlock()
	cmd := wire.Inject{Seq: seq, Kind: in.Kind, Comm: in.Comm}
	switch in.Kind {
	case wire.InjectSignal:
		cmd.Arg = in.Signal
	case wire.InjectHang:
		cmd.Arg, cmd.Arg2 = in.CPU, in.Seconds
	case wire.InjectStall:
		cmd.Arg2 = in.Seconds
	}
	b, err := cmd.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = h.await(ctx, h.send(seq, b, true), "inject")
	return err
}

// nextSeq returns a fresh nonzero sequence number; h.mu is held.
func (h *Host) nextSeq() uint32 {
	h.seq++
	if h.seq == 0 {
		h.seq++
	}
	return h.seq
}

// send hands a command to the transport; with wait it returns the channel
// its answer will arrive on.
func (h *Host) send(seq uint32, cmd []byte, wait bool) chan wire.Message {
	c := make(chan wire.Message, 1)
	h.mu.Lock()
	h.waits[seq] = c
	h.mu.Unlock()
	if err := h.tr.Send(cmd); err != nil {
		c <- wire.Reply{Seq: seq, Status: -int32(syscall.EAGAIN)}
		h.mu.Lock()
		delete(h.waits, seq)
		h.mu.Unlock()
		fmt.Fprintf(h.log, "probe: sending command %d: %v\n", seq, err)
	}
	if !wait {
		return nil
	}
	return c
}

// await waits for a command's answer and turns a refusal into a GuestError.
func (h *Host) await(ctx context.Context, c chan wire.Message, op string) (wire.Message, error) {
	select {
	case m := <-c:
		if r, ok := m.(wire.Reply); ok && r.Status != 0 {
			return nil, &GuestError{Op: op, Errno: syscall.Errno(-r.Status)}
		}
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("probe: %s: no answer from the guest driver: %w", op, ctx.Err())
	case <-h.done:
		return nil, ErrClosed
	}
}

// loop decodes guest messages in arrival order.
func (h *Host) loop() {
	for {
		select {
		case in := <-h.inbox:
			if in.drained != nil {
				close(in.drained)
				continue
			}
			h.handle(in)
		case <-h.done:
			return
		}
	}
}

func (h *Host) handle(in inbound) {
	m, err := wire.Decode(in.msg)
	decoded := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.counts.Malformed++
		fmt.Fprintf(h.log, "probe: malformed message from the guest: %v\n", err)
		return
	}
	h.counts.Received++
	switch m := m.(type) {
	case wire.Event:
		h.counts.Events++
		h.counts.GuestDrops += uint64(m.Dropped)
		h.publish(h.decodeEvent(m, in.at, decoded))
	case wire.Reply:
		h.answer(m.Seq, m)
	case wire.Stats:
		h.stats[m.Seq] = append(h.stats[m.Seq], m.Entries...)
		if m.Last {
			all := wire.Stats{Seq: m.Seq, Last: true, Entries: h.stats[m.Seq]}
			delete(h.stats, m.Seq)
			h.answer(m.Seq, all)
		}
	case wire.Hello:
		if h.hello == nil {
			close(h.ready)
		} else if len(h.probes) > 0 {
			// A second hello is a driver that started again (a module
			// reloaded, a device reset): it holds no probes. Arm ours
			// again, with the same ids, so nothing is silently lost.
			fmt.Fprintf(h.log, "probe: the guest driver started again: re-arming %d probes\n", len(h.probes))
			go h.rearm(h.rearmCommandsLocked())
		}
		h.hello = &m
	default:
		h.counts.Malformed++
		fmt.Fprintf(h.log, "probe: unexpected message type %#x from the guest\n", m.Type())
	}
}

// rearmCommandsLocked marks every attached probe "arming" again and
// returns an attach command for each, by sequence number; h.mu is held.
func (h *Host) rearmCommandsLocked() map[uint32][]byte {
	cmds := map[uint32][]byte{}
	for id, a := range h.probes {
		seq := h.nextSeq()
		b, err := attachCommand(a.spec, id, seq)
		if err != nil { // it was marshalled once: cannot happen
			fmt.Fprintf(h.log, "probe: re-arming %q: %v\n", a.spec.Name, err)
			continue
		}
		a.state = "arming"
		h.pending[seq] = id
		cmds[seq] = b
	}
	return cmds
}

// rearm sends the commands of rearmCommandsLocked; answers come back as
// for Preload.
func (h *Host) rearm(cmds map[uint32][]byte) {
	for seq, b := range cmds {
		h.send(seq, b, false)
	}
}

// answer completes command seq; h.mu is held. A reply to a preloaded
// attach (nobody waiting) updates the probe's state and is logged.
func (h *Host) answer(seq uint32, m wire.Message) {
	if id, ok := h.pending[seq]; ok {
		delete(h.pending, seq)
		r, isReply := m.(wire.Reply)
		if a := h.probes[id]; a != nil && isReply {
			if r.Status == 0 {
				a.state = "armed"
			} else {
				a.state = fmt.Sprintf("failed: %v", syscall.Errno(-r.Status))
				delete(h.probes, id)
				fmt.Fprintf(h.log, "probe: guest refused probe %q (%s): %v\n", a.spec.Name, a.spec, syscall.Errno(-r.Status))
			}
		}
	}
	if c, ok := h.waits[seq]; ok {
		delete(h.waits, seq)
		c <- m
	}
}
