package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/netns"
	"github.com/tracevisor/tracevisor/internal/testenv"
	"github.com/tracevisor/tracevisor/probe"
	vmmpkg "github.com/tracevisor/tracevisor/vmm"
)

// noRecover is the cluster's Actions without recovery: a recovery would
// boot a third guest, and the test wants the fenced node left as it is,
// to ask its vmm and its address. Recover waits for the manager's Close.
type noRecover struct{ *vmmnode.Cluster }

func (noRecover) Recover(ctx context.Context, _ string, _ failover.Kind) error {
	<-ctx.Done()
	return ctx.Err()
}

// eventSeen waits (up to d) for an event in a node's events file that
// match accepts.
func eventSeen(t *testing.T, path string, d time.Duration, match func(probe.Event) bool) probe.Event {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var e probe.Event
				if json.Unmarshal(sc.Bytes(), &e) == nil && match(e) {
					f.Close()
					return e
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching event in %s within %v", path, d)
		}
	}
}

// diagnose logs what each node's address and the service address answer
// now, and where the service route points.
func diagnose(t *testing.T, cl *vmmnode.Cluster) {
	ctx := context.Background()
	for _, n := range cl.Nodes() {
		by, err := cl.Client().Get(ctx, cl.Node(n).Addrs.Guest.Addr().String(), 5*time.Second)
		st, serr := cl.MachineStatus(ctx, n)
		t.Logf("%s's own address: %q, %v; its machine: %+v, %v", n, by, err, st, serr)
	}
	by, err := cl.Client().Get(ctx, cl.Service().String(), 5*time.Second)
	cur, cerr := cl.CurrentNode()
	t.Logf("service address: %q, %v; route to %s (%v)", by, err, cur, cerr)
	if out, err := exec.Command("ip", "-n", cl.Namespace().Name(), "neigh").CombinedOutput(); err == nil {
		t.Logf("neighbours:\n%s", out)
	}
}

// runManager runs m on dets until the test ends, then stops it (within a
// minute) and closes it.
func runManager(t *testing.T, ctx context.Context, m *failover.Manager, dets ...failover.Detector) {
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- m.Run(rctx, dets...) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-ran:
		case <-time.After(time.Minute):
			t.Error("the manager did not stop in a minute")
		}
		m.Close()
	})
}

// logStarted logs how long the cluster's Start took and which nodes it
// restored from the package's shared golden store (another test's
// cluster booted them) rather than booted.
func logStarted(t *testing.T, cl *vmmnode.Cluster, start time.Time) {
	t.Helper()
	var how []string
	for _, n := range cl.Nodes() {
		if restored, _ := cl.Node(n).Restored(); restored {
			how = append(how, n+" restored")
		} else {
			how = append(how, n+" booted")
		}
	}
	t.Logf("both nodes serve after %.1fs (%s)", time.Since(start).Seconds(), strings.Join(how, ", "))
}

// errNotYet: what is awaited has not happened yet.
var errNotYet = errors.New("not yet")

// signalTo matches the signal event of sig sent to a task named comm.
func signalTo(comm string, sig uint64) func(probe.Event) bool {
	return func(e probe.Event) bool {
		return e.Class == "signal" && e.Comm == comm && e.Fields["sig"] == sig
	}
}

