package main

import (
	"bufio"
	"os"
	"regexp"
	"time"
)

// ipStarted matches the controller's line for a resource's start that
// succeeded, in pacemaker.log:
//
//	Dec 01 17:07:18.065 n1 pacemaker-controld  [5093] (log_executor_event) 	notice: Result of start operation for ip2 on n1: ok | ...
var ipStarted = regexp.MustCompile(`^([A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \S+ pacemaker-controld.*Result of start operation for (\S+) on (\S+): ok\b`)

// startedAt returns when resource's start on node succeeded, by the
// first such line in a pacemaker.log at or after since (host ns; the log
// writes local time to the millisecond and no year: since gives it), or
// 0 when none.
func startedAt(log, resource, node string, since int64) int64 {
	f, err := os.Open(log)
	if err != nil {
		return 0
	}
	defer f.Close()
	ref := time.Unix(0, since)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := ipStarted.FindStringSubmatch(sc.Text())
		if m == nil || m[2] != resource || m[3] != node {
			continue
		}
		t, err := time.ParseInLocation("Jan 02 15:04:05.000", m[1], time.Local)
		if err != nil {
			continue
		}
		t = t.AddDate(ref.Year(), 0, 0)
		if t.After(ref.Add(180 * 24 * time.Hour)) { // the log's December, the bench's January
			t = t.AddDate(-1, 0, 0)
		}
		if ns := t.UnixNano(); ns >= since-int64(time.Millisecond) {
			return ns
		}
	}
	return 0
}
