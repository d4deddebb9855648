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

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

// benchOpts are `cluster bench`'s flags.
type benchOpts struct {
	vmm           string
	n             int
	out           string
	failures      []string
	period, tuned time.Duration
	never         time.Duration
	oomWait       time.Duration
	settle        time.Duration
	poll          time.Duration
	reqTimeout    time.Duration
	mem           string
	bootSlots     int
	report        string
}

const benchUsage = `Usage: cluster bench [flags]

The seed paper's experiment (Kim et al., "Clustering Virtual Machines with
Kernel Trace Technology", Tables 1 and 2) on this host: two clusters of
two vmm guests with busybox httpd, each in a network namespace of its own
(the paper's two hosts):

  cluster 1  decided by the heartbeat alone (HTTP to each node's httpd and
             the vmm's API, every --heartbeat, each check given one period
             to answer, the first miss decides); a tuned heartbeat
             (--tuned; a TCP connect to the active node's httpd, lighter on
             the guest than a GET) and the probes run beside it and only
             measure
  cluster 2  decided by the probes (kprobes in the guest kernel; the vmm
             also fences by itself on the matching event) and the heartbeat

Each of the -n runs causes each failure in both clusters' active node at
once: (signal) httpd killed by SIGKILL; (oom) a memory hog drives the
guest into OOM, and the OOM killer takes the hog, not httpd. A run ends
when every detector has seen the failure or --never has passed, the
failover it caused is complete, and the failed node has been rebooted and
rejoined as the standby. A client polls the service address of each
cluster throughout and records the outage.

Prints Table 1 (signal) and Table 2 (OOM): detection time per method
(mean, p50, p99, max; "—" where never detected within --never), the
client's outage, the ratios to the probes; writes every run to
OUT/failover.csv, the tables to OUT/tables.txt and the detection-time CDFs
to OUT/failover-cdf.png; each node's vmm output and events are left in
OUT/nodes. Needs root and /dev/kvm. Interrupt (Ctrl-C) to
stop early: the runs so far are reported.

Flags:
`

func bench(args []string) int {
	var o benchOpts
	fs := pflag.NewFlagSet("cluster bench", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, benchUsage+fs.FlagUsages()) }
	fs.StringVar(&o.vmm, "vmm", defaultVMM(), "the vmm binary")
	fs.IntVarP(&o.n, "runs", "n", 100, "runs of each failure (the paper: 100)")
	fs.StringVar(&o.out, "out", "build/bench-failover", "directory for failover.csv, tables.txt and failover-cdf.png")
	fs.StringSliceVar(&o.failures, "failures", []string{failSignal, failOOM}, "failures to cause: signal, oom")
	fs.DurationVar(&o.period, "heartbeat", failover.DefaultPeriod, "the heartbeat's period (the paper's Heartbeat: 10s)")
	fs.DurationVar(&o.tuned, "tuned", time.Second, "the tuned heartbeat's period (measures only, in cluster 1)")
	fs.DurationVar(&o.never, "never", 30*time.Second, "a detector that has not detected the failure this long after it never does (—)")
	fs.DurationVar(&o.oomWait, "oom-wait", 3*time.Minute, "how long the hog may take to drive the guest into OOM")
	fs.DurationVar(&o.settle, "settle", 8*time.Minute, "how long a cluster may take to be protected again (a reboot) before the benchmark gives up")
	fs.DurationVar(&o.poll, "poll", time.Second, "the client's request interval on the service address; the outage it sees is exact to within it. Each request forks httpd's child in the guest, which costs an emulating host's guest about half a second of its vCPU: at 250ms the active guest is saturated, answers a heartbeat's check seconds late while a neighbour boots, and the heartbeat fails it over (false failovers)")
	fs.DurationVar(&o.reqTimeout, "request-timeout", 5*time.Second, "each client request's timeout (a guest on a loaded emulating host takes seconds)")
	fs.StringVar(&o.mem, "mem", vmmnode.HogMem, "each guest's RAM (small: every page the hog faults in costs the emulating host milliseconds)")
	fs.IntVar(&o.bootSlots, "boot-slots", 1, "guests the two clusters boot at once at most (0: no limit); a boot on the emulating host keeps a core busy for tens of seconds, and two at once starve the running guests into false heartbeat misses")
	fs.StringVar(&o.report, "report", "", "run nothing: print the tables and draw the plot again from a failover.csv this command wrote (false failovers from the journals in its nodes/ beside it)")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.report != "" {
		if err := reportAgain(o, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "cluster bench: --report: %v\n", err)
			return 1
		}
		return 0
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench: %v\n", err)
		return 2
	}
	if err := hostCanRun(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runBench(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cluster bench: %v\n", err)
		return 1
	}
	return 0
}

