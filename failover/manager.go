package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/internal/ratelog"
)

// Actions are what the manager does to nodes. A real cluster implements
// them with the vmm's control API and host networking; a testbed with
// fakes. The manager calls Fence and MoveAddress one at a time, under a
// deadline (Config.ActionTimeout), and Recover on a goroutine of its own.
type Actions interface {
	// Fence stops node for good: its VMM stops the guest's vCPUs, so it
	// can never answer on the service address again. It returns nil only
	// once that holds.
	Fence(ctx context.Context, node string) error
	// MoveAddress gives the service address to node, taking it from
	// whichever node had it.
	MoveAddress(ctx context.Context, to string) error
	// Recover makes a fenced node healthy again (restarts the service or
	// reboots the guest, as why suggests), returning once it can serve.
	Recover(ctx context.Context, node string, why Kind) error
}

// Manager defaults.
const (
	DefaultActionTimeout  = 10 * time.Second
	DefaultRecoverTimeout = 5 * time.Minute
	DefaultMeasureWindow  = time.Minute
)

// Config is a cluster for NewManager.
type Config struct {
	// Nodes are the cluster's nodes: the first is active and holds the
	// service address already, the others are standbys, tried in this
	// order when the active fails.
	Nodes   []string
	Actions Actions
	Clock   Clock    // nil: the system clock
	Journal *Journal // nil: no journal
	// AwaitServing, if set, is run after each address move and returns
	// when a client request to the service address first succeeded on
	// the new active node: the serving stage of the Timeline.
	AwaitServing func(ctx context.Context, node string) (time.Time, error)
	// OnTimeline, if set, receives each failover's Timeline once it is
	// Complete (before the failed node's recovery). It is called with the
	// manager's lock held: it must not block or call the Manager.
	OnTimeline func(Timeline)
	// ActionTimeout bounds each Fence and MoveAddress (0: DefaultActionTimeout),
	// RecoverTimeout each Recover and AwaitServing (0: DefaultRecoverTimeout).
	ActionTimeout, RecoverTimeout time.Duration
	// MeasureWindow: a measure-only verdict times a later deciding verdict
	// for the same node only if it came at most this long before it
	// (0: DefaultMeasureWindow).
	MeasureWindow time.Duration
	// Log receives errors, rate-limited (nil: discarded).
	Log io.Writer
}

// Stats counts what the manager did.
type Stats struct {
	Verdicts         uint64 // verdicts handled, measure-only ones included
	Failovers        uint64 // the address moved to a standby
	Down             uint64 // an active failed with no standby left to take over
	StandbyFailures  uint64 // verdicts for a standby
	Duplicates       uint64 // verdicts for a node already failed, fenced or recovering: ignored
	MeasureOnly      uint64 // measure-only verdicts: recorded, not acted on
	Unknown          uint64 // verdicts for a node not in the cluster
	FenceFailures    uint64
	MoveFailures     uint64
	Recoveries       uint64 // nodes that rejoined as standby
	RecoveryFailures uint64 // nodes left fenced because Recover failed
}

// Status is the cluster now.
type Status struct {
	Active string           // the node serving; "" when the service is down
	Nodes  map[string]State // every node's state
}

// Manager is the cluster manager: it takes verdicts from any number of
// detectors and, for the active node, fences it, moves the service address
// to the first healthy standby (which becomes active) and recovers the
// failed node, which rejoins as a standby; a second failure fails back.
// With no healthy standby left it reports the service down and moves
// nothing: no failover loop; the next node to rejoin then takes the
// service. Safe for concurrent use.
type Manager struct {
	cfg     Config
	clock   Clock
	machine *Machine
	log     *ratelog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	bg      sync.WaitGroup

	mu        sync.Mutex // held while handling a verdict, fence and move included
	active    string
	stats     Stats
	timelines []*Timeline
	open      map[string]*Timeline // a failed active's failover, until it rejoins
	measured  map[string]Verdict   // the first measure-only verdict per node since it was healthy
	detectors []Detector           // Run's, told when a node rejoins (Rearmer)
}

