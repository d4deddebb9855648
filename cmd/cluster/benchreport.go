package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

// method is one row of the paper's tables: a detector in one cluster.
type method struct {
	name     string // for tables and the plot's legend
	cluster  string
	detector string
	decides  bool // the cluster fails over on its verdict: its outage is the client's
}

// methods returns the tables' rows for o's periods.
func methods(o benchOpts) []method {
	return []method{
		{fmt.Sprintf("heartbeat %v (decides)", o.period), "heartbeat", hbLabel(o.period), true},
		{fmt.Sprintf("heartbeat %v (tuned; measures)", o.tuned), "heartbeat", hbLabel(o.tuned), false},
		{"probes (decide)", "probe", detProbe, true},
	}
}

// tableTitles are the seed's two tables.
var tableTitles = map[string]string{
	failSignal: "Table 1: the service daemon (httpd) killed by SIGKILL",
	failOOM:    "Table 2: a memory hog drives the guest into OOM (the OOM killer takes the hog)",
}

// detections returns m's detection times in failure's runs, and how many
// runs there were.
func detections(rs []result, failure string, m method) ([]time.Duration, int) {
	var ds []time.Duration
	runs := 0
	for _, r := range rs {
		if r.Failure != failure || r.Cluster != m.cluster {
			continue
		}
		runs++
		if d, ok := r.detection(m.detector); ok {
			ds = append(ds, d)
		}
	}
	return ds, runs
}

// countEarly counts failure's runs in which m's verdict came before the
// failure.
func countEarly(rs []result, failure string, m method) int {
	n := 0
	for _, r := range rs {
		if r.Failure == failure && r.Cluster == m.cluster && r.early(m.detector) {
			n++
		}
	}
	return n
}

// outages returns the client-visible outages and failure → serving times
// of cluster's failovers in failure's runs.
func outages(rs []result, failure, cluster string) (out, serving []time.Duration, failovers int) {
	for _, r := range rs {
		if r.Failure != failure || r.Cluster != cluster || r.Timeline == nil || r.Timeline.To == "" {
			continue
		}
		failovers++
		out = append(out, r.Outage.Duration())
		if r.FailureNS != 0 && r.Timeline.ServingNS != 0 {
			serving = append(serving, time.Duration(r.Timeline.ServingNS-r.FailureNS))
		}
	}
	return out, serving, failovers
}

// writeTables prints Tables 1 and 2 with the ratios and outages.
func writeTables(w io.Writer, o benchOpts, rs []result, falseFailovers map[string]uint64) {
	ms := methods(o)
	for _, f := range o.failures {
		fmt.Fprintf(w, "\n%s\n", tableTitles[f])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "method\tdetected\tmean\tp50\tp99\tmax\toutage mean\toutage max\t")
		sums := map[string]summary{}
		for _, m := range ms {
			ds, runs := detections(rs, f, m)
			s := summarize(ds, runs)
			sums[m.detector] = s
			row := fmt.Sprintf("%s\t%d/%d", m.name, s.N, s.Runs)
			if s.N == 0 {
				row += "\t—\t—\t—\t—"
			} else {
				row += fmt.Sprintf("\t%s\t%s\t%s\t%s", fmtDur(s.Mean), fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.Max))
			}
			if m.decides {
				out, _, n := outages(rs, f, m.cluster)
				if n == 0 {
					row += "\tno failover\t"
				} else {
					so := summarize(out, n)
					row += fmt.Sprintf("\t%s\t%s", fmtDur(so.Mean), fmtDur(so.Max))
				}
			} else {
				row += "\t\t"
			}
			fmt.Fprintln(tw, row+"\t")
		}
		tw.Flush()
		for _, m := range ms {
			if n := countEarly(rs, f, m); n > 0 {
				fmt.Fprintf(w, "  %s: in %d runs its verdict came before the failure (not counted as detected): the guest stopped answering within a check's time while the hog filled its memory\n", m.detector, n)
			}
		}
		pr := sums[detProbe]
		for _, m := range ms[:2] {
			hb := sums[m.detector]
			fmt.Fprintf(w, "  %s / probes: mean %s, p99 %s\n", m.detector, ratio(hb.Mean, pr.Mean), ratio(hb.P99, pr.P99))
		}
		if _, serving, n := outages(rs, f, "probe"); len(serving) > 0 {
			s := summarize(serving, n)
			fmt.Fprintf(w, "  failure → standby serving (probes): mean %s, p50 %s, p99 %s, max %s (%d failovers)\n",
				fmtDur(s.Mean), fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.Max), n)
		}
	}
	fmt.Fprintf(w, "\n— : never detected within %v of the failure. Detection: the failure in the guest (the probe's hit, kvmclock mapped to the host clock; in cluster 1 a probe that only measures) → the detector's verdict. Outage: the client's first failed request → its first answer from the new active.\n", o.never)
	for _, c := range []string{"heartbeat", "probe"} {
		fmt.Fprintf(w, "false failovers in the %s cluster: %d\n", c, falseFailovers[c])
	}
	var errs int
	for _, r := range rs {
		if r.Err != "" {
			errs++
			fmt.Fprintf(w, "run %d %s, %s cluster: %s\n", r.Run, r.Failure, r.Cluster, r.Err)
		}
	}
	if errs > 0 {
		fmt.Fprintf(w, "%d runs could not be measured\n", errs)
	}
}

