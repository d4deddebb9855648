package main

import (
	"bytes"
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func samplePcmk() []pcmkResult {
	const s = int64(time.Second)
	var rs []pcmkResult
	for k := 1; k <= 2; k++ {
		rs = append(rs,
			pcmkResult{Run: k, Failure: failSignal, Cluster: "vm1", Method: "monitor", Node: "n1", InjectNS: 1000 * s,
				FailureNS: 1000*s + s/10, KnewNS: 1006 * s, MovedNS: 1007 * s, ServedNS: 1008 * s, FailCount: 1, Starts: 1},
			pcmkResult{Run: k, Failure: failSignal, Cluster: "vm2", Method: "fast-path", Node: "n1", InjectNS: 1000 * s,
				FailureNS: 1000*s + s/10, KnewNS: 1000*s + s/5, MovedNS: 1000*s + s/2, ServedNS: 1001 * s, FailCount: 2, Starts: 1})
	}
	return append(rs, pcmkResult{Run: 1, Failure: failNode, Cluster: "vm2", Method: "fast-path", Node: "n2", InjectNS: 2000 * s,
		FailureNS: 2000 * s, MovedNS: 2004 * s, Err: "the client got no answer from the standby within 3m0s"})
}

func TestPcmkTables(t *testing.T) {
	var b bytes.Buffer
	o := pcmkOpts{failures: []string{failSignal, failNode}, within: 3 * time.Minute}
	writePcmkTables(&b, o, samplePcmk())
	out := b.String()
	for _, want := range []string{
		"Table 1 through Pacemaker",
		"fail-count +1 per failure: 2/2",                        // the monitor's
		"fail-count +1 per failure: 0/2",                        // the fast path's double counts
		"address on the standby, monitor / fast path: mean 17×", // 6.9 s / 0.4 s
		"Node loss",
		"n/a: corosync's membership", // nothing told Pacemaker: it saw the node go
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "monitor / fast path") != 2 {
		t.Errorf("want the two ratio lines of Table 1 only (none for node loss):\n%s", out)
	}
	b.Reset()
	if err := writePcmkCSV(&b, samplePcmk()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 6 || len(rows[0]) != len(pcmkCSVHeader) {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	if rows[2][11] != "400.000" { // moved_ms of the fast path's run 1
		t.Errorf("moved_ms %q, want 400.000 (row %v)", rows[2][11], rows[2])
	}
	if err := writeCDFs(filepath.Join(t.TempDir(), "p.png"), pcmkPanels(o, samplePcmk())); err != nil {
		t.Fatal(err)
	}
}
