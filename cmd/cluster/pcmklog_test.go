package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStartedAt(t *testing.T) {
	log := filepath.Join(t.TempDir(), "pacemaker.log")
	os.WriteFile(log, []byte(
		"Dec 01 17:05:10.000 n1 pacemaker-controld  [5093] (log_executor_event) \tnotice: Result of start operation for ip2 on n1: ok | CIB update 50\n"+
			"Dec 01 17:07:16.765 n1 pacemaker-controld  [5093] (log_executor_event) \tnotice: Result of start operation for ip1 on n1: ok | CIB update 78\n"+
			"Dec 01 17:07:17.900 n1 pacemaker-controld  [5093] (log_executor_event) \tnotice: Result of start operation for ip2 on n1: error | CIB update 88\n"+
			"Dec 01 17:07:18.065 n1 pacemaker-controld  [5093] (log_executor_event) \tnotice: Result of start operation for ip2 on n1: ok | CIB update 89\n"), 0o644)
	since := time.Date(2026, 12, 1, 17, 7, 0, 0, time.Local).UnixNano()
	want := time.Date(2026, 12, 1, 17, 7, 18, 65e6, time.Local).UnixNano()
	if got := startedAt(log, "ip2", "n1", since); got != want {
		t.Errorf("ip2's start on n1 = %v, want %v (the ok after since, not the earlier one or the error)", time.Unix(0, got), time.Unix(0, want))
	}
	if got := startedAt(log, "ip2", "n2", since); got != 0 {
		t.Errorf("a start on n2 found: %v", time.Unix(0, got))
	}
}
