package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

// detProbe is the probe detector's name in verdicts; heartbeats are
// named by their period (hbLabel).
const detProbe = "probe"

// benchCluster is one of the experiment's two clusters: its nodes, its
// manager, the detectors it runs and what they saw.
type benchCluster struct {
	name  string // "heartbeat" or "probe"
	title string // for tables
	cl    *vmmnode.Cluster
	m     *failover.Manager
	rec   *recorder
	hbs   []*failover.Heartbeat
	// deciding is the detector whose verdict fails the cluster over
	// first; awaited are the detectors a run waits for (or for the
	// never-detected timeout).
	deciding string
	awaited  []string

	timelines chan failover.Timeline
	journal   *os.File // the manager's journal: every transition, in OUT/nodes/NAME
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// newBenchCluster makes (does not boot) cluster name in dir: "heartbeat"
// is the seed's cluster 1, decided by the heartbeat alone (a tuned
// heartbeat and the probes beside it only measure); "probe" is cluster 2,
// decided by the probes (their fence rules armed in each vmm) and the
// heartbeat.
func newBenchCluster(o benchOpts, name, dir string, slots chan struct{}) (*benchCluster, error) {
	cfg := vmmnode.Config{VMM: o.vmm, Dir: dir, Nodes: []string{"vm1", "vm2"},
		NamespacePrefix: "tvbench-" + name[:2] + "-", Mem: o.mem, BootSlots: slots}
	b := &benchCluster{name: name, rec: &recorder{}, timelines: make(chan failover.Timeline, 16)}
	rules := failover.DefaultRules(vmmnode.DefaultService)
	if name == "probe" {
		cfg.FenceRules = rules.FenceRules()
		b.title = "cluster 2 (heartbeat + probes)"
		b.deciding, b.awaited = detProbe, []string{detProbe}
	} else {
		b.title = "cluster 1 (heartbeat only)"
		b.deciding, b.awaited = hbLabel(o.period), []string{hbLabel(o.period), hbLabel(o.tuned), detProbe}
	}
	cl, err := vmmnode.New(cfg)
	if err != nil {
		return nil, err
	}
	b.cl = cl
	return b, nil
}

// hbLabel names a heartbeat by its period: "heartbeat-10s".
func hbLabel(period time.Duration) string { return "heartbeat-" + period.String() }

// start runs the manager and the cluster's detectors until stop.
func (b *benchCluster) start(o benchOpts, dir string, log io.Writer) error {
	jf, err := os.Create(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		return err
	}
	b.journal = jf
	m, err := failover.NewManager(failover.Config{Nodes: b.cl.Nodes(), Actions: b.cl, AwaitServing: b.cl.AwaitServing,
		Journal: failover.NewJournal(&lockedWriter{w: jf}),
		OnTimeline: func(tl failover.Timeline) {
			select {
			case b.timelines <- tl:
			default: // a run drains them; more than 16 unread is a false-failover storm, counted by the manager
			}
		},
		// A probe's measurement of a failure the heartbeat never decided
		// on (an OOM in cluster 1) must not time the next run's failure.
		MeasureWindow: 2 * o.period, Log: log})
	if err != nil {
		return err
	}
	b.m = m
	probe := &failover.ProbeDetector{Rules: failover.DefaultRules(vmmnode.DefaultService), Sources: b.cl.Sources(),
		MeasureOnly: b.name == "heartbeat"}
	// Each check may take a whole period: a guest on a loaded emulating
	// host can take seconds to fork httpd's child, and a check that
	// times out is a miss. A killed httpd refuses at once either way.
	hb := &failover.Heartbeat{Targets: b.cl.HeartbeatTargets(), Period: o.period, Timeout: o.period, Label: hbLabel(o.period)}
	dets := []failover.Detector{b.rec.wrap(probe), b.rec.wrap(hb)}
	b.hbs = append(b.hbs, hb)
	if b.name == "heartbeat" {
		// The tuned heartbeat connects (TCP) rather than GETs, and checks
		// the active node only, as a Pacemaker monitor runs where its
		// resource runs: a request a second per node costs each guest
		// a fork of httpd a second, and the guests could no longer answer
		// anyone in time.
		tuned := &failover.Heartbeat{Targets: activeOnly(m, b.cl.TCPHeartbeatTargets()), Period: o.tuned, Timeout: o.tuned, Label: hbLabel(o.tuned),
			MeasureOnly: true}
		b.hbs = append(b.hbs, tuned)
		dets = append(dets, b.rec.wrap(tuned))
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := m.Run(ctx, dets...); err != nil && ctx.Err() == nil {
			fmt.Fprintf(log, "cluster bench: %s cluster's manager stopped: %v\n", b.name, err)
		}
	}()
	return nil
}

// healthy reports whether the cluster has an active node and every other
// node is a standby: protected again.
func (b *benchCluster) healthy() bool {
	st := b.m.Status()
	if st.Active == "" {
		return false
	}
	for n, s := range st.Nodes {
		if n != st.Active && s != failover.Standby {
			return false
		}
	}
	return true
}

// close stops the manager and the cluster's vmms.
func (b *benchCluster) close() error {
	if b.cancel != nil {
		b.cancel()
		b.wg.Wait()
	}
	if b.m != nil {
		b.m.Close()
	}
	err := b.cl.Close()
	if b.journal != nil {
		b.journal.Close()
	}
	return err
}

// setupClusters makes and boots both clusters at once under dir.
func setupClusters(ctx context.Context, o benchOpts, dir string, log io.Writer) ([]*benchCluster, error) {
	var cs []*benchCluster
	var slots chan struct{} // both clusters' boots share the host's slots
	if o.bootSlots > 0 {
		slots = make(chan struct{}, o.bootSlots)
	}
	for _, name := range []string{"heartbeat", "probe"} {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return cs, err
		}
		b, err := newBenchCluster(o, name, d, slots)
		if err != nil {
			return cs, err
		}
		cs = append(cs, b)
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, b := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.cl.Start(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return cs, fmt.Errorf("%s cluster: %w", cs[i].name, err)
		}
	}
	// Four guests that just booted on two emulating cores answer slowly
	// for a while; a heartbeat started then only measures that.
	select {
	case <-time.After(quiet):
	case <-ctx.Done():
		return cs, context.Cause(ctx)
	}
	for _, b := range cs {
		if err := b.start(o, filepath.Join(dir, b.name), log); err != nil {
			return cs, fmt.Errorf("%s cluster: %w", b.name, err)
		}
	}
	return cs, nil
}

// quiet is the pause between the boots and the detectors' start.
const quiet = 20 * time.Second

// activeOnly makes each target's check pass without asking the node while
// the node is not m's active one.
func activeOnly(m *failover.Manager, ts []failover.Target) []failover.Target {
	out := make([]failover.Target, len(ts))
	for i, t := range ts {
		check := t.Check
		t.Check = failover.CheckFunc(func(ctx context.Context) error {
			if m.Status().Active != t.Node {
				return nil
			}
			return check.Check(ctx)
		})
		out[i] = t
	}
	return out
}