// check refuses flags that cannot make a benchmark.
func (o *benchOpts) check() error {
	if o.n < 1 || o.n > 10000 {
		return fmt.Errorf("-n %d: want 1 to 10000 runs", o.n)
	}
	if err := checkFailures(o.failures, failSignal, failOOM); err != nil {
		return err
	}
	if err := checkPositive(durationFlag{"--heartbeat", o.period}, durationFlag{"--tuned", o.tuned},
		durationFlag{"--never", o.never}, durationFlag{"--oom-wait", o.oomWait}, durationFlag{"--settle", o.settle},
		durationFlag{"--poll", o.poll}, durationFlag{"--request-timeout", o.reqTimeout}); err != nil {
		return err
	}
	if o.bootSlots < 0 {
		return fmt.Errorf("--boot-slots %d: want 0 (no limit) or more", o.bootSlots)
	}
	if o.tuned == o.period {
		return fmt.Errorf("--tuned %v is the --heartbeat period: the tuned heartbeat must differ", o.tuned)
	}
	if o.never <= o.period {
		return fmt.Errorf("--never %v: want longer than the heartbeat's period %v, or a heartbeat could not detect at all", o.never, o.period)
	}
	if _, err := os.Stat(o.vmm); err != nil {
		return fmt.Errorf("--vmm: %w (make builds build/vmm)", err)
	}
	return nil
}

func runBench(ctx context.Context, o benchOpts, w io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	// Each node's vmm output and events stay in OUT/nodes for a
	// post-mortem; a new benchmark replaces them.
	dir := filepath.Join(o.out, "nodes")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "booting 2 clusters of 2 guests (%s each) in two network namespaces...\n", o.mem)
	boot := time.Now()
	cs, err := setupClusters(ctx, o, dir, os.Stderr)
	defer func() {
		for _, b := range cs {
			if err := b.close(); err != nil {
				fmt.Fprintf(os.Stderr, "cluster bench: cleaning up the %s cluster: %v\n", b.name, err)
			}
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "both clusters serve (%.0fs); %d runs of %s\n", time.Since(boot).Seconds(), o.n, strings.Join(o.failures, ", "))

	total := o.n * len(o.failures)
	bar := newProgress(total)
	var rs []result
	start := time.Now()
	var runErr error
loop:
	for k := 1; k <= o.n; k++ {
		for _, f := range o.failures {
			if ctx.Err() != nil {
				fmt.Fprintf(w, "interrupted: reporting the %d runs so far\n", len(rs)/len(cs))
				break loop
			}
			got, err := runOnce(ctx, o, k, f, cs)
			rs = append(rs, got...)
			done := len(rs) / len(cs)
			eta := time.Duration(float64(time.Since(start)) / float64(done) * float64(total-done))
			bar.step(fmt.Sprintf("run %d/%d %s", k, o.n, f))
			fmt.Fprintf(w, "run %d/%d %-6s %s  [%d/%d, ETA %v]\n", k, o.n, f, describeRun(o, got), done, total, eta.Round(time.Second))
			if err != nil {
				if ctx.Err() == nil {
					runErr = err
				}
				break loop
			}
		}
	}
	bar.finish()

	falseFO := map[string]uint64{}
	for _, b := range cs {
		s := b.m.Stats()
		falseFO[b.name] = falseFailovers(rs, b.name, s.Failovers+s.Down, s.StandbyFailures)
	}
	var buf bytes.Buffer
	if err := writeCSV(&buf, o, rs); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "failover.csv"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := writeReport(o, w, rs, falseFO); err != nil {
		return err
	}
	return runErr
}

