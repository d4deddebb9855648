package failover

import (
	"fmt"
	"sort"
	"sync"
)

// State is a node's place in the cluster.
type State uint8

// Node states. A node starts active or standby; every later change is a
// transition the table allows.
const (
	Active     State = iota + 1 // holds the service address and serves
	Standby                     // healthy, ready to take the address
	Failed                      // a verdict said it failed; not yet fenced
	Fenced                      // stopped by its VMM: can never answer again
	Recovering                  // being restarted or rebooted
)

var stateNames = map[State]string{
	Active: "active", Standby: "standby", Failed: "failed", Fenced: "fenced", Recovering: "recovering",
}

// String returns the state's name as in the journal ("active", ...).
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, as a journal reader does.
func (s *State) UnmarshalText(b []byte) error {
	for st, n := range stateNames {
		if n == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("failover: unknown node state %q", b)
}

// transitions is the one table of legal node transitions:
//
//	active     → failed              a verdict for the node serving
//	standby    → active, failed      promoted (the address moved to it); a verdict
//	failed     → fenced              its VMM stopped it
//	fenced     → recovering          restart or reboot begun
//	recovering → standby, failed     rejoined; recovery failed
var transitions = map[State][]State{
	Active:     {Failed},
	Standby:    {Active, Failed},
	Failed:     {Fenced},
	Fenced:     {Recovering},
	Recovering: {Standby, Failed},
}

// CanTransition reports whether the table allows from → to.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Machine holds every node's state and makes each change through the
// transition table, writing one journal line per transition. Safe for
// concurrent use.
type Machine struct {
	clock   Clock
	journal *Journal

	mu    sync.Mutex
	order []string
	state map[string]State
}

// NewMachine returns a Machine with no nodes, stamping transitions with
// clock (nil: the system clock) and writing them to journal (nil: none).
func NewMachine(clock Clock, journal *Journal) *Machine {
	if clock == nil {
		clock = SystemClock{}
	}
	return &Machine{clock: clock, journal: journal, state: map[string]State{}}
}

// Add puts a new node in the cluster in state s, which must be Active or
// Standby: a node joins healthy.
func (m *Machine) Add(node string, s State) error {
	if node == "" {
		return fmt.Errorf("failover: a node needs a name")
	}
	if s != Active && s != Standby {
		return fmt.Errorf("failover: node %s: a node joins active or standby, not %s", node, s)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.state[node]; ok {
		return fmt.Errorf("failover: node %s added twice", node)
	}
	m.state[node] = s
	m.order = append(m.order, node)
	return nil
}

// State returns node's state; ok is false for a node not in the cluster.
func (m *Machine) State(node string) (s State, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok = m.state[node]
	return s, ok
}

// Nodes returns the nodes in the order they were added.
func (m *Machine) Nodes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.order...)
}

// InState returns the nodes in state s, in the order they were added.
func (m *Machine) InState(s State) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, n := range m.order {
		if m.state[n] == s {
			out = append(out, n)
		}
	}
	return out
}

// Snapshot returns every node's state.
func (m *Machine) Snapshot() map[string]State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]State, len(m.state))
	for n, s := range m.state {
		out[n] = s
	}
	return out
}

// Transition moves node to state to for cause and journals it. An unknown
// node or a change the table does not allow is an error and changes
// nothing.
func (m *Machine) Transition(node string, to State, cause string) error {
	m.mu.Lock()
	from, ok := m.state[node]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("failover: no node %q", node)
	}
	if !CanTransition(from, to) {
		m.mu.Unlock()
		return fmt.Errorf("failover: node %s: illegal transition %s → %s (allowed from %s: %s)",
			node, from, to, from, allowedList(from))
	}
	m.state[node] = to
	// Journalled under the lock, so lines are in the order of the changes.
	m.journal.transition(m.clock.Now().UnixNano(), node, from, to, cause)
	m.mu.Unlock()
	return nil
}

// allowedList names the states the table allows from s.
func allowedList(s State) string {
	var names []string
	for _, t := range transitions[s] {
		names = append(names, t.String())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return fmt.Sprint(names)
}
