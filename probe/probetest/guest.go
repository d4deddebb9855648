// Package probetest plays the guest's probe driver for tests of the host
// side: it decodes each command a probe.Host sends and answers as the C
// driver does.
package probetest

import (
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/wire"
)

// Guest is a fake probe driver. Set Refuse, Silence, Hold or Answer before
// the commands they should affect.
type Guest struct {
	t *testing.T
	// Host is the host side wired to this guest.
	Host *probe.Host

	mu       sync.Mutex
	armed    map[uint32]wire.Attach
	refuse   syscall.Errno
	silent   bool
	hold     bool
	held     []wire.Message
	answer   func(cmd wire.Message) ([]wire.Message, bool)
	injects  []wire.Inject
	commands map[wire.MsgType]int
}

// Clock maps guest nanoseconds to host ones by adding itself.
type Clock int64

// HostNS implements probe.Clock.
func (c Clock) HostNS(guest uint64) (int64, bool) { return int64(guest) + int64(c), true }

// ReceivedNS is the receipt time the fake transport stamps on every message.
const ReceivedNS = 5000

// New returns a fake guest and its host (Clock(1000)), closed at the end
// of the test.
func New(t *testing.T) *Guest { return NewLogged(t, nil) }

// NewLogged is New with the host's log written to log.
func NewLogged(t *testing.T, log io.Writer) *Guest {
	g := &Guest{t: t, armed: map[uint32]wire.Attach{}, commands: map[wire.MsgType]int{}}
	g.Host = probe.NewHost(g, Clock(1000), log)
	t.Cleanup(g.Host.Close)
	return g
}

// Clone returns a guest restored from a snapshot of g: its driver holds
// the probes g's holds now, and its Host is a fresh one (probe.NewHost),
// for the test to Restore. The clone's other settings are New's.
func (g *Guest) Clone(t *testing.T) *Guest {
	c := NewLogged(t, nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, a := range g.armed {
		c.armed[id] = a
	}
	return c
}

// Refuse makes the guest answer every later attach with -errno.
func (g *Guest) Refuse(errno syscall.Errno) { g.mu.Lock(); g.refuse = errno; g.mu.Unlock() }

// Silence makes the guest answer nothing from now on.
func (g *Guest) Silence() { g.mu.Lock(); g.silent = true; g.mu.Unlock() }

// Hold makes the guest keep its answers from now on, commands still
// handled, until Release sends them.
func (g *Guest) Hold() { g.mu.Lock(); g.hold = true; g.mu.Unlock() }

// Release sends the answers held since Hold, in order, and answers at once
// again.
func (g *Guest) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = false
	for _, m := range g.held {
		g.Emit(m)
	}
	g.held = nil
}

// Answer makes the guest answer each later command with what f returns
// when f's second result is true (a hostile or broken driver), and as the
// C driver does otherwise. f runs with the guest locked: it must not call
// the guest.
func (g *Guest) Answer(f func(cmd wire.Message) ([]wire.Message, bool)) {
	g.mu.Lock()
	g.answer = f
	g.mu.Unlock()
}

// Commands is how many commands of type t the host sent.
func (g *Guest) Commands(t wire.MsgType) int { g.mu.Lock(); defer g.mu.Unlock(); return g.commands[t] }

// Armed returns the attach command of probe id, if it is armed.
func (g *Guest) Armed(id uint32) (wire.Attach, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.armed[id]
	return a, ok
}

// ArmedCount is how many probes are armed.
func (g *Guest) ArmedCount() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.armed) }

// Injects returns the injections received.
func (g *Guest) Injects() []wire.Inject {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]wire.Inject(nil), g.injects...)
}

// Restart plays a driver that starts again: it forgets every probe and
// says hello.
func (g *Guest) Restart() {
	g.mu.Lock()
	g.armed = map[uint32]wire.Attach{}
	g.mu.Unlock()
	g.Emit(wire.Hello{Version: wire.Version, Clock: wire.ClockKVM, NCPUs: 1})
}

// Emit sends a guest message to the host, as the listener queue would.
func (g *Guest) Emit(m wire.Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		g.t.Errorf("fake guest: %v", err)
		return
	}
	g.Host.Receive(b, ReceivedNS)
}

// Send implements probe.Transport: it handles one command.
func (g *Guest) Send(cmd []byte) error {
	m, err := wire.Decode(cmd)
	if err != nil {
		g.t.Errorf("host sent a malformed command: %v", err)
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.commands[m.Type()]++
	if g.silent {
		return nil
	}
	if g.answer != nil {
		if msgs, ok := g.answer(m); ok {
			for _, a := range msgs {
				g.emit(a)
			}
			return nil
		}
	}
	switch c := m.(type) {
	case wire.Attach:
		if g.refuse != 0 {
			g.emit(wire.Reply{Seq: c.Seq, Status: -int32(g.refuse), ID: c.ID})
			return nil
		}
		if _, ok := g.armed[c.ID]; ok {
			g.emit(wire.Reply{Seq: c.Seq, Status: -int32(syscall.EEXIST), ID: c.ID})
			return nil
		}
		g.armed[c.ID] = c
		g.emit(wire.Reply{Seq: c.Seq, ID: c.ID})
	case wire.Detach:
		status := int32(0)
		if _, ok := g.armed[c.ID]; !ok {
			status = -int32(syscall.ENOENT)
		}
		delete(g.armed, c.ID)
		g.emit(wire.Reply{Seq: c.Seq, Status: status, ID: c.ID})
	case wire.StatsRequest:
		var all []wire.Stat
		for id, a := range g.armed {
			all = append(all, wire.Stat{ID: id, Kind: a.Kind, Class: a.Class, Hits: 3, Delivered: 2, Dropped: 1})
		}
		for len(all) > wire.StatsPerMsg {
			g.emit(wire.Stats{Seq: c.Seq, Entries: all[:wire.StatsPerMsg]})
			all = all[wire.StatsPerMsg:]
		}
		g.emit(wire.Stats{Seq: c.Seq, Last: true, Entries: all})
	case wire.Inject:
		g.injects = append(g.injects, c)
		g.emit(wire.Reply{Seq: c.Seq})
	}
	return nil
}

// emit sends an answer, or keeps it while held; g.mu is held.
func (g *Guest) emit(m wire.Message) {
	if g.hold {
		g.held = append(g.held, m)
		return
	}
	g.Emit(m)
}