// falseFailovers is how many of a cluster's failovers (and service-down
// verdicts) and standby failures no run caused.
func falseFailovers(rs []result, cluster string, failovers, standbyFailures uint64) uint64 {
	var caused uint64
	for _, r := range rs {
		if r.Cluster == cluster && r.Timeline != nil {
			caused++
		}
	}
	var n uint64
	if failovers > caused {
		n = failovers - caused
	}
	return n + standbyFailures
}

// writeReport prints the tables and writes them and the plot into o.out.
func writeReport(o benchOpts, w io.Writer, rs []result, falseFO map[string]uint64) error {
	var tables bytes.Buffer
	writeTables(&tables, o, rs, falseFO)
	w.Write(tables.Bytes())
	tablesPath, pngPath := filepath.Join(o.out, "tables.txt"), filepath.Join(o.out, "failover-cdf.png")
	if err := os.WriteFile(tablesPath, tables.Bytes(), 0o644); err != nil {
		return err
	}
	if err := writePlot(pngPath, o, rs); err != nil {
		return fmt.Errorf("the plot: %w", err)
	}
	fmt.Fprintf(w, "\nwrote %s, %s and %s\n", filepath.Join(o.out, "failover.csv"), tablesPath, pngPath)
	return nil
}

// reportAgain is --report: the tables and the plot from a CSV, the false
// failovers from the managers' journals beside it, written next to it.
func reportAgain(o benchOpts, w io.Writer) error {
	f, err := os.Open(o.report)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := readCSV(f)
	if err != nil {
		return fmt.Errorf("%s: %w", o.report, err)
	}
	o.out = filepath.Dir(o.report)
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Failure] = true
	}
	o.failures = nil
	for _, fl := range []string{failSignal, failOOM} {
		if seen[fl] {
			o.failures = append(o.failures, fl)
		}
	}
	falseFO := map[string]uint64{}
	for _, c := range []string{"heartbeat", "probe"} {
		failovers, standby, err := journalCounts(filepath.Join(o.out, "nodes", c, "journal.jsonl"))
		if err != nil {
			return err
		}
		falseFO[c] = falseFailovers(rs, c, failovers, standby)
	}
	return writeReport(o, w, rs, falseFO)
}

// describeRun is one line about a run in every cluster.
func describeRun(o benchOpts, rs []result) string {
	var parts []string
	for _, r := range rs {
		var ds []string
		for _, m := range methods(o) {
			if m.cluster != r.Cluster {
				continue
			}
			if d, ok := r.detection(m.detector); ok {
				ds = append(ds, m.detector+" "+fmtDur(d))
			} else {
				ds = append(ds, m.detector+" —")
			}
		}
		s := r.Cluster + ": " + strings.Join(ds, ", ")
		if tl := r.Timeline; tl != nil && tl.To != "" {
			s += fmt.Sprintf(", %s→%s, outage %s", r.Node, tl.To, fmtDur(r.Outage.Duration()))
		}
		if r.Err != "" {
			s += " (" + r.Err + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " | ")
}

// progress is a progress bar on a terminal's stderr; elsewhere (a log)
// the per-run lines carry k/N and the ETA.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(total int) progress {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return progress{}
	}
	return progress{progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetDescription("failover runs"), progressbar.OptionClearOnFinish())}
}

func (p progress) step(desc string) {
	if p.bar != nil {
		p.bar.Describe(desc)
		p.bar.Add(1)
	}
}

func (p progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
