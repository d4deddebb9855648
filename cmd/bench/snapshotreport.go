package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/tracevisor/tracevisor/internal/procmem"
)

// printSnapshot prints bench snapshot's tables, the targets beside the
// numbers.
func printSnapshot(profile string, results []sizeResult, s cloneShare) {
	n := len(results[0].restore)
	fmt.Printf("\nsnapshot and restore: host profile %s, 1 vCPU, %d restores per size (medians; min–max)\n", profile, n)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "guest RAM\tcold boot → httpd\tsnapshot\tmemory file (disk / length)\trestored\t→ guest running\t→ httpd answering\tcold / restore")
	for _, r := range results {
		ans := secs(r.answer)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f / %.0f MiB\t%s\t%s\t%s (%s–%s)\t%.0f×\n", r.mem, round(r.cold), round(r.snap),
			mib(r.snapDisk), mib(r.snapBytes), durMedian(r.restore), durMedian(r.toGuest),
			durOf(median(ans)), durOf(minOf(ans)), durOf(maxOf(ans)), r.cold.Seconds()/median(ans))
	}
	tw.Flush()
	fmt.Println("  target: restore → service answering ≥ 100× faster than a cold boot (cold / restore)")
	if len(results) > 1 {
		lo, hi := results[0], results[len(results)-1]
		fmt.Printf("  restore → guest running, %s against %s: %.2f× (target: flat, about 1×)\n", hi.mem, lo.mem,
			median(secs(hi.toGuest))/median(secs(lo.toGuest)))
	}
	fmt.Printf("\ntwo clones of the %s snapshot side by side (the snapshot's memory file as each maps it)\n", s.mem)
	fmt.Printf("  one clone alone:  resident %.1f MiB\n", mib(s.alone.RSS))
	for _, c := range []struct {
		name string
		u    procmem.Use
		rss  uint64
	}{{"clone A", s.a, s.aRSS}, {"clone B", s.b, s.bRSS}} {
		fmt.Printf("  %s:          resident %.1f MiB, shared %.1f MiB (%.1f %%), private %.1f MiB; the whole vmm %.1f MiB\n",
			c.name, mib(c.u.RSS), mib(c.u.Shared), percentOf(c.u.Shared, c.u.RSS), mib(c.u.Private), mib(c.rss))
	}
	fmt.Printf("  both clones' guest memory, proportional (PSS): %.1f MiB, %.2f× one clone alone's resident %.1f MiB\n",
		mib(s.a.PSS+s.b.PSS), float64(s.a.PSS+s.b.PSS)/float64(max(s.alone.RSS, 1)), mib(s.alone.RSS))
	fmt.Println("  target: two clones share ≥ 90 % of their resident guest pages")
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func durOf(s float64) string { return round(time.Duration(s * float64(time.Second))) }

func durMedian(ds []time.Duration) string { return durOf(median(secs(ds))) }

// round keeps three significant figures or so.
func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func percentOf(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
