package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tracevisor/tracevisor/failover/netaddr"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/pcmklab"
)

// pcmkOpts are `cluster bench-pacemaker`'s flags.
type pcmkOpts struct {
	vmm, tvpcmk string
	n           int
	out         string
	failures    []string
	within      time.Duration
	settle      time.Duration
	poll        time.Duration
	reqTimeout  time.Duration
	mem         string
}

// failNode is bench-pacemaker's third failure: a whole node lost.
const failNode = "node"

const pcmkUsage = `Usage: cluster bench-pacemaker [flags]

The seed paper's Tables 1 and 2 again, measured through a real two-node
Pacemaker + Corosync cluster on this host (each node a network, mount and
UTS namespace of its own; the paper's two hosts). Each node runs two VMs,
one of each cluster, as a promotable clone of ocf:tracevisor:vm with
ocf:heartbeat:IPaddr2 on the promoted one's node:

  cluster 1 (vm1)  Pacemaker's 10 s monitor alone finds the failure (the
                   VMM fences its guest on the probe event; the monitor
                   reports the standing verdict)
  cluster 2 (vm2)  the fast path: on the event the node's tracevisor side
                   tells Pacemaker at once (crm_resource --fail)

Each of the -n runs causes each failure in both clusters' promoted VM at
once: (signal) httpd killed by SIGKILL; (oom) a memory hog drives the guest
into OOM; (node) the node holding cluster 2 promoted is killed whole
(corosync's token, then fence_tracevisor). A run ends when the client gets
its answers from the standby and the failed VM is back as the unpromoted
one. Prints per failure when Pacemaker knew of it and when the service
answered again from the standby (mean, p50, p99, max; "—" where not within
--within), the client's outage, the ratio monitor / fast path, and whether
each failure raised the fail-count by one and restarted the VM once;
writes OUT/pacemaker.csv, OUT/tables.txt and OUT/pacemaker-cdf.png; each
node's logs and each VM's state stay in OUT/lab. Needs root, /dev/kvm,
pacemaker, corosync, crmsh and resource-agents. Ctrl-C reports the runs so
far.

Flags:
`

func benchPacemaker(args []string) int {
	var o pcmkOpts
	fs := pflag.NewFlagSet("cluster bench-pacemaker", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, pcmkUsage+fs.FlagUsages()) }
	fs.StringVar(&o.vmm, "vmm", defaultVMM(), "the vmm binary")
	fs.StringVar(&o.tvpcmk, "tvpcmk", "", "the tvpcmk binary, the agents (default: next to --vmm)")
	fs.IntVarP(&o.n, "runs", "n", 10, "runs of each failure")
	fs.StringVar(&o.out, "out", "build/bench-pacemaker", "directory for pacemaker.csv, tables.txt, pacemaker-cdf.png and the lab")
	fs.StringSliceVar(&o.failures, "failures", []string{failSignal, failOOM, failNode}, "failures to cause: signal, oom, node")
	fs.DurationVar(&o.within, "within", 3*time.Minute, "a failure the service has not come back from this long after it never does (—); OOM adds its own wait")
	fs.DurationVar(&o.settle, "settle", 8*time.Minute, "how long a cluster may take to be protected again (a reboot) before the benchmark gives up")
	fs.DurationVar(&o.poll, "poll", time.Second, "the client's request interval on each service address (see cluster bench --help: a faster client saturates the promoted guest on an emulating host, and its monitor then fails a healthy VM)")
	fs.DurationVar(&o.reqTimeout, "request-timeout", 5*time.Second, "each client request's timeout (two are open at most: one lost with the failed VM holds a slot this long; shorter ones time out on a guest slowed by its neighbours' boots)")
	fs.StringVar(&o.mem, "mem", vmmnode.HogMem, "each guest's RAM")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.tvpcmk == "" {
		o.tvpcmk = filepath.Join(filepath.Dir(o.vmm), "tvpcmk")
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench-pacemaker: %v\n", err)
		return 2
	}
	if err := hostCanRun(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench-pacemaker: %v\n", err)
		return 1
	}
	if why := pcmklab.Unusable(); why != "" {
		fmt.Fprintf(os.Stderr, "cluster bench-pacemaker: %s\n", why)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runPcmkBench(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench-pacemaker: %v\n", err)
		return 1
	}
	return 0
}

// check refuses flags that cannot make a benchmark.
func (o *pcmkOpts) check() error {
	if o.n < 1 || o.n > 1000 {
		return fmt.Errorf("-n %d: want 1 to 1000 runs", o.n)
	}
	if err := checkFailures(o.failures, failSignal, failOOM, failNode); err != nil {
		return err
	}
	if err := checkPositive(durationFlag{"--within", o.within}, durationFlag{"--settle", o.settle},
		durationFlag{"--poll", o.poll}, durationFlag{"--request-timeout", o.reqTimeout}); err != nil {
		return err
	}
	for _, f := range []struct{ flag, path string }{{"--vmm", o.vmm}, {"--tvpcmk", o.tvpcmk}} {
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w (make builds it in build/)", f.flag, err)
		}
	}
	return nil
}

