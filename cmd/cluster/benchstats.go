package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// summary describes a set of durations: how many of the runs had one, and
// their mean and order statistics.
type summary struct {
	Runs, N             int
	Mean, P50, P99, Max time.Duration
}

// summarize returns ds's summary out of runs runs.
func summarize(ds []time.Duration, runs int) summary {
	s := summary{Runs: runs, N: len(ds)}
	if len(ds) == 0 {
		return s
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var sum float64
	for _, d := range sorted {
		sum += float64(d)
	}
	s.Mean = time.Duration(sum / float64(len(sorted)))
	s.P50, s.P99, s.Max = percentile(sorted, 50), percentile(sorted, 99), sorted[len(sorted)-1]
	return s
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method (p99 of fewer than 100 values is their maximum).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// fmtDur writes d for a table: microseconds to seconds, three digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// ratio writes a/b as "1234×", or "—" when either is not known.
func ratio(a, b time.Duration) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f×", float64(a)/float64(b))
}
