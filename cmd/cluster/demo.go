package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/netns"
)

// demoOpts are `cluster demo`'s flags.
type demoOpts struct {
	vmm        string
	period     time.Duration
	poll       time.Duration
	reqTimeout time.Duration
	recover    bool
	golden     bool
	dir        string
	deadline   time.Duration
	journal    bool
}

func demo(args []string) int {
	var o demoOpts
	fs := pflag.NewFlagSet("cluster demo", pflag.ContinueOnError)
	fs.StringVar(&o.vmm, "vmm", defaultVMM(), "the vmm binary")
	fs.DurationVar(&o.period, "heartbeat", failover.DefaultPeriod, "the heartbeat's period (measure only: the probes decide)")
	fs.DurationVar(&o.poll, "poll", 50*time.Millisecond, "the client's request interval on the service address")
	fs.DurationVar(&o.reqTimeout, "request-timeout", 2*time.Second, "each client request's timeout (a guest on an emulating, loaded host answers slowly)")
	fs.BoolVar(&o.recover, "recover", true, "wait for the failed node to come back fresh and rejoin as the standby")
	fs.BoolVar(&o.golden, "golden", true, "keep each node's first boot as a snapshot and recover a failed node by restoring it (about a second); false: boot it again (a boot's tens of seconds here)")
	fs.StringVar(&o.dir, "dir", "", "keep the cluster's files here: each vmm's output and events, the golden snapshots, the failed guest's core (default: a temporary directory, removed at the end)")
	fs.DurationVar(&o.deadline, "deadline", 10*time.Minute, "give up (exit 1) after this long")
	fs.BoolVar(&o.journal, "journal", false, "print the manager's journal (every node transition, JSON lines)")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if err := hostCanRun(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster demo: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), o.deadline, fmt.Errorf("the demo's %v deadline passed", o.deadline))
	defer cancel()
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if err := runDemo(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cluster demo: %v\n", err)
		return 1
	}
	return 0
}

// defaultVMM is the vmm beside this binary (make builds both into build/),
// else build/vmm.
func defaultVMM() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "vmm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "build/vmm"
}

// printer writes the demo's lines, each with the host clock's time and
// the time since t0 once it is set.
type printer struct {
	w  io.Writer
	mu sync.Mutex
	t0 time.Time
}

func (p *printer) at(ns int64, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := time.Unix(0, ns)
	rel := "          "
	if !p.t0.IsZero() {
		rel = fmt.Sprintf("%+9.3fms", float64(t.Sub(p.t0))/1e6)
	}
	fmt.Fprintf(p.w, "%s %s  %s\n", t.Format("15:04:05.000000"), rel, fmt.Sprintf(format, args...))
}

func (p *printer) now(format string, args ...any) { p.at(time.Now().UnixNano(), format, args...) }

