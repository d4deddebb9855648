package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Checker is one heartbeat check: nil when the thing checked answers.
// Check must return by ctx's deadline.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckFunc is a Checker made of a function.
type CheckFunc func(ctx context.Context) error

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// Target is one thing the heartbeat checks: a node's service (Kind
// ServiceFailure, as Pacemaker's apache agent checks) or its VM (Kind
// VMFailure, as the VirtualDomain agent checks).
type Target struct {
	Node  string
	Kind  Kind
	Check Checker
}

// Heartbeat defaults.
//
// Period is the seed's baseline: Heartbeat polling every 10 s. Misses is
// 1 because that is what the seed measured: a mean detection time of
// 5.4 s with a 10 s period is only possible when the first failed poll
// after the failure decides (mean ≈ period/2 + the check); it is also how
// Pacemaker treats a failed monitor operation. Heartbeat's own node
// deadtime (sample ha.cf: keepalive 2 s, deadtime 30 s, i.e. 15 missed
// keepalives) is for membership messages between hosts, not for
// checking a resource; set Misses to deadtime/period to model it.
// Timeout 0 is taken as Period/2, so a check that hangs is a miss before
// the next poll.
const (
	DefaultPeriod = 10 * time.Second
	DefaultMisses = 1
)

// Heartbeat is the polling baseline: every Period it runs every Target's
// check, each within Timeout, and after Misses consecutive failures of a
// target it gives one verdict for it. The target is not reported again
// until one of its checks passes. Period and misses are counted on Clock;
// Timeout bounds each check in real time (a check is real I/O). The
// fields are read when Run starts.
type Heartbeat struct {
	Targets []Target
	Period  time.Duration // 0: DefaultPeriod
	Timeout time.Duration // 0: Period/2; must not exceed Period
	Misses  int           // 0: DefaultMisses
	Clock   Clock         // nil: the system clock
	// Label names the detector in verdicts (default "heartbeat"), so that
	// two heartbeats (10 s and a tuned 1 s) can run side by side.
	Label string
	// MeasureOnly marks every verdict MeasureOnly: a heartbeat that only
	// times what it would have seen, beside the one that decides.
	MeasureOnly bool

	mu      sync.Mutex
	polls   uint64            // rounds completed
	inRound bool              // a round's checks are running
	rearm   map[string]uint64 // node → the first round Rearm applies to
}

// Rearm implements Rearmer: node is reported again on its next failed
// checks, from the first round whose checks start after this call (a
// round in flight may still be checking the old guest).
func (h *Heartbeat) Rearm(node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rearm == nil {
		h.rearm = map[string]uint64{}
	}
	first := h.polls + 1
	if h.inRound {
		first++
	}
	h.rearm[node] = first
}

// Name returns Label, or "heartbeat".
func (h *Heartbeat) Name() string {
	if h.Label != "" {
		return h.Label
	}
	return "heartbeat"
}

// Polls returns how many rounds of checks have run.
func (h *Heartbeat) Polls() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.polls
}

// settings returns the period, timeout and misses in effect, or why they
// are wrong.
func (h *Heartbeat) settings() (period, timeout time.Duration, misses int, err error) {
	period, timeout, misses = h.Period, h.Timeout, h.Misses
	if period == 0 {
		period = DefaultPeriod
	}
	if timeout == 0 {
		timeout = period / 2
	}
	if misses == 0 {
		misses = DefaultMisses
	}
	switch {
	case period < 0 || timeout < 0 || misses < 0:
		err = fmt.Errorf("failover: heartbeat: negative period %v, timeout %v or misses %d", period, timeout, misses)
	case timeout > period:
		err = fmt.Errorf("failover: heartbeat: timeout %v is longer than the period %v: checks would overlap", timeout, period)
	case len(h.Targets) == 0:
		err = errors.New("failover: heartbeat has no targets")
	}
	for _, t := range h.Targets {
		if err == nil && (t.Node == "" || t.Check == nil || t.Kind == NoFailure) {
			err = fmt.Errorf("failover: heartbeat target %q needs a node, a check and a failure kind", t.Node)
		}
	}
	return period, timeout, misses, err
}

// Run polls at once and then every period until ctx ends. Rounds are on a
// fixed schedule (start + k·period); a round that overruns delays the
// next, it never runs two at once.
func (h *Heartbeat) Run(ctx context.Context, out chan<- Verdict) error {
	period, timeout, misses, err := h.settings()
	if err != nil {
		return err
	}
	clock := h.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	failed := make([]int, len(h.Targets))    // consecutive misses
	reported := make([]bool, len(h.Targets)) // verdict given, no pass since
	errs := make([]error, len(h.Targets))
	next := clock.Now()
	for {
		h.mu.Lock()
		h.inRound = true
		round := h.polls + 1
		h.mu.Unlock()
		var wg sync.WaitGroup
		for i, t := range h.Targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				errs[i] = t.Check.Check(cctx)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.mu.Lock()
		h.polls++
		h.inRound = false
		for i, t := range h.Targets {
			if first, ok := h.rearm[t.Node]; ok && round >= first {
				failed[i], reported[i] = 0, false
				delete(h.rearm, t.Node)
			}
		}
		h.mu.Unlock()
		for i, t := range h.Targets {
			if errs[i] == nil {
				failed[i], reported[i] = 0, false
				continue
			}
			failed[i]++
			if failed[i] < misses || reported[i] {
				continue
			}
			reported[i] = true
			v := Verdict{Node: t.Node, Kind: t.Kind, Detector: h.Name(), DetectedNS: clock.Now().UnixNano(),
				MeasureOnly: h.MeasureOnly, Cause: Cause{Rule: "check", Misses: failed[i], Detail: errs[i].Error()}}
			select {
			case out <- v:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		next = next.Add(period)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(next.Sub(clock.Now())):
		}
	}
}
