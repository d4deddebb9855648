package tests

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover/netaddr"
	"github.com/tracevisor/tracevisor/failover/pcmk"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/pcmklab"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// pcmkLab is the seed's two-host layout through Pacemaker: two nodes,
// cluster 1 (vm1: the 10 s monitor alone finds failures) and cluster 2
// (vm2: the fast path tells Pacemaker on the event), each a promotable
// clone with one VM per node and its service address.
type pcmkLab struct {
	t        *testing.T
	lab      *pcmklab.Lab
	state    string
	clusters []pcmklab.VMCluster
	client   *vmmnode.Client
}

// agentsDir lays out the agents the lab's nodes (and ocf-tester) see.
func agentsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := pcmklab.LinkAgents(dir, filepath.Join(buildDir, "tvpcmk")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newPcmkLab(t *testing.T, ctx context.Context, vmm string) *pcmkLab {
	t.Helper()
	if why := pcmklab.Unusable(); why != "" {
		testenv.Missing(t, testenv.Pacemaker, "the Pacemaker tests need %s", why)
	}
	dir := t.TempDir()
	p := &pcmkLab{t: t, state: filepath.Join(dir, "tracevisor")}
	os.MkdirAll(p.state, 0o755) // the fence devices' monitor reads it before any VM started
	cfg := pcmklab.Properties + pcmklab.FenceCRM([]string{"n1", "n2"}, p.state)
	for k, fast := range []string{"false", "true"} {
		c := pcmklab.VMCluster{Index: k + 1, Params: map[string]string{
			"vmm": vmm, "state_dir": p.state, "mem": vmmnode.HogMem, "fast_path": fast}}
		p.clusters = append(p.clusters, c)
		cfg += c.CRM()
	}
	lab, err := pcmklab.New(ctx, pcmklab.Config{Dir: dir, CIB: cfg, Agents: agentsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.lab = lab
	t.Cleanup(func() {
		if t.Failed() {
			p.diagnose()
		}
		if err := lab.Close(); err != nil {
			t.Errorf("close the lab: %v", err)
		}
	})
	sw, err := netaddr.Open(lab.Switch())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	p.client = vmmnode.NewClient(sw)
	return p
}

// diagnose logs what a failed test needs: crm_mon, each VM's state files.
func (p *pcmkLab) diagnose() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range p.lab.Nodes() {
		out, err := n.Output(ctx, "crm_mon", "-1", "-A", "-f", "-r")
		p.t.Logf("crm_mon on %s (%v):\n%s", n.Name, err, out)
	}
	filepath.Walk(p.state, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && (strings.HasSuffix(path, ".log") || strings.HasSuffix(path, ".json")) {
			b, _ := os.ReadFile(path)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			p.t.Logf("%s:\n%s", path, b)
		}
		return nil
	})
}

// promoted returns the node holding cluster c promoted, waiting until one
// does (on want, if want is not "") and the client gets its answer on the
// service address.
func (p *pcmkLab) promoted(t *testing.T, ctx context.Context, c pcmklab.VMCluster, want string, d time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	s, err := p.lab.Await(ctx, c.Clone()+" promoted with "+c.IP(), func(s pcmklab.Status) bool {
		on := c.PromotedOn(s)
		return on != "" && (want == "" || on == want)
	})
	if err != nil {
		t.Fatal(err)
	}
	node := c.PromotedOn(s)
	answer := c.Name() + "@" + node
	if _, err := p.client.AwaitAnswer(ctx, c.Service().String(), answer, 250*time.Millisecond, 5*time.Second); err != nil {
		t.Fatalf("%s promoted on %s, but the client never got %q from %v: %v", c.Name(), node, answer, c.Service(), err)
	}
	return node
}

// bothRun waits until cluster c runs on both nodes, one promoted.
func (p *pcmkLab) bothRun(t *testing.T, ctx context.Context, c pcmklab.VMCluster, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := p.lab.Await(ctx, c.Name()+" on both nodes", c.Protected); err != nil {
		t.Fatal(err)
	}
}

// lastStart is the last start in s's agent.log; its Reason is what the
// agent said while it started the VM (a golden restore says so).
func lastStart(s pcmk.State) (pcmk.Action, bool) {
	acts := s.Actions()
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].Action == "start" {
			return acts[i], true
		}
	}
	return pcmk.Action{}, false
}

// checkRestored fails t unless the last start of cluster c's VM on node
// restored its golden snapshot (the agent's golden parameter is on by
// default): a recovery that pays a boot is a regression.
func (p *pcmkLab) checkRestored(t *testing.T, c pcmklab.VMCluster, node string) {
	t.Helper()
	if a, ok := lastStart(p.vmState(c, node)); !ok || a.Code != pcmk.Success || !strings.Contains(a.Reason, "restored the golden snapshot") {
		t.Errorf("%s on %s: its last start %+v did not restore its golden snapshot", c.Name(), node, a)
	}
}

// vmState is the state directory of cluster c's VM on node.
func (p *pcmkLab) vmState(c pcmklab.VMCluster, node string) pcmk.State {
	return pcmk.StateFor(p.state, node, c.Name())
}

