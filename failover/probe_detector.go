package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/internal/ratelog"
	"github.com/tracevisor/tracevisor/probe"
)

// EventStream is one node's stream of probe events. *api.Client, after
// Dial, is one (its Events is `vmm probe events`); FakeStream is another.
type EventStream interface {
	// Events calls fn for each event until fn returns false or the
	// stream ends; raw is the event as the server wrote it (may be nil).
	Events(fn func(e probe.Event, raw []byte) bool) error
	// Close ends the stream; a blocked Events returns.
	Close() error
}

// Source says how to open one node's event stream.
type Source struct {
	Node string
	Open func(ctx context.Context) (EventStream, error)
}

// APISource is the Source of a vmm's events on its control API socket at
// path (`vmm run --api PATH`).
func APISource(node, path string) Source {
	return Source{Node: node, Open: func(context.Context) (EventStream, error) {
		return api.Dial(path)
	}}
}

// DefaultReconnect is how long the probe detector waits before opening a
// node's stream again after it ended or failed to open.
const DefaultReconnect = 200 * time.Millisecond

// ProbeDetector turns each node's probe events into verdicts by Rules:
// detection on the event, with no polling and nothing in guest user
// space. The fields are read when Run starts.
type ProbeDetector struct {
	Rules   Rules
	Sources []Source
	Clock   Clock // nil: the system clock
	// MeasureOnly marks every verdict MeasureOnly: the detector times
	// failures in the guest for a cluster that another detector decides.
	MeasureOnly bool
	// Reconnect is the wait before reopening a stream (0: DefaultReconnect).
	Reconnect time.Duration
	// Log receives stream errors, rate-limited (nil: discarded).
	Log io.Writer

	events, verdicts, lost, guestDropped atomic.Uint64
}

// ProbeStats counts what a ProbeDetector saw.
type ProbeStats struct {
	Events       uint64 // events read, over all nodes
	Verdicts     uint64 // verdicts given (sent, or being sent)
	StreamsLost  uint64 // streams that ended after opening
	GuestDropped uint64 // events the guests' drivers dropped (summed Event.Dropped): failures possibly missed
}

// Stats returns the counters so far.
func (d *ProbeDetector) Stats() ProbeStats {
	return ProbeStats{Events: d.events.Load(), Verdicts: d.verdicts.Load(),
		StreamsLost: d.lost.Load(), GuestDropped: d.guestDropped.Load()}
}

// Name returns "probe".
func (d *ProbeDetector) Name() string { return "probe" }

// Run watches every Source until ctx ends, reopening streams that end.
func (d *ProbeDetector) Run(ctx context.Context, out chan<- Verdict) error {
	if len(d.Sources) == 0 {
		return errors.New("failover: probe detector has no sources")
	}
	for _, s := range d.Sources {
		if s.Node == "" || s.Open == nil {
			return fmt.Errorf("failover: probe source %q needs a node name and an Open", s.Node)
		}
	}
	clock := d.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	wait := d.Reconnect
	if wait <= 0 {
		wait = DefaultReconnect
	}
	log := ratelog.Default(d.Log)
	var wg sync.WaitGroup
	for _, s := range d.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watch(ctx, s, clock, wait, log, out)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// watch reads one node's stream, reopening it, until ctx ends.
func (d *ProbeDetector) watch(ctx context.Context, s Source, clock Clock, wait time.Duration, log *ratelog.Logger, out chan<- Verdict) {
	for ctx.Err() == nil {
		st, err := s.Open(ctx)
		if err != nil {
			log.Printf("failover: probe: node %s: %v", s.Node, err)
		} else {
			err = d.read(ctx, s.Node, st, clock, out)
			if ctx.Err() != nil {
				return
			}
			d.lost.Add(1)
			log.Printf("failover: probe: node %s: event stream ended: %v", s.Node, err)
			detail := "event stream ended"
			if err != nil {
				detail += ": " + err.Error()
			}
			if d.Rules.StreamLost != NoFailure {
				d.send(ctx, out, Verdict{Node: s.Node, Kind: d.Rules.StreamLost,
					Cause: Cause{Rule: "stream", Detail: detail}, DetectedNS: clock.Now().UnixNano()})
			}
		}
		select {
		case <-ctx.Done():
		case <-clock.After(wait):
		}
	}
}

// read judges st's events until it ends or ctx ends; it closes st.
func (d *ProbeDetector) read(ctx context.Context, node string, st EventStream, clock Clock, out chan<- Verdict) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		st.Close()
	}()
	return st.Events(func(e probe.Event, _ []byte) bool {
		d.events.Add(1)
		d.guestDropped.Add(uint64(e.Dropped))
		kind, cause := d.Rules.Judge(e)
		if kind == NoFailure {
			return true
		}
		return d.send(ctx, out, Verdict{Node: node, Kind: kind, Cause: cause, DetectedNS: clock.Now().UnixNano()})
	})
}

// send delivers v unless ctx ends first; it reports whether it did.
func (d *ProbeDetector) send(ctx context.Context, out chan<- Verdict, v Verdict) bool {
	v.Detector = d.Name()
	v.MeasureOnly = d.MeasureOnly
	d.verdicts.Add(1)
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