// NewManager returns a Manager for cfg's cluster; nothing runs until
// verdicts come (Handle or Run). Close stops its background work.
func NewManager(cfg Config) (*Manager, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("failover: a cluster needs at least one node")
	}
	if cfg.Actions == nil {
		return nil, errors.New("failover: a cluster needs Actions")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	if cfg.RecoverTimeout <= 0 {
		cfg.RecoverTimeout = DefaultRecoverTimeout
	}
	if cfg.MeasureWindow <= 0 {
		cfg.MeasureWindow = DefaultMeasureWindow
	}
	m := &Manager{cfg: cfg, clock: cfg.Clock, machine: NewMachine(cfg.Clock, cfg.Journal),
		log: ratelog.Default(cfg.Log), open: map[string]*Timeline{}, measured: map[string]Verdict{}}
	for i, n := range cfg.Nodes {
		s := Standby
		if i == 0 {
			s = Active
		}
		if err := m.machine.Add(n, s); err != nil {
			return nil, err
		}
	}
	m.active = cfg.Nodes[0]
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Close stops recoveries and serving checks in flight and waits for them.
// Nodes being recovered stay Recovering.
func (m *Manager) Close() {
	m.cancel()
	m.bg.Wait()
}

// Run handles verdicts from every detector until ctx ends or a detector
// stops with an error of its own, which Run returns.
func (m *Manager) Run(ctx context.Context, detectors ...Detector) error {
	if len(detectors) == 0 {
		return errors.New("failover: Run needs a detector")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	m.detectors = detectors
	m.mu.Unlock()
	out := make(chan Verdict, 64)
	errc := make(chan error, len(detectors))
	for _, d := range detectors {
		go func() {
			err := d.Run(ctx, out)
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("failover: detector %s: %w", d.Name(), err)
			} else {
				err = nil
			}
			errc <- err
		}()
	}
	var first error
	for running := len(detectors); running > 0; {
		select {
		case v := <-out:
			if err := m.Handle(v); err != nil {
				m.log.Printf("%v", err)
			}
		case err := <-errc:
			running--
			if err != nil && first == nil {
				first = err
				cancel()
			}
		}
	}
	if first != nil {
		return first
	}
	return ctx.Err()
}

// Handle acts on one verdict. A verdict for the active node fails it over;
// for a standby, takes that standby out and recovers it; for a node
// already failed, fenced or recovering, is a counted duplicate; a
// measure-only verdict only times the failure. The error says what could
// not be done (an unknown node, a fence or move that failed).
func (m *Manager) Handle(v Verdict) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Verdicts++
	if v.MeasureOnly {
		m.stats.MeasureOnly++
		m.measure(v)
		return nil
	}
	s, ok := m.machine.State(v.Node)
	if !ok {
		m.stats.Unknown++
		return fmt.Errorf("failover: verdict for unknown node %q: %s", v.Node, v)
	}
	switch s {
	case Active:
		return m.failActive(v)
	case Standby:
		return m.failStandby(v)
	default:
		m.stats.Duplicates++
		if tl := m.open[v.Node]; tl != nil {
			if _, seen := tl.Detections[v.Detector]; !seen {
				tl.Detections[v.Detector] = v.DetectedNS
			}
		}
		return nil
	}
}

// measure keeps a measure-only verdict that saw the failure in the guest
// (a probe hit's time) as the node's failure time, for the failover it may
// start or has started, and records every measure-only detector's first
// verdict on a failover in its Detections; m.mu is held.
func (m *Manager) measure(v Verdict) {
	if tl := m.open[v.Node]; tl != nil {
		if _, seen := tl.Detections[v.Detector]; !seen {
			tl.Detections[v.Detector] = v.DetectedNS
		}
		if tl.FailureNS == 0 && v.Cause.HostNS != 0 {
			tl.FailureNS, tl.FailureGuestNS = v.Cause.HostNS, v.Cause.GuestNS
		}
		return
	}
	if v.Cause.HostNS == 0 {
		return // a measuring heartbeat: it times nothing in the guest
	}
	old, ok := m.measured[v.Node]
	if !ok || time.Duration(v.DetectedNS-old.DetectedNS) > m.cfg.MeasureWindow {
		m.measured[v.Node] = v
	}
}

// failActive fails the active node over; m.mu is held.
func (m *Manager) failActive(v Verdict) error {
	node := v.Node
	tl := &Timeline{Node: node, Kind: v.Kind, Detector: v.Detector, Cause: v.Cause,
		FailureNS: v.Cause.HostNS, FailureGuestNS: v.Cause.GuestNS,
		DetectedNS: v.DetectedNS, ReceivedNS: m.now(), Detections: map[string]int64{v.Detector: v.DetectedNS}}
	if mv, ok := m.measured[node]; ok && tl.FailureNS == 0 &&
		time.Duration(v.DetectedNS-mv.DetectedNS) <= m.cfg.MeasureWindow {
		tl.FailureNS, tl.FailureGuestNS = mv.Cause.HostNS, mv.Cause.GuestNS
	}
	delete(m.measured, node)
	m.timelines = append(m.timelines, tl)
	m.open[node] = tl
	m.active = ""
	m.transition(node, Failed, v.String())

	if err := m.fence(node); err != nil {
		tl.Err = err.Error()
		m.down(tl, fmt.Sprintf("%s failed and could not be fenced: %v", node, err))
		return err
	}
	tl.FencedNS = m.now()
	var moveErrs []error
	for _, sb := range m.machine.InState(Standby) {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.ActionTimeout)
		err := m.cfg.Actions.MoveAddress(ctx, sb)
		cancel()
		if err != nil {
			m.stats.MoveFailures++
			err = fmt.Errorf("failover: move address to %s: %w", sb, err)
			moveErrs = append(moveErrs, err)
			m.failStandby(Verdict{Node: sb, Kind: VMFailure, Detector: "manager", DetectedNS: m.now(),
				Cause: Cause{Rule: "move", Detail: err.Error()}})
			continue
		}
		tl.MovedNS, tl.To = m.now(), sb
		m.active = sb
		m.transition(sb, Active, "failover from "+node)
		m.cfg.Journal.service(m.now(), true, sb, "failover from "+node)
		m.stats.Failovers++
		break
	}
	m.recover(node, v.Kind)
	err := errors.Join(moveErrs...)
	if m.active == "" {
		if err != nil {
			tl.Err = err.Error()
		}
		m.down(tl, "no healthy standby after "+node+" failed")
		return err
	}
	m.awaitServing(tl)
	return err
}