// Two real guests, each with httpd, in one cluster namespace; the probe
// detector decides. An unwatched process killed and a harmless signal to
// httpd cause no failover; httpd killed in the active fails the service
// over to the standby, which then serves on the service address, and the
// fenced node never answers again; a panic of the new active with no
// standby left (the fenced node is never recovered here) reports the
// service down and moves nothing.
func TestFailover(t *testing.T) {
	t.Parallel()
	bin := need(t)
	if why := netns.Unusable(); why != "" {
		testenv.Missing(t, testenv.Netns, "the failover test needs a network namespace and tap links: %s", why)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Missing(t, testenv.Netns, "the ip command is absent")
	}
	// The nodes boot as TestFailoverRecovers's do: whichever test comes
	// second starts from the other's golden snapshots.
	cl, err := vmmnode.New(vmmnode.Config{VMM: bin, Env: []string{"TRACEVISOR_BUILD=" + buildDir},
		Dir: t.TempDir(), Nodes: []string{"vm1", "vm2"}, Mem: vmmnode.HogMem, GoldenDir: goldenDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Errorf("close the cluster: %v", err)
		}
		for _, n := range cl.Nodes() {
			if b, err := os.ReadFile(cl.Node(n).Log()); err == nil {
				t.Logf("%s output:\n%s", n, b)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	logStarted(t, cl, start)
	svc := cl.Service().String()
	c := cl.Client()
	if by, err := c.Get(ctx, svc, 5*time.Second); err != nil || by != "vm1" {
		t.Fatalf("the service address before any failure: %q, %v; want vm1", by, err)
	}

	timelines := make(chan failover.Timeline, 4)
	det := &failover.ProbeDetector{Rules: failover.DefaultRules("httpd"), Sources: cl.Sources()}
	m, err := failover.NewManager(failover.Config{Nodes: cl.Nodes(), Actions: noRecover{cl},
		AwaitServing: cl.AwaitServing, RecoverTimeout: time.Minute, ActionTimeout: 30 * time.Second,
		OnTimeline: func(tl failover.Timeline) { timelines <- tl }})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, ctx, m, det)
	// The detector's streams are open once a harmless event reaches it.
	retryFor(t, "the detector to see vm1's events", func() error {
		before := det.Stats().Events
		// SIGUSR1 ends the guest's sleep (its loop starts another).
		if err := cl.Inject(ctx, "vm1", api.Injection{Kind: "signal", Comm: "sleep", Signal: 10}); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		if det.Stats().Events == before {
			return errNotYet
		}
		return nil
	})

	// noFailover injects ins in order, waits until the event seen
	// accepts reached the detector, and checks that nothing moved.
	noFailover := func(t *testing.T, ins []api.Injection, seen func(probe.Event) bool) {
		mark := time.Now().UnixNano()
		for _, in := range ins {
			// retried: the loop's sleep may be between two lives (ESRCH).
			retryFor(t, "inject", func() error { return cl.Inject(ctx, "vm1", in) })
		}
		e := eventSeen(t, cl.Node("vm1").Events(), 30*time.Second, func(e probe.Event) bool {
			return e.ReceivedNS >= mark && seen(e)
		})
		time.Sleep(time.Second) // the detector had it within milliseconds of the file
		if s := m.Stats(); s.Verdicts != 0 || s.Failovers != 0 {
			t.Fatalf("after %s: the manager had verdicts: %+v", e.Class, s)
		}
		if st := m.Status(); st.Active != "vm1" {
			t.Fatalf("after the event: active is %q, want vm1", st.Active)
		}
		if by, err := c.Get(ctx, svc, 5*time.Second); err != nil || by != "vm1" {
			t.Fatalf("the service address after the event: %q, %v; want vm1", by, err)
		}
	}
	t.Run("unwatched process killed", func(t *testing.T) {
		noFailover(t, []api.Injection{{Kind: "signal", Comm: "sleep", Signal: 9}}, signalTo("sleep", 9))
	})
	t.Run("harmless signal to httpd", func(t *testing.T) {
		// SIGHUP: fatal by default but commonly caught, so the rules
		// call it harmless; busybox httpd catches it to re-read its
		// configuration and lives on.
		noFailover(t, []api.Injection{{Kind: "signal", Comm: "httpd", Signal: 1}}, signalTo("httpd", 1))
	})

	t.Run("httpd killed", func(t *testing.T) {
		poll := c.Poll(svc, 50*time.Millisecond, 2*time.Second)
		for deadline := time.Now().Add(10 * time.Second); poll.Outage().First == ""; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				o := poll.Stop()
				diagnose(t, cl)
				t.Fatalf("the client got no answer in 10 s before the kill: %+v", o)
			}
		}
		if o := poll.Outage(); o.First != "vm1" {
			t.Fatalf("before the kill the client saw %+v; want vm1", o)
		}
		// From here on: a slow first answer (a loaded host) is no outage.
		poll.Reset()
		time.Sleep(200 * time.Millisecond)
		killed := time.Now()
		// The guest's driver answers after it sent the signal; the fence
		// may come first and the answer never: do not wait for it.
		injected := make(chan error, 1)
		go func() {
			ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
			defer icancel()
			injected <- cl.Inject(ictx, "vm1", api.Injection{Kind: "signal", Comm: "httpd", Signal: 9})
		}()
		defer func() { t.Logf("inject KILL: %v (an error: the fence beat the driver's answer)", <-injected) }()
		var tl failover.Timeline
		select {
		case tl = <-timelines:
		case <-time.After(time.Minute):
			t.Fatalf("no complete failover within a minute of the kill; stats %+v", m.Stats())
		}
		// The client's request in flight at the kill is lost (its
		// timeout ends it); the ones after reach vm2.
		for deadline := time.Now().Add(10 * time.Second); poll.Outage().Last != "vm2"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				o := poll.Stop()
				diagnose(t, cl)
				t.Fatalf("the client got no answer in 10 s after the failover: %+v", o)
			}
		}
		o := poll.Stop()
		t.Logf("timeline %+v", tl)
		t.Logf("client: %+v, outage %v", o, o.Duration())
		if tl.Node != "vm1" || tl.To != "vm2" || tl.Err != "" || tl.Down {
			t.Fatalf("want vm1 → vm2 without error: %+v", tl)
		}
		if tl.Cause.Rule != "signal" || tl.Cause.Comm != "httpd" || tl.Cause.Sig != 9 {
			t.Errorf("want the SIGKILL to httpd as the cause: %+v", tl.Cause)
		}
		stages := []struct {
			name string
			ns   int64
		}{{"failure", tl.FailureNS}, {"detected", tl.DetectedNS}, {"fenced", tl.FencedNS},
			{"moved", tl.MovedNS}, {"serving", tl.ServingNS}}
		for i := 1; i < len(stages); i++ {
			if stages[i-1].ns == 0 || stages[i].ns <= stages[i-1].ns {
				t.Errorf("want %s (%d) before %s (%d)", stages[i-1].name, stages[i-1].ns, stages[i].name, stages[i].ns)
			}
		}
		if tl.FailureNS < killed.Add(-time.Second).UnixNano() {
			t.Errorf("failure time %d is before the kill was injected (%d)", tl.FailureNS, killed.UnixNano())
		}
		if d := time.Duration(tl.ServingNS - killed.UnixNano()); d > 20*time.Second {
			t.Errorf("the standby served %v after the kill; want well under 20 s", d)
		}
		st, err := cl.MachineStatus(ctx, "vm1")
		if err != nil || st.State != vmmpkg.StateFenced {
			t.Fatalf("vm1's vmm after the failover: %+v, %v; want fenced", st, err)
		}
		if by, err := c.Get(ctx, cl.Node("vm1").Addrs.Guest.Addr().String(), 2*time.Second); err == nil {
			t.Errorf("the fenced vm1 still answers on its own address: %q", by)
		}
		for i := 0; i < 10; i++ {
			if by, err := c.Get(ctx, svc, 5*time.Second); err != nil || by != "vm2" {
				t.Fatalf("the service address after the failover: %q, %v; want vm2", by, err)
			}
		}
		if o.Last != "vm2" || (o.Failed != 0 && o.FirstOKBy != "vm2") {
			t.Errorf("the client saw last %q, first after the failure %q; want vm2: %+v", o.Last, o.FirstOKBy, o)
		}
		if s := m.Stats(); s.Failovers != 1 {
			t.Errorf("want exactly one failover: %+v", s)
		}
	})

	// vm1 is fenced and never recovers (noRecover): vm2, the active, has
	// no standby left.
	t.Run("no standby left: service down", func(t *testing.T) {
		if st := m.Status(); st.Active != "vm2" || st.Nodes["vm1"] != failover.Recovering {
			t.Fatalf("needs vm2 active and vm1 out: %+v", st)
		}
		// The fence may come before the driver's answer, and that never.
		injected := make(chan error, 1)
		go func() {
			ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
			defer icancel()
			injected <- cl.Inject(ictx, "vm2", api.Injection{Kind: "panic"})
		}()
		defer func() { t.Logf("inject panic: %v (an error: the fence beat the driver's answer)", <-injected) }()
		var tl failover.Timeline
		select {
		case tl = <-timelines:
		case <-time.After(time.Minute):
			t.Fatalf("no complete timeline within a minute of the panic; stats %+v", m.Stats())
		}
		t.Logf("timeline %+v", tl)
		if tl.Node != "vm2" || !tl.Down || tl.To != "" || tl.MovedNS != 0 {
			t.Fatalf("want vm2's failure to leave the service down, moved nowhere: %+v", tl)
		}
		if tl.Kind != failover.VMFailure || tl.Cause.Rule != "panic" || tl.FencedNS == 0 || tl.Err != "" {
			t.Errorf("want vm2 fenced on the panic rule's VM failure, without error: %+v", tl)
		}
		// No failover loop: nothing more happens.
		time.Sleep(2 * time.Second)
		s := m.Stats()
		if s.Down != 1 || s.Failovers != 1 || s.MoveFailures != 0 {
			t.Errorf("want the service down once and no second failover or move: %+v", s)
		}
		if st := m.Status(); st.Active != "" || st.Nodes["vm2"] != failover.Recovering {
			t.Errorf("want no active node and vm2 out: %+v", st)
		}
		if tls := m.Timelines(); len(tls) != 2 {
			t.Errorf("want two failovers recorded, no more: %+v", tls)
		}
		// The address was not moved: its route still points at vm2's
		// link, where nothing answers any more.
		if cur, err := cl.CurrentNode(); err != nil || cur != "vm2" {
			t.Errorf("the service route points at %q, %v; want vm2 still", cur, err)
		}
		st, err := cl.MachineStatus(ctx, "vm2")
		if err != nil || st.State != vmmpkg.StateFenced {
			t.Fatalf("vm2's vmm after its failure: %+v, %v; want fenced", st, err)
		}
		if by, err := c.Get(ctx, svc, 2*time.Second); err == nil {
			t.Errorf("the service address still answers with its only healthy node fenced: %q", by)
		}
	})
}