// csvHeader names writeCSV's columns.
var csvHeader = []string{"run", "failure", "cluster", "node", "detector", "decides",
	"inject_ns", "failure_ns", "failure_guest_ns", "detected_ns", "detection_ms",
	"failover_to", "fenced_ms", "moved_ms", "serving_ms", "outage_ms", "requests", "failed_requests", "error"}

// writeCSV writes one row per run, cluster and detector; stage times in
// milliseconds from the failure (empty: did not happen).
func writeCSV(w io.Writer, o benchOpts, rs []result) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	ms := methods(o)
	ns := func(v int64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	ms2 := func(r result, at int64) string {
		if at == 0 || r.FailureNS == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(at-r.FailureNS)/1e6, 'f', 3, 64)
	}
	for _, r := range rs {
		for _, m := range ms {
			if m.cluster != r.Cluster {
				continue
			}
			row := []string{strconv.Itoa(r.Run), r.Failure, r.Cluster, r.Node, m.detector, strconv.FormatBool(m.decides),
				ns(r.InjectNS), ns(r.FailureNS), strconv.FormatUint(r.FailureGuestNS, 10), ns(r.Detected[m.detector]),
				ms2(r, r.Detected[m.detector])}
			var to, fenced, moved, serving, outage string
			if tl := r.Timeline; tl != nil && m.decides {
				to, fenced, moved, serving = tl.To, ms2(r, tl.FencedNS), ms2(r, tl.MovedNS), ms2(r, tl.ServingNS)
				if d := r.Outage.Duration(); d > 0 {
					outage = strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64)
				}
			}
			row = append(row, to, fenced, moved, serving, outage,
				strconv.Itoa(r.Outage.Requests), strconv.Itoa(r.Outage.Failed), r.Err)
			cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}

// readCSV reads back what writeCSV wrote: the runs, as far as the tables
// and the plot need them (`cluster bench --report`).
func readCSV(rd io.Reader) ([]result, error) {
	rows, err := csv.NewReader(rd).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		return nil, fmt.Errorf("not a cluster bench CSV: want the header %s", strings.Join(csvHeader, ","))
	}
	col := map[string]int{}
	for i, c := range csvHeader {
		col[c] = i
	}
	byRun := map[string]*result{}
	var order []string
	for n, row := range rows[1:] {
		if len(row) != len(csvHeader) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", n+2, len(row), len(csvHeader))
		}
		num := func(c string) int64 {
			v, _ := strconv.ParseInt(row[col[c]], 10, 64)
			return v
		}
		msAt := func(c string, from int64) int64 {
			v, err := strconv.ParseFloat(row[col[c]], 64)
			if err != nil || from == 0 {
				return 0
			}
			return from + int64(v*1e6)
		}
		key := row[col["run"]] + "/" + row[col["failure"]] + "/" + row[col["cluster"]]
		r := byRun[key]
		if r == nil {
			run, err := strconv.Atoi(row[col["run"]])
			if err != nil {
				return nil, fmt.Errorf("line %d: run %q", n+2, row[col["run"]])
			}
			g, _ := strconv.ParseUint(row[col["failure_guest_ns"]], 10, 64)
			r = &result{Run: run, Failure: row[col["failure"]], Cluster: row[col["cluster"]], Node: row[col["node"]],
				InjectNS: num("inject_ns"), FailureNS: num("failure_ns"), FailureGuestNS: g,
				Detected: map[string]int64{}, Err: row[col["error"]]}
			byRun[key] = r
			order = append(order, key)
		}
		if d := num("detected_ns"); d != 0 {
			r.Detected[row[col["detector"]]] = d
		}
		if to := row[col["failover_to"]]; to != "" && row[col["decides"]] == "true" {
			r.Timeline = &failover.Timeline{To: to, FencedNS: msAt("fenced_ms", r.FailureNS),
				MovedNS: msAt("moved_ms", r.FailureNS), ServingNS: msAt("serving_ms", r.FailureNS)}
			r.Outage.Requests, _ = strconv.Atoi(row[col["requests"]])
			r.Outage.Failed, _ = strconv.Atoi(row[col["failed_requests"]])
			if v, err := strconv.ParseFloat(row[col["outage_ms"]], 64); err == nil {
				r.Outage.FirstFailed = time.Unix(0, r.FailureNS)
				r.Outage.FirstOK = r.Outage.FirstFailed.Add(time.Duration(v * 1e6))
			}
		}
	}
	rs := make([]result, 0, len(order))
	for _, k := range order {
		rs = append(rs, *byRun[k])
	}
	return rs, nil
}

// journalCounts counts, in a manager's journal, the failovers and
// service-down entries, and the standbys that failed.
func journalCounts(path string) (failovers, standbyFailures uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			From, To, Service, Cause string
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch {
		case e.Service == "up" && strings.HasPrefix(e.Cause, "failover from "), e.Service == "down":
			failovers++
		case e.From == "standby" && e.To == "failed":
			standbyFailures++
		}
	}
	return failovers, standbyFailures, sc.Err()
}
