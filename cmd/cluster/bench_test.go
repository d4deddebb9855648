package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds, 120)
	if s.N != 100 || s.Runs != 120 || s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond ||
		s.Max != 100*time.Millisecond || s.Mean != 50500*time.Microsecond {
		t.Errorf("summary of 1..100 ms: %+v", s)
	}
	// Fewer than 100 values: p99 is the maximum.
	if s := summarize([]time.Duration{3, 1, 2}, 3); s.P99 != 3 || s.P50 != 2 {
		t.Errorf("summary of 1,2,3: %+v", s)
	}
	if s := summarize(nil, 5); s.N != 0 || s.Mean != 0 {
		t.Errorf("summary of nothing: %+v", s)
	}
}

// benchOptsForTest are the defaults the tables are labelled with.
func benchOptsForTest() benchOpts {
	return benchOpts{period: 10 * time.Second, tuned: time.Second, never: 30 * time.Second,
		failures: []string{failSignal, failOOM}}
}

// sampleResults: two runs of each failure. Cluster 1's heartbeat detects
// the kills (4 s and 6 s) and fails over, never the OOMs; cluster 2's
// probes detect all four in about a millisecond.
func sampleResults() []result {
	const f0 = int64(1_000_000_000_000)
	var rs []result
	for k := 1; k <= 2; k++ {
		base := f0 + int64(k)*1e11
		hb := result{Run: k, Failure: failSignal, Cluster: "heartbeat", Node: "vm1", InjectNS: base - 1e6, FailureNS: base,
			Detected: map[string]int64{"heartbeat-10s": base + int64(2*k+2)*1e9, "heartbeat-1s": base + 5e8, "probe": base + 1e6},
			Timeline: &failover.Timeline{To: "vm2", FencedNS: base + 7e9, MovedNS: base + 7e9 + 1e5, ServingNS: base + 7e9 + 3e8},
			Outage:   vmmnode.Outage{Requests: 200, Failed: 100, FirstFailed: time.Unix(0, base), FirstOK: time.Unix(0, base+7e9)}}
		pr := result{Run: k, Failure: failSignal, Cluster: "probe", Node: "vm1", InjectNS: base - 1e6, FailureNS: base,
			Detected: map[string]int64{"probe": base + int64(k)*1e6},
			Timeline: &failover.Timeline{To: "vm2", FencedNS: base + 2e6, MovedNS: base + 3e6, ServingNS: base + 4e8},
			Outage:   vmmnode.Outage{Requests: 20, Failed: 2, FirstFailed: time.Unix(0, base), FirstOK: time.Unix(0, base+5e8)}}
		hbOOM := result{Run: k, Failure: failOOM, Cluster: "heartbeat", Node: "vm1", InjectNS: base + 5e10, FailureNS: base + 6e10,
			Detected: map[string]int64{"probe": base + 6e10 + 1e6}}
		prOOM := result{Run: k, Failure: failOOM, Cluster: "probe", Node: "vm2", InjectNS: base + 5e10, FailureNS: base + 6e10,
			Detected: map[string]int64{"probe": base + 6e10 + 2e6},
			Timeline: &failover.Timeline{To: "vm1", ServingNS: base + 6e10 + 6e8}}
		rs = append(rs, hb, pr, hbOOM, prOOM)
	}
	return rs
}

func TestTables(t *testing.T) {
	var b bytes.Buffer
	writeTables(&b, benchOptsForTest(), sampleResults(), map[string]uint64{"probe": 1})
	t.Log("\n" + b.String())
	out := strings.Join(strings.Fields(b.String()), " ") // columns: single spaces
	for _, want := range []string{
		"Table 1: the service daemon (httpd) killed by SIGKILL",
		"Table 2: a memory hog drives the guest into OOM",
		// Kill: the heartbeat's 4 s and 6 s, mean 5 s; probes 1 and 2 ms.
		"heartbeat 10s (decides) 2/2 5.00 s 4.00 s 6.00 s 6.00 s 7.00 s 7.00 s",
		"heartbeat 1s (tuned; measures) 2/2 500.0 ms 500.0 ms 500.0 ms 500.0 ms",
		"probes (decide) 2/2 1.50 ms 1.00 ms 2.00 ms 2.00 ms 500.0 ms 500.0 ms",
		"heartbeat-10s / probes: mean 3333×, p99 3000×",
		// OOM: the heartbeat never detected it, and no failover followed.
		"heartbeat 10s (decides) 0/2 — — — — no failover",
		"failure → standby serving (probes): mean 600.0 ms",
		"false failovers in the probe cluster: 1",
		"false failovers in the heartbeat cluster: 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q", want)
		}
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	if err := writeCSV(&b, benchOptsForTest(), sampleResults()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Per run and failure: the 2 heartbeats of cluster 1, the probes of
	// cluster 2.
	if len(rows) != 1+2*2*(2+1) || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("%d rows, header %q", len(rows), rows[0])
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	var found bool
	for _, r := range rows[1:] {
		if r[col["run"]] == "1" && r[col["failure"]] == failSignal && r[col["detector"]] == "heartbeat-10s" {
			found = true
			if r[col["detection_ms"]] != "4000.000" || r[col["failover_to"]] != "vm2" || r[col["outage_ms"]] != "7000.000" ||
				r[col["serving_ms"]] != "7300.000" || r[col["failed_requests"]] != "100" {
				t.Errorf("run 1 heartbeat row: %q", r)
			}
		}
		if r[col["failure"]] == failOOM && r[col["detector"]] == "heartbeat-10s" && r[col["detection_ms"]] != "" {
			t.Errorf("an OOM the heartbeat never detected has a detection time: %q", r)
		}
	}
	if !found {
		t.Error("no row for run 1's 10 s heartbeat")
	}
}

func TestPlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdf.png")
	if err := writePlot(path, benchOptsForTest(), sampleResults()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 200 {
		t.Errorf("plot is %v", b)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	vmm := filepath.Join(t.TempDir(), "vmm")
	os.WriteFile(vmm, nil, 0o755)
	ok := benchOpts{vmm: vmm, n: 3, failures: []string{failSignal}, period: 10 * time.Second, tuned: time.Second,
		never: 30 * time.Second, oomWait: time.Minute, settle: time.Minute, poll: time.Millisecond, reqTimeout: time.Second}
	if err := ok.check(); err != nil {
		t.Fatalf("good flags refused: %v", err)
	}
	for name, change := range map[string]func(*benchOpts){
		"no runs":         func(o *benchOpts) { o.n = 0 },
		"unknown failure": func(o *benchOpts) { o.failures = []string{"disk"} },
		"failure twice":   func(o *benchOpts) { o.failures = []string{failOOM, failOOM} },
		"tuned = period":  func(o *benchOpts) { o.tuned = o.period },
		"never too short": func(o *benchOpts) { o.never = o.period },
		"no vmm":          func(o *benchOpts) { o.vmm = filepath.Join(filepath.Dir(vmm), "none") },
		"zero poll":       func(o *benchOpts) { o.poll = 0 },
	} {
		o := ok
		change(&o)
		if err := o.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRecorder: the recorder passes every verdict on and answers each
// detector's first verdict on a node since a time, and the failure time
// only from a probe verdict that carries a guest hit.
func TestRecorder(t *testing.T) {
	r := &recorder{}
	vs := []failover.Verdict{
		{Node: "vm1", Detector: "probe", DetectedNS: 5, Cause: failover.Cause{Rule: "stream"}},
		{Node: "vm1", Detector: "heartbeat-1s", DetectedNS: 20},
		{Node: "vm1", Detector: "probe", DetectedNS: 30, Cause: failover.Cause{HostNS: 29, GuestNS: 7}},
		{Node: "vm2", Detector: "probe", DetectedNS: 31, Cause: failover.Cause{HostNS: 30}},
	}
	d := r.wrap(fixedDetector(vs))
	out := make(chan failover.Verdict, len(vs))
	if err := d.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(vs) {
		t.Fatalf("%d verdicts passed on, want %d", len(out), len(vs))
	}
	if v, ok := r.first("heartbeat-1s", "vm1", 10); !ok || v.DetectedNS != 20 {
		t.Errorf("first heartbeat-1s on vm1: %+v %v", v, ok)
	}
	if _, ok := r.first("heartbeat-1s", "vm1", 21); ok {
		t.Error("a verdict before since counted")
	}
	if h, g := r.failure("vm1", 0); h != 29 || g != 7 {
		t.Errorf("failure time %d/%d, want the probe hit 29/7 (not the stream's end)", h, g)
	}
}

// fixedDetector gives its verdicts and stops.
type fixedDetector []failover.Verdict

func (fixedDetector) Name() string { return "fixed" }

func (f fixedDetector) Run(ctx context.Context, out chan<- failover.Verdict) error {
	for _, v := range f {
		out <- v
	}
	return nil
}

// TestReportFromCSV: the tables printed from the CSV (--report) are the
// tables printed from the runs themselves.
func TestReportFromCSV(t *testing.T) {
	o := benchOptsForTest()
	var c bytes.Buffer
	if err := writeCSV(&c, o, sampleResults()); err != nil {
		t.Fatal(err)
	}
	back, err := readCSV(&c)
	if err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	writeTables(&want, o, sampleResults(), nil)
	writeTables(&got, o, back, nil)
	if want.String() != got.String() {
		t.Errorf("tables from the CSV differ:\n%s\nfrom the runs:\n%s", got.String(), want.String())
	}
	if _, err := readCSV(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a CSV with another header was read")
	}
}

// TestEarlyVerdict: a verdict before the failure (a heartbeat that timed
// out while the hog filled memory) is not a detection, and is counted.
func TestEarlyVerdict(t *testing.T) {
	r := result{Failure: failOOM, Cluster: "heartbeat", FailureNS: 100, Detected: map[string]int64{"heartbeat-10s": 50}}
	if _, ok := r.detection("heartbeat-10s"); ok || !r.early("heartbeat-10s") {
		t.Errorf("a verdict before the failure: detection ok %v, early %v", ok, r.early("heartbeat-10s"))
	}
	var b bytes.Buffer
	writeTables(&b, benchOptsForTest(), []result{r}, nil)
	if !strings.Contains(b.String(), "heartbeat-10s: in 1 runs its verdict came before the failure") {
		t.Errorf("tables do not count the early verdict:\n%s", b.String())
	}
}