// TestPacemaker runs the seed's two failures through a real two-node
// Pacemaker cluster: cluster 1 left to its 10 s monitor, cluster 2 with
// the fast path, both on the same nodes, then the loss of a whole node.
// It is not parallel: four guests and two cluster stacks fill this
// host's two cores by themselves.
func TestPacemaker(t *testing.T) {
	bin := need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	p := newPcmkLab(t, ctx, bin)
	start := time.Now()
	if err := p.lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("both nodes online after %.1fs", time.Since(start).Seconds())
	c2 := p.clusters[1]
	for _, c := range p.clusters {
		p.bothRun(t, ctx, c, 8*time.Minute)
		t.Logf("%s serves from %s after %.1fs", c.Name(), p.promoted(t, ctx, c, "", time.Minute), time.Since(start).Seconds())
	}

	t.Run("unwatched kill: no failover", func(t *testing.T) {
		node := p.promoted(t, ctx, c2, "", time.Minute)
		s := p.vmState(c2, node)
		// The guest's script may be between its sleeps (it starts the
		// keep-alive loop's a moment after httpd serves): retry.
		retryFor(t, "inject KILL into the guest's sleep", func() error {
			_, err := api.Call(s.Sock(), api.Request{Op: api.OpInject,
				Inject: &api.Injection{Kind: "signal", Comm: "sleep", Signal: 9}})
			return err
		})
		time.Sleep(15 * time.Second) // more than a monitor interval
		if v, ok := s.Verdict(); ok {
			t.Fatalf("a kill of sleep gave a verdict: %v", v)
		}
		if now := p.promoted(t, ctx, c2, "", 10*time.Second); now != node {
			t.Fatalf("%s moved from %s to %s on a kill of an unwatched process", c2.Name(), node, now)
		}
	})

	// failure kills or hogs the promoted VM of both clusters at once and
	// checks each fails over: the fast path one at once, the monitor one
	// by the next monitor.
	failure := func(t *testing.T, in api.Injection, within time.Duration) {
		nodes := map[string]string{}
		polls := map[string]*vmmnode.Poller{}
		for _, c := range p.clusters {
			nodes[c.Name()] = p.promoted(t, ctx, c, "", time.Minute)
			polls[c.Name()] = p.client.PollN(c.Service().String(), 250*time.Millisecond, 5*time.Second, 1)
		}
		injected := time.Now()
		var wg sync.WaitGroup
		for _, c := range p.clusters {
			wg.Add(1)
			go func() { // both at once, as the paper's two clusters
				defer wg.Done()
				ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				// The VMM may fence on the event before it answers.
				if _, err := api.CallContext(ictx, p.vmState(c, nodes[c.Name()]).Sock(), api.Request{Op: api.OpInject, Inject: &in}); err != nil {
					t.Logf("inject into %s: %v", c.Name(), err)
				}
			}()
		}
		wg.Wait()
		for _, c := range p.clusters {
			from := nodes[c.Name()]
			want := c.Name() + "@" + p.lab.Peer(from)
			deadline := time.Now().Add(within)
			for polls[c.Name()].Outage().Last != want {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the client never got %q within %v of the failure (outage so far %+v)", c.Name(), want, within, polls[c.Name()].Outage())
				}
				time.Sleep(100 * time.Millisecond)
			}
			o := polls[c.Name()].Stop()
			t.Logf("%s: failed over %s → %s within %.2fs of the injection; client outage %v, %d failed requests",
				c.Name(), from, p.lab.Peer(from), time.Since(injected).Seconds(), o.Duration(), o.Failed)
			steps := p.vmState(c, from).Steps(injected.UnixNano())
			told := false
			for _, s := range steps {
				told = told || s.Step == "told-pacemaker"
			}
			if fast := c.Params["fast_path"] == "true"; told != fast {
				t.Errorf("%s: fast path told Pacemaker: %v, want %v (journal %+v)", c.Name(), told, fast, steps)
			}
		}
		for _, c := range p.clusters {
			p.bothRun(t, ctx, c, 6*time.Minute) // re-protected: the failed VM is back, unpromoted
			p.checkRestored(t, c, nodes[c.Name()])
			if now := p.promoted(t, ctx, c, "", time.Minute); now != p.lab.Peer(nodes[c.Name()]) {
				t.Errorf("%s: promoted on %s after its recovery, want %s (no fail-back without a failure)", c.Name(), now, p.lab.Peer(nodes[c.Name()]))
			}
		}
	}
	t.Run("signal", func(t *testing.T) {
		failure(t, api.Injection{Kind: "signal", Comm: "httpd", Signal: 9}, 2*time.Minute)
	})
	t.Run("oom", func(t *testing.T) {
		failure(t, api.Injection{Kind: "signal", Comm: vmmnode.HogTrigger, Signal: 15}, 4*time.Minute)
	})

	t.Run("node loss", func(t *testing.T) {
		lost := p.promoted(t, ctx, c2, "", time.Minute)
		survivor := p.lab.Peer(lost)
		if err := p.lab.Node(lost).Kill(ctx); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		for _, c := range p.clusters {
			p.promoted(t, ctx, c, survivor, 2*time.Minute)
		}
		t.Logf("both clusters serve from %s %.2fs after %s was killed", survivor, time.Since(killed).Seconds(), lost)
		out, err := p.lab.Node(survivor).Output(ctx, "stonith_admin", "--history", lost, "--output-as=xml")
		if err != nil || !strings.Contains(string(out), `status="success"`) {
			t.Errorf("no successful fencing of %s in the history (%v):\n%s", lost, err, out)
		}
		for _, c := range p.clusters {
			on, _ := pcmk.PlugOn(ctx, p.state, lost+"/"+c.Name())
			if on {
				t.Errorf("%s's %s still runs after the fence", lost, c.Name())
			}
		}
		if err := p.lab.Node(lost).Revive(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range p.clusters {
			p.bothRun(t, ctx, c, 6*time.Minute)
			p.checkRestored(t, c, lost) // its golden snapshot outlived the node
		}
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}