func runDemo(ctx context.Context, o demoOpts, w io.Writer) error {
	pr := &printer{w: w}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tracevisor-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cl, err := vmmnode.New(vmmnode.Config{VMM: o.vmm, Dir: dir, Nodes: []string{"vm1", "vm2"}, Golden: o.golden, KeepCores: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := cl.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster demo: cleaning up: %v\n", err)
		}
	}()
	pr.now("booting vm1 (active) and vm2 (standby): vmm guests with busybox httpd in namespace %s", cl.Namespace().Name())
	boot := time.Now()
	if err := cl.Start(ctx); err != nil {
		return err
	}
	pr.now("both serve (%.1fs); service address %s → vm1 (route via %s)", time.Since(boot).Seconds(),
		cl.Service(), cl.Node("vm1").Addrs.Link)

	timelines := make(chan failover.Timeline, 4)
	var journal bytes.Buffer
	var jw io.Writer = &lockedWriter{w: &journal}
	if o.journal {
		jw = &lockedWriter{w: w}
	}
	det := &failover.ProbeDetector{Rules: failover.DefaultRules("httpd"), Sources: cl.Sources()}
	acts := &heldRecovery{Cluster: cl, release: make(chan struct{})}
	releaseOnce := sync.OnceFunc(func() { close(acts.release) })
	defer releaseOnce()
	m, err := failover.NewManager(failover.Config{Nodes: cl.Nodes(), Actions: acts, AwaitServing: cl.AwaitServing,
		Journal: failover.NewJournal(jw), OnTimeline: func(tl failover.Timeline) { timelines <- tl },
		Log: os.Stderr})
	if err != nil {
		return err
	}
	defer m.Close()
	hb := &failover.Heartbeat{Targets: cl.HeartbeatTargets(), Period: o.period}
	hbOut := make(chan failover.Verdict, 16)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Add(2)
	go func() { defer wg.Done(); m.Run(rctx, det) }()
	go func() { defer wg.Done(); hb.Run(rctx, hbOut) }()

	// The probe streams are open once an event reaches the detector: a
	// SIGUSR1 to the guest's sleep (unwatched; its loop starts another).
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		before := det.Stats().Events
		cl.Inject(ctx, "vm1", api.Injection{Kind: "signal", Comm: "sleep", Signal: 10})
		time.Sleep(100 * time.Millisecond)
		return det.Stats().Events > before
	}); err != nil {
		return fmt.Errorf("the probe detector never saw vm1's events: %w", err)
	}
	poll := cl.Client().Poll(cl.Service().String(), o.poll, o.reqTimeout)
	defer poll.Stop()
	waitUntil(ctx, time.Minute, func() bool { return poll.Outage().First != "" })
	if first := poll.Outage().First; first != "vm1" {
		return fmt.Errorf("the client's first answer came from %q, not vm1: %+v", first, poll.Outage())
	}
	pr.now("client polling http://%s/ every %v from the namespace: answered by vm1", cl.Service(), o.poll)
	poll.Reset() // a slow first answer (a loaded host) is no outage
	time.Sleep(4 * o.poll)

	killed := time.Now()
	pr.mu.Lock()
	pr.t0 = killed
	pr.mu.Unlock()
	pr.at(killed.UnixNano(), "inject: SIGKILL to httpd in vm1 (vmm inject --api %s signal httpd KILL)", cl.Node("vm1").Sock)
	// The guest's driver answers after it sent the signal; the fence may
	// come first and the answer never: do not wait for it.
	go func() {
		ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
		defer icancel()
		cl.Inject(ictx, "vm1", api.Injection{Kind: "signal", Comm: "httpd", Signal: 9})
	}()
	var tl failover.Timeline
	select {
	case tl = <-timelines:
	case <-time.After(time.Minute):
		return fmt.Errorf("no failover within a minute of the kill; manager %+v", m.Stats())
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	// The client's request in flight at the kill is lost (its timeout
	// ends it); the ones after reach the standby.
	waitUntil(ctx, time.Minute, func() bool { return poll.Outage().Last == tl.To })
	out := poll.Stop()
	// The failover's stages, in the order they happened on the host clock.
	type line struct {
		ns   int64
		text string
	}
	var lines []line
	ev := func(ns int64, format string, args ...any) {
		if ns != 0 {
			lines = append(lines, line{ns, fmt.Sprintf(format, args...)})
		}
	}
	c := tl.Cause
	ev(c.HostNS, "probe event: %s probe, sig %s to %s[%d] by %s (guest kvmclock %d ns, mapped to the host clock)",
		c.Probe, failover.SignalName(c.Sig), c.Comm, c.PID, c.Sender, c.GuestNS)
	ev(tl.DetectedNS, "verdict (%s detector): %s failure of %s: %s", tl.Detector, tl.Kind, tl.Node, c)
	ev(tl.FencedNS, "fenced %s: its vmm stopped every vCPU (vmm api fence)", tl.Node)
	ev(tl.MovedNS, "service address %s moved to %s (one netlink route replace)", cl.Service(), tl.To)
	if tl.ServingNS != 0 {
		ev(tl.ServingNS, "first answer from %s on the service address", tl.To)
	}
	if !out.FirstFailed.IsZero() {
		ev(out.FirstFailed.UnixNano(), "client: first failed request (%s)", out.FirstErr)
	}
	if !out.FirstOK.IsZero() {
		ev(out.FirstOK.UnixNano(), "client: first successful request after it, answered by %s", out.FirstOKBy)
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].ns < lines[j].ns })
	for _, l := range lines {
		pr.at(l.ns, "%s", l.text)
	}
	if tl.Err != "" || tl.Down || tl.To == "" {
		return fmt.Errorf("the failover did not complete: %+v", tl)
	}
	fmt.Fprintf(w, "\nclient: %d requests, %d failed, outage %v (first failed → first answered), last answer from %s\n",
		out.Requests, out.Failed, out.Duration().Round(time.Microsecond), out.Last)
	if d, ok := tl.DetectionTime(); ok {
		fmt.Fprintf(w, "probe detection: %v after the kill in the guest\n", d.Round(time.Microsecond))
	}
	if d, ok := tl.ServingTime(); ok {
		fmt.Fprintf(w, "failure → standby serving: %v\n", d.Round(time.Microsecond))
	}

	// The same failure as the heartbeat saw it: its first verdict for vm1.
	fmt.Fprintf(w, "\nwaiting for the %v heartbeat (measure only) to see vm1's failure...\n", o.period)
	hbWait := time.NewTimer(2*o.period + 5*time.Second)
	defer hbWait.Stop()
	var hv failover.Verdict
