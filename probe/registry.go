package probe

import (
	"fmt"
	"syscall"

	"github.com/tracevisor/tracevisor/wire"
)

// state is where an attached probe stands with the guest.
type state int

const (
	// stateArming: an attach command is out, not yet answered.
	stateArming state = iota
	// stateArmed: the guest's driver said it armed the probe.
	stateArmed
	// stateUnconfirmed: the guest never answered the attach in time, or
	// the command could not be sent; the guest may or may not hold it.
	// A stats answer that lists the probe confirms it.
	stateUnconfirmed
	// stateFailed: the guest refused it (armed.errno); no longer attached.
	stateFailed
)

func (s state) String() string {
	switch s {
	case stateArming:
		return "arming"
	case stateArmed:
		return "armed"
	case stateUnconfirmed:
		return "unconfirmed"
	case stateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// armed is one probe the host asked for.
type armed struct {
	id        uint32
	spec      Spec
	state     state
	errno     syscall.Errno // stateFailed: the guest's refusal
	seq       uint32        // its outstanding attach command; 0 when none
	detaching bool          // a detach command is out: not re-armed
}

// stateText is the probe's state as Status shows it.
func (a *armed) stateText() string {
	if a.state == stateFailed {
		return fmt.Sprintf("failed: %s", explain(wire.CmdAttach, a.errno))
	}
	return a.state.String()
}

// registry is every probe the host asked for; Host.mu guards it. Ids are
// the host's, never reused.
type registry struct {
	lastID   uint32
	attached map[uint32]*armed // by id, while attached
	ever     map[uint32]*armed // every probe ever attached, for late events
}

func newRegistry() registry {
	return registry{attached: map[uint32]*armed{}, ever: map[uint32]*armed{}}
}

// add registers spec under a fresh id, arming.
func (r *registry) add(spec Spec) *armed {
	r.lastID++
	a := &armed{id: r.lastID, spec: spec, state: stateArming}
	r.attached[a.id], r.ever[a.id] = a, a
	return a
}

// get returns the attached probe id, or nil.
func (r *registry) get(id uint32) *armed { return r.attached[id] }

// remove forgets probe id as attached; its name stays for late events.
func (r *registry) remove(id uint32) { delete(r.attached, id) }

// fail marks a refused probe and removes it.
func (r *registry) fail(a *armed, errno syscall.Errno) {
	a.state, a.errno, a.seq = stateFailed, errno, 0
	r.remove(a.id)
}

// count is how many probes are attached.
func (r *registry) count() int { return len(r.attached) }