// pcmkBench is the running lab and what a run needs of it.
type pcmkBench struct {
	o        pcmkOpts
	lab      *pcmklab.Lab
	state    string
	clusters []pcmklab.VMCluster
	client   *vmmnode.Client
}

func runPcmkBench(ctx context.Context, o pcmkOpts, w io.Writer) error {
	// The agents get absolute paths: Pacemaker runs them from /.
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	o.out = out
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	labDir, evidence := filepath.Join(o.out, "lab"), filepath.Join(o.out, "evidence")
	for _, dir := range []string{labDir, evidence} {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	b := &pcmkBench{o: o, state: filepath.Join(labDir, "tracevisor")}
	if err := os.MkdirAll(b.state, 0o755); err != nil {
		return err
	}
	agents := filepath.Join(labDir, "agents")
	if err := pcmklab.LinkAgents(agents, o.tvpcmk); err != nil {
		return err
	}
	vmm, err := filepath.Abs(o.vmm)
	if err != nil {
		return err
	}
	cib := pcmklab.Properties + pcmklab.FenceCRM([]string{"n1", "n2"}, b.state)
	for k, fast := range []string{"false", "true"} {
		c := pcmklab.VMCluster{Index: k + 1, Params: map[string]string{"vmm": vmm, "state_dir": b.state, "mem": o.mem, "fast_path": fast}}
		b.clusters = append(b.clusters, c)
		cib += c.CRM()
	}
	fmt.Fprintf(w, "standing up a two-node Pacemaker cluster with 2 clusters of 2 VMs (%s each)...\n", o.mem)
	start := time.Now()
	b.lab, err = pcmklab.New(ctx, pcmklab.Config{Dir: labDir, CIB: cib, Agents: agents})
	if err != nil {
		return err
	}
	defer func() {
		if err := b.lab.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster bench-pacemaker: closing the lab: %v\n", err)
		}
	}()
	sw, err := netaddr.Open(b.lab.Switch())
	if err != nil {
		return err
	}
	defer sw.Close()
	b.client = vmmnode.NewClient(sw)
	if err := b.lab.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "nodes online (%.1fs); booting the VMs...\n", time.Since(start).Seconds())
	if err := b.protected(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "both clusters serve (%.0fs); %d runs of %s\n", time.Since(start).Seconds(), o.n, strings.Join(o.failures, ", "))

	total := o.n * len(o.failures)
	bar := newProgress(total)
	var rs []pcmkResult
	runs := 0
	t0 := time.Now()
	var runErr error
loop:
	for k := 1; k <= o.n; k++ {
		for _, f := range o.failures {
			if ctx.Err() != nil {
				fmt.Fprintf(w, "interrupted: reporting the %d runs so far\n", runs)
				break loop
			}
			got, err := b.run(ctx, k, f)
			rs = append(rs, got...)
			runs++
			eta := time.Duration(float64(time.Since(t0)) / float64(runs) * float64(total-runs))
			bar.step(fmt.Sprintf("run %d/%d %s", k, o.n, f))
			fmt.Fprintf(w, "run %d/%d %-6s %s  [%d/%d, ETA %v]\n", k, o.n, f, describePcmk(got), runs, total, eta.Round(time.Second))
			if err != nil || failedRun(got) {
				dir := filepath.Join(evidence, fmt.Sprintf("run%d-%s", k, f))
				if kerr := keepEvidence(b.state, dir); kerr != nil {
					fmt.Fprintf(w, "  keeping the VMs' logs: %v\n", kerr)
				} else {
					fmt.Fprintf(w, "  the VMs' logs of this run: %s (the nodes' Pacemaker logs: %s)\n", dir, filepath.Join(labDir, "nodes"))
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					runErr = err
				}
				break loop
			}
		}
	}
	bar.finish()
	var buf bytes.Buffer
	if err := writePcmkCSV(&buf, rs); err != nil {
		return err
	}
	csvPath := filepath.Join(o.out, "pacemaker.csv")
	if err := os.WriteFile(csvPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	var tables bytes.Buffer
	writePcmkTables(&tables, o, rs)
	w.Write(tables.Bytes())
	tablesPath, pngPath := filepath.Join(o.out, "tables.txt"), filepath.Join(o.out, "pacemaker-cdf.png")
	if err := os.WriteFile(tablesPath, tables.Bytes(), 0o644); err != nil {
		return err
	}
	if err := writeCDFs(pngPath, pcmkPanels(o, rs)); err != nil {
		return fmt.Errorf("the plot: %w", err)
	}
	fmt.Fprintf(w, "\nwrote %s, %s and %s\n", csvPath, tablesPath, pngPath)
	return runErr
}

// protected waits until both clusters run on both nodes, one promoted,
// and each answers on its service address.
func (b *pcmkBench) protected(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.settle)
	defer cancel()
	s, err := b.lab.Await(ctx, "both clusters protected", func(s pcmklab.Status) bool {
		for _, c := range b.clusters {
			if !c.Protected(s) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, c := range b.clusters {
		want := c.Name() + "@" + c.PromotedOn(s)
		if _, err := b.client.AwaitAnswer(ctx, c.Service().String(), want, 250*time.Millisecond, b.o.reqTimeout); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}
	return nil
}
