package main

import "testing"

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
