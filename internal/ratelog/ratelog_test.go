package ratelog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, 3, time.Second)
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }
	written := 0
	for i := 0; i < 1000; i++ {
		if l.Printf("bad message %d", i) {
			written++
		}
	}
	if written != 3 {
		t.Fatalf("wrote %d of 1000 lines at once, want the burst of 3", written)
	}
	if got := l.Suppressed(); got != 997 {
		t.Fatalf("Suppressed() = %d, want 997", got)
	}
	clock = clock.Add(time.Second)
	if !l.Printf("after a second") {
		t.Fatal("no line allowed one period later")
	}
	if l.Printf("again at once") {
		t.Fatal("a second line allowed within the same period")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"bad message 0", "bad message 1", "bad message 2",
		"(997 similar log lines suppressed)", "after a second"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("log:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
}

func TestRefillCapsAtBurst(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, 2, time.Second)
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }
	l.Printf("one")
	clock = clock.Add(time.Hour)
	n := 0
	for i := 0; i < 10; i++ {
		if l.Printf("x") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("after an hour idle %d lines passed, want the burst of 2", n)
	}
}

func TestNewlineAdded(t *testing.T) {
	var out bytes.Buffer
	l := Default(&out)
	l.Printf("a")
	l.Printf("b\n")
	if out.String() != "a\nb\n" {
		t.Fatalf("got %q", out.String())
	}
}