wait:
	for {
		select {
		case v := <-hbOut:
			if v.Node == "vm1" && v.DetectedNS > killed.UnixNano() {
				hv = v
				break wait
			}
		case <-hbWait.C:
			break wait
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	releaseOnce() // vm1's recovery may begin: the heartbeat has had its time
	if hv.Node == "" {
		fmt.Fprintf(w, "heartbeat: no verdict for vm1 within %v\n", 2*o.period+5*time.Second)
	} else {
		pr.at(hv.DetectedNS, "heartbeat verdict: %s", hv)
		from := tl.FailureNS
		if from == 0 {
			from = killed.UnixNano()
		}
		hd := time.Duration(hv.DetectedNS - from)
		fmt.Fprintf(w, "heartbeat detection: %v after the failure", hd.Round(time.Millisecond))
		if d, ok := tl.DetectionTime(); ok && d > 0 {
			fmt.Fprintf(w, " (%.0f× the probe's %v)", float64(hd)/float64(d), d.Round(time.Microsecond))
		}
		fmt.Fprintln(w)
	}

	if o.recover {
		how := "rebooted"
		if o.golden {
			how = "restored from its golden snapshot"
		}
		fmt.Fprintf(w, "\nwaiting for vm1 to be %s and rejoin as the standby...\n", how)
		if err := waitUntil(ctx, 5*time.Minute, func() bool {
			s, _ := m.State("vm1")
			return s == failover.Standby
		}); err != nil {
			return fmt.Errorf("vm1 did not rejoin: %w; states %v", err, m.Status().Nodes)
		}
		how = "booted afresh"
		if restored, _ := cl.Node("vm1").Restored(); restored {
			how = "restored from its golden snapshot"
		} else if err := cl.Node("vm1").RestoreErr(); err != nil {
			how = fmt.Sprintf("booted afresh: its golden snapshot did not restore: %v", err)
		}
		pr.now("vm1 rejoined as the standby (%s, %v after its recovery began); active: %s", how,
			acts.took().Round(time.Millisecond), m.Status().Active)
		if cores := cl.Node("vm1").Cores(); len(cores) > 0 && o.dir != "" {
			fmt.Fprintf(w, "vm1's failed guest was kept for a post-mortem: gdb build/guest-kernel/vmlinux %s\n", cores[len(cores)-1])
		} else if len(cores) > 0 {
			fmt.Fprintf(w, "vm1's failed guest was kept as an ELF core (removed with the demo's files; --dir DIR keeps them)\n")
		} else if err := cl.Node("vm1").CoreErr(); err != nil {
			fmt.Fprintf(w, "vm1's failed guest could not be kept: %v\n", err)
		}
	}
	fmt.Fprintf(w, "\nmanager: %+v\n", m.Stats())
	return nil
}

// heldRecovery is the cluster as the demo's failover.Actions, its Recover
// held until release closes: a failed node restored from its golden
// snapshot is back within a second, before the measuring heartbeat's
// period, which would then never see it fail. It records how long the
// recovery itself took.
type heldRecovery struct {
	*vmmnode.Cluster
	release chan struct{}

	mu          sync.Mutex
	began, done time.Time
}

func (h *heldRecovery) Recover(ctx context.Context, node string, why failover.Kind) error {
	select {
	case <-h.release:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	h.mu.Lock()
	h.began = time.Now()
	h.mu.Unlock()
	err := h.Cluster.Recover(ctx, node, why)
	h.mu.Lock()
	h.done = time.Now()
	h.mu.Unlock()
	return err
}

// took is how long the last recovery took (0 before one ended).
func (h *heldRecovery) took() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done.Before(h.began) {
		return 0
	}
	return h.done.Sub(h.began)
}

// hostCanRun says why this host cannot run a cluster: the namespaces and
// tap links need root, the guests /dev/kvm.
func hostCanRun() error {
	if why := netns.Unusable(); why != "" {
		return fmt.Errorf("cannot run here: %s.\nA cluster needs root for its network namespace and tap links (make test and make demo run as root)", why)
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return fmt.Errorf("/dev/kvm: %w", err)
	}
	return nil
}

// lockedWriter serialises writes from the manager's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