// failStandby takes a failed standby out and recovers it; m.mu is held.
func (m *Manager) failStandby(v Verdict) error {
	m.stats.StandbyFailures++
	m.transition(v.Node, Failed, v.String())
	if err := m.fence(v.Node); err != nil {
		return err
	}
	m.recover(v.Node, v.Kind)
	return nil
}

// fence fences a failed node: Failed → Fenced, or an error that leaves it
// Failed (and not recovered: its state is not known); m.mu is held.
func (m *Manager) fence(node string) error {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.ActionTimeout)
	defer cancel()
	if err := m.cfg.Actions.Fence(ctx, node); err != nil {
		m.stats.FenceFailures++
		return fmt.Errorf("failover: fence %s: %w", node, err)
	}
	m.transition(node, Fenced, "fenced")
	return nil
}

// down records that the service is down after tl's failure; m.mu is held.
func (m *Manager) down(tl *Timeline, cause string) {
	m.stats.Down++
	tl.Down = true
	m.cfg.Journal.service(m.now(), false, "", cause)
	m.complete(tl)
}

// recover starts recovering a fenced node in the background; m.mu is held.
func (m *Manager) recover(node string, why Kind) {
	m.transition(node, Recovering, "recovering after a "+why.String()+" failure")
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RecoverTimeout)
		err := m.cfg.Actions.Recover(ctx, node, why)
		cancel()
		m.recovered(node, err)
	}()
}

// recovered takes a node's recovery result: it rejoins as a standby, and
// takes the service if it is down; or, if recovery failed, it is fenced
// again and left out.
func (m *Manager) recovered(node string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return // closing: leave it Recovering
	}
	if err != nil {
		m.stats.RecoveryFailures++
		m.log.Printf("failover: recover %s: %v", node, err)
		m.transition(node, Failed, "recovery failed: "+err.Error())
		if ferr := m.fence(node); ferr != nil {
			m.log.Printf("%v", ferr)
		}
		return
	}
	m.stats.Recoveries++
	m.transition(node, Standby, "recovered")
	for _, d := range m.detectors {
		if r, ok := d.(Rearmer); ok {
			r.Rearm(node)
		}
	}
	if tl := m.open[node]; tl != nil {
		tl.RecoveredNS = m.now()
		delete(m.open, node)
	}
	delete(m.measured, node)
	if m.active != "" {
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.ActionTimeout)
	err = m.cfg.Actions.MoveAddress(ctx, node)
	cancel()
	if err != nil {
		m.stats.MoveFailures++
		m.log.Printf("failover: move address to %s: %v", node, err)
		m.failStandby(Verdict{Node: node, Kind: VMFailure, Detector: "manager", DetectedNS: m.now(),
			Cause: Cause{Rule: "move", Detail: err.Error()}})
		return
	}
	m.active = node
	m.transition(node, Active, "the service was down; "+node+" rejoined")
	m.cfg.Journal.service(m.now(), true, node, node+" rejoined while the service was down")
}

// awaitServing times the first successful request on tl.To, then
// completes tl; m.mu is held.
func (m *Manager) awaitServing(tl *Timeline) {
	if m.cfg.AwaitServing == nil {
		m.complete(tl)
		return
	}
	to := tl.To
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RecoverTimeout)
		at, err := m.cfg.AwaitServing(ctx, to)
		cancel()
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			tl.Err = fmt.Sprintf("serving on %s: %v", to, err)
		} else {
			tl.ServingNS = at.UnixNano()
		}
		m.complete(tl)
	}()
}

// complete marks tl complete and hands a copy to OnTimeline; m.mu is held.
func (m *Manager) complete(tl *Timeline) {
	tl.Complete = true
	if m.cfg.OnTimeline != nil {
		m.cfg.OnTimeline(tl.clone())
	}
}

// transition makes a change the manager's logic guarantees legal; an
// illegal one is a bug here, logged, never a guest's doing.
func (m *Manager) transition(node string, to State, cause string) {
	if err := m.machine.Transition(node, to, cause); err != nil {
		m.log.Printf("failover: BUG: %v", err)
	}
}

func (m *Manager) now() int64 { return m.clock.Now().UnixNano() }

// Status returns the active node and every node's state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Active: m.active, Nodes: m.machine.Snapshot()}
}

// State returns one node's state; false for a node not in the cluster.
func (m *Manager) State(node string) (State, bool) { return m.machine.State(node) }

// Stats returns the counters so far.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Timelines returns a copy of every failover's Timeline so far, oldest
// first, complete or not.
func (m *Manager) Timelines() []Timeline {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Timeline, len(m.timelines))
	for i, tl := range m.timelines {
		out[i] = tl.clone()
	}
	return out
}
