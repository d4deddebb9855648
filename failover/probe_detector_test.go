package failover_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/internal/testenv"
	"github.com/tracevisor/tracevisor/probe"
)

// A vmm's API client is an event stream as it is.
var _ failover.EventStream = (*api.Client)(nil)

// streams hands out FakeStreams, one per Open, and counts the opens.
type streams struct {
	mu    sync.Mutex
	all   []*failover.FakeStream
	opens chan *failover.FakeStream
}

func newStreams() *streams { return &streams{opens: make(chan *failover.FakeStream, 10)} }

func (s *streams) open(context.Context) (failover.EventStream, error) {
	st := failover.NewFakeStream()
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
	s.opens <- st
	return st, nil
}

func (s *streams) next(t *testing.T) *failover.FakeStream {
	t.Helper()
	select {
	case st := <-s.opens:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("stream not opened")
	}
	panic("unreachable")
}

// send hands e to st within a deadline.
func send(t *testing.T, st *failover.FakeStream, e probe.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, out chan failover.Verdict) failover.Verdict {
	t.Helper()
	select {
	case v := <-out:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict")
	}
	panic("unreachable")
}

// TestProbeDetector: harmless events give nothing; the service's kill is
// a verdict with its cause; the end of the stream is a VM failure, and the
// stream is reopened after the reconnect wait on the fake clock.
func TestProbeDetector(t *testing.T) {
	clock := failover.NewFakeClock(t0)
	s := newStreams()
	d := &failover.ProbeDetector{Rules: failover.DefaultRules("httpd"), Clock: clock, Reconnect: time.Second,
		Sources: []failover.Source{{Node: "vm1", Open: s.open}}}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan failover.Verdict) // unbuffered: a verdict is sent before the next event is read
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, out) }()
	st := s.next(t)
	harmless := []struct {
		comm string
		sig  uint32
	}{{"httpd", 1}, {"httpd", 10}, {"httpd", 28}, {"sleep", 9}, {"hog", 9}}
	for _, h := range harmless {
		send(t, st, sigEv(h.comm, 100, h.sig))
	}
	e := sigEv("httpd", 100, 9)
	e.Dropped = 3
	send(t, st, e)
	v := recv(t, out)
	if v.Node != "vm1" || v.Detector != "probe" || v.Kind != failover.ServiceFailure || v.MeasureOnly ||
		v.Cause.Sig != 9 || v.Cause.Comm != "httpd" || v.Cause.HostNS != 2000 || v.DetectedNS != t0.UnixNano() {
		t.Errorf("verdict %+v", v)
	}
	if got := d.Stats(); got.Events != 6 || got.Verdicts != 1 || got.GuestDropped != 3 {
		t.Errorf("stats %+v: want 6 events, 1 verdict, 3 dropped", got)
	}

	st.End(errors.New("vmm exited"))
	v = recv(t, out)
	if v.Kind != failover.VMFailure || v.Cause.Rule != "stream" || v.Node != "vm1" {
		t.Errorf("stream-lost verdict %+v", v)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := clock.WaitForWaiters(wctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.opens:
		t.Fatal("reopened before the reconnect wait")
	default:
	}
	clock.Advance(time.Second)
	st2 := s.next(t)
	send(t, st2, ev("panic", "panic", "sh", 1, 1, map[string]any{"message": "boom"}))
	if v := recv(t, out); v.Kind != failover.VMFailure || v.Cause.Text != "boom" {
		t.Errorf("panic verdict %+v", v)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("detector did not stop")
	}
	if !st2.Closed() {
		t.Error("the stream was left open after Run returned")
	}
	if got := d.Stats().StreamsLost; got != 1 {
		t.Errorf("%d streams lost, want 1", got)
	}
}

// TestProbeDetectorMeasureOnly marks every verdict, and a stream end
// ignored by the rules gives none.
func TestProbeDetectorMeasureOnly(t *testing.T) {
	s := newStreams()
	rules := failover.DefaultRules("httpd")
	rules.StreamLost = failover.NoFailure
	d := &failover.ProbeDetector{Rules: rules, MeasureOnly: true, Reconnect: time.Hour,
		Sources: []failover.Source{{Node: "vm1", Open: s.open}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan failover.Verdict, 4)
	go d.Run(ctx, out)
	st := s.next(t)
	send(t, st, ev("oom", "oom", "hog", 3, 3, nil))
	if v := recv(t, out); !v.MeasureOnly || v.Kind != failover.VMFailure {
		t.Errorf("verdict %+v: want a measure-only VM failure", v)
	}
	st.End(nil)
	testenv.WaitFor(t, 5*time.Second, "stream lost", func() bool { return d.Stats().StreamsLost == 1 })
	select {
	case v := <-out:
		t.Errorf("verdict %+v for an ignored stream end", v)
	default:
	}
}

func TestProbeDetectorConfigErrors(t *testing.T) {
	for _, d := range []*failover.ProbeDetector{
		{},
		{Sources: []failover.Source{{Node: "a"}}},
	} {
		if err := d.Run(context.Background(), make(chan failover.Verdict)); err == nil {
			t.Errorf("Run accepted %+v", d)
		}
	}
}
