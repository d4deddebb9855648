package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

var pcmkTitles = map[string]string{
	failSignal: "Table 1 through Pacemaker: httpd killed by SIGKILL",
	failOOM:    "Table 2 through Pacemaker: OOM (the OOM killer takes the hog)",
	failNode:   "Node loss: the node holding cluster 2 promoted killed whole",
}

var pcmkMethods = []struct{ method, name string }{
	{"monitor", "monitor 10 s (vm1)"},
	{"fast-path", "fast path (vm2)"},
}

// pcmkSeries returns one method's durations (knew or recovered) for a
// failure and its run count.
func pcmkSeries(rs []pcmkResult, failure, method string, of func(pcmkResult) (time.Duration, bool)) ([]time.Duration, int) {
	var ds []time.Duration
	runs := 0
	for _, r := range rs {
		if r.Failure != failure || r.Method != method {
			continue
		}
		runs++
		if d, ok := of(r); ok {
			ds = append(ds, d)
		}
	}
	return ds, runs
}

func fmtSummary(s summary) string {
	if s.N == 0 {
		return fmt.Sprintf("%d/%d  %9s %9s %9s %9s", s.N, s.Runs, "—", "—", "—", "—")
	}
	return fmt.Sprintf("%d/%d  %9s %9s %9s %9s", s.N, s.Runs, fmtDur(s.Mean), fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.Max))
}

// writePcmkTables prints one table per failure.
func writePcmkTables(w io.Writer, o pcmkOpts, rs []pcmkResult) {
	for _, f := range o.failures {
		fmt.Fprintf(w, "\n%s (—: not within %v)\n", pcmkTitles[f], o.within)
		fmt.Fprintf(w, "%-20s %-44s %-44s %-44s %s\n", "method", "Pacemaker told: k/N mean p50 p99 max",
			"address on the standby: k/N mean p50 p99 max", "client served by it: k/N mean p50 p99 max", "client outage mean")
		back, moved := map[string]summary{}, map[string]summary{}
		for _, m := range pcmkMethods {
			knew, runs := pcmkSeries(rs, f, m.method, pcmkResult.knew)
			rec, _ := pcmkSeries(rs, f, m.method, pcmkResult.recovered)
			mv, _ := pcmkSeries(rs, f, m.method, pcmkResult.moved)
			if runs == 0 {
				continue
			}
			var outs []time.Duration
			one, onceStarted := 0, 0
			for _, r := range rs {
				if r.Failure == f && r.Method == m.method {
					if d := r.Outage.Duration(); d > 0 {
						outs = append(outs, d)
					}
					if r.FailCount == 1 {
						one++
					}
					if r.Starts == 1 {
						onceStarted++
					}
				}
			}
			back[m.method], moved[m.method] = summarize(rec, runs), summarize(mv, runs)
			out := "—"
			if s := summarize(outs, runs); s.N > 0 {
				out = fmtDur(s.Mean)
			}
			told := fmtSummary(summarize(knew, runs))
			if f == failNode {
				told = "n/a: corosync's membership, then the fence"
			}
			fmt.Fprintf(w, "%-20s %-44s %-44s %-44s %s\n", m.name, told, fmtSummary(moved[m.method]),
				fmtSummary(back[m.method]), out)
			if f != failNode {
				fmt.Fprintf(w, "%-20s fail-count +1 per failure: %d/%d; one start of the failed VM per failure: %d/%d\n", "", one, runs, onceStarted, runs)
			}
		}
		if f == failNode {
			// Nothing for the fast path to tell: the lost node's VMs and
			// their fast paths die with it. Both clusters wait for the
			// same token and fence; a ratio would only show that.
			fmt.Fprintf(w, "node loss: both clusters wait for corosync's token and the fence (the fast path dies with the node); no ratio\n")
			continue
		}
		if mon, fast := moved["monitor"], moved["fast-path"]; mon.N > 0 && fast.N > 0 {
			fmt.Fprintf(w, "address on the standby, monitor / fast path: mean %s, p99 %s (target ≥ 10×)\n", ratio(mon.Mean, fast.Mean), ratio(mon.P99, fast.P99))
		}
		if mon, fast := back["monitor"], back["fast-path"]; mon.N > 0 && fast.N > 0 {
			fmt.Fprintf(w, "client served by the standby, monitor / fast path: mean %s, p99 %s\n", ratio(mon.Mean, fast.Mean), ratio(mon.P99, fast.P99))
		}
	}
}

var pcmkCSVHeader = []string{"run", "failure", "cluster", "method", "node", "inject_ns", "failure_ns", "knew_ns", "moved_ns", "served_ns",
	"knew_ms", "moved_ms", "recovered_ms", "outage_ms", "failed_requests", "failcount_delta", "starts", "error"}

// writePcmkCSV writes one row per run and cluster.
func writePcmkCSV(w io.Writer, rs []pcmkResult) error {
	cw := csv.NewWriter(w)
	cw.Write(pcmkCSVHeader)
	ms := func(d time.Duration, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64)
	}
	for _, r := range rs {
		cw.Write([]string{strconv.Itoa(r.Run), r.Failure, r.Cluster, r.Method, r.Node,
			strconv.FormatInt(r.InjectNS, 10), strconv.FormatInt(r.FailureNS, 10), strconv.FormatInt(r.KnewNS, 10),
			strconv.FormatInt(r.MovedNS, 10), strconv.FormatInt(r.ServedNS, 10),
			ms(r.knew()), ms(r.moved()), ms(r.recovered()), ms(r.Outage.Duration(), r.Outage.Duration() > 0), strconv.Itoa(r.Outage.Failed),
			strconv.Itoa(r.FailCount), strconv.Itoa(r.Starts), r.Err})
	}
	cw.Flush()
	return cw.Error()
}

// pcmkPanels are the plot's panels: failure → standby serving, one CDF
// per method, a panel per failure.
func pcmkPanels(o pcmkOpts, rs []pcmkResult) []cdfPanel {
	var panels []cdfPanel
	for _, f := range o.failures {
		p := cdfPanel{title: pcmkTitles[f], xLabel: "failure → service address on the standby (ms, log scale)", empty: o.within}
		for _, m := range pcmkMethods {
			ds, runs := pcmkSeries(rs, f, m.method, pcmkResult.moved)
			if runs > 0 {
				p.series = append(p.series, cdfSeries{name: m.name, ds: ds, runs: runs})
			}
		}
		panels = append(panels, p)
	}
	return panels
}
