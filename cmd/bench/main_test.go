package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestStatistics(t *testing.T) {
	odd := []float64{30, 10, 20}
	if m := median(odd); m != 20 {
		t.Errorf("median(odd) = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median(even) = %v", m)
	}
	if odd[0] != 30 {
		t.Error("median reordered its input")
	}
	if minOf(odd) != 10 || maxOf(odd) != 30 {
		t.Errorf("min/max = %v/%v", minOf(odd), maxOf(odd))
	}
}

func TestBenchSeconds(t *testing.T) {
	if s, err := benchSeconds("noise\r\nBENCH 21.50 23.75\n"); err != nil || s != 2.25 {
		t.Errorf("benchSeconds = %v, %v", s, err)
	}
	for _, bad := range []string{"", "BENCH 5 4", "BENCH x y"} {
		if _, err := benchSeconds(bad); err == nil {
			t.Errorf("benchSeconds(%q) accepted", bad)
		}
	}
}

func TestGuestGot(t *testing.T) {
	if !guestGot("noise\r\nGOT 1048576\r\n", 1<<20) {
		t.Error("guestGot missed its line")
	}
	for _, bad := range []string{"", "GOT 10485760", "GOT 104857", "GOT"} {
		if guestGot(bad, 1<<20) {
			t.Errorf("guestGot(%q) accepted", bad)
		}
	}
}

func TestProbePhasesInterleave(t *testing.T) {
	phases := probePhases(5)
	var order []string
	for _, p := range phases {
		armed := strings.HasPrefix(p.name, "sys-cat-")
		if armed || strings.HasPrefix(p.name, "sys-base-") {
			order = append(order, p.name)
			if (len(p.specs) > 0) != armed {
				t.Errorf("%s: %d specs armed", p.name, len(p.specs))
			}
		}
	}
	want := []string{"sys-base-1", "sys-cat-1", "sys-cat-2", "sys-base-2", "sys-base-3", "sys-cat-3",
		"sys-cat-4", "sys-base-4", "sys-base-5", "sys-cat-5"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("sys phases %v, want %v", order, want)
	}
	if last := phases[len(phases)-1]; last.name != "storm" {
		t.Errorf("last phase %s, want storm", last.name)
	}
	s := guestScript(phases, 7, 3)
	for _, w := range []string{"-lt 7 ]", "-lt 3 ]", "sys:sys-base-1 sys:sys-cat-1 web:web-base-1", "sys:latency sys:storm; do"} {
		if !strings.Contains(s, w) {
			t.Errorf("guest script lacks %q:\n%s", w, s)
		}
	}
}

func TestParsePhase(t *testing.T) {
	if p, ok := parsePhase("PHASE web-cat-2 12.50 14.75 0"); !ok || p != (phaseReport{"web-cat-2", 12.5, 14.75, 0}) {
		t.Errorf("parsePhase = %+v, %v", p, ok)
	}
	for _, bad := range []string{"", "PHASE x 1 2", "PHASE x 1 2 0 9", "PHASE x a 2 0", "PHASE x 1 2 z", "NOPE x 1 2 0"} {
		if _, ok := parsePhase(bad); ok {
			t.Errorf("parsePhase(%q) accepted", bad)
		}
	}
}
