package probe_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
	. "github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/wire"
)

func mustSpec(t *testing.T, s string) Spec {
	t.Helper()
	sp, err := ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAttachListDetach(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	var ids []uint32
	for i := 0; i < 6; i++ { // more than one stats message's worth
		id, err := h.Attach(ctx(t), mustSpec(t, "p:sig send_signal_locked sig=%di class:signal"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if a, _ := g.Armed(ids[0]); g.ArmedCount() != 6 || a.Symbol != "send_signal_locked" {
		t.Fatalf("guest armed %d probes, the first %+v", g.ArmedCount(), a)
	}
	list, err := h.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 6 || list[0].ID != ids[0] || list[0].Hits != 3 || list[0].Dropped != 1 || list[0].State != "armed" || list[0].Name != "sig" {
		t.Fatalf("list %+v", list)
	}
	if err := h.Detach(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Armed(ids[0]); ok {
		t.Error("detach left the probe armed in the guest")
	}
	if err := h.Detach(ctx(t), ids[0]); err == nil {
		t.Error("detaching a detached probe succeeded")
	}
	if list, _ := h.List(ctx(t)); len(list) != 5 {
		t.Errorf("after detach, %d probes listed", len(list))
	}
}

func TestGuestRefusalIsAnErrno(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Refuse(syscall.ENOENT)
	_, err := h.Attach(ctx(t), mustSpec(t, "p:x no_such_symbol"))
	var ge *GuestError
	if !errors.As(err, &ge) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("want a GuestError wrapping ENOENT, got %v", err)
	}
	if list, _ := h.List(ctx(t)); len(list) != 0 {
		t.Errorf("a refused probe is listed: %+v", list)
	}
}

func TestPreloadedRefusalIsRemembered(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Refuse(syscall.EINVAL)
	if _, err := h.Preload(mustSpec(t, "p:x bad")); err != nil {
		t.Fatal(err)
	}
	h.Drain()
	if list, _ := h.List(ctx(t)); len(list) != 0 {
		t.Errorf("a refused boot probe is listed as attached: %+v", list)
	}
}

func TestNoAnswerTimesOut(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Silence()
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Attach(c, mustSpec(t, "p:x do_exit")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
}

func TestEventsAreDecodedNamedAndMapped(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	sub := h.Subscribe(8)
	id, err := h.Attach(ctx(t), mustSpec(t, "p:kill send_signal_locked sig=%di task=%dx class:signal"))
	if err != nil {
		t.Fatal(err)
	}
	g.Emit(wire.Event{Probe: id, Class: wire.ClassSignal, CPU: 1, GuestNS: 7, PID: 42, TID: 43,
		Comm: "sleep", Args: []uint64{15, 0xffff888000001000, 0, 0, 0, 0}, Sig: 15, OtherPID: 40, OtherComm: "sh", Dropped: 2})
	var e Event
	select {
	case e = <-sub.C:
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the subscription in 10 s")
	}
	if e.Probe != "kill" || e.Class != "signal" || e.Comm != "sleep" || e.PID != 42 || e.CPU != 1 {
		t.Fatalf("event %+v", e)
	}
	if e.GuestNS != 7 || e.HostNS != 1007 || e.ReceivedNS != probetest.ReceivedNS || e.DecodedNS == 0 {
		t.Errorf("times: guest %d host %d received %d decoded %d", e.GuestNS, e.HostNS, e.ReceivedNS, e.DecodedNS)
	}
	if e.Args["sig"] != 15 || e.Args["task"] != 0xffff888000001000 || len(e.Args) != 2 {
		t.Errorf("args %v", e.Args)
	}
	if e.Fields["sig"] != uint32(15) || e.Fields["sender_pid"] != uint32(40) || e.Fields["sender_comm"] != "sh" {
		t.Errorf("class fields %v", e.Fields)
	}
	if st := h.Stats(); st.Events != 1 || st.GuestDrops != 2 {
		t.Errorf("host stats %+v", st)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	in := Event{Probe: "exit", ProbeID: 3, Class: "exit", PID: 9, Comm: "httpd", GuestNS: 1, HostNS: 2,
		ReceivedNS: 3, DecodedNS: 4, Fields: map[string]any{"code": uint64(15), "signal": uint64(15), "status": uint64(0)}}
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"probe":"exit","probe_id":3,"class":"exit","pid":9,"tid":0,"comm":"httpd","cpu":0,"guest_ns":1,"host_ns":2,"received_ns":3,"decoded_ns":4,"code":15,"signal":15,"status":0}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var out Event
	if err := out.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if out.Comm != "httpd" || out.Fields["code"] != uint64(15) || len(out.Fields) != 3 {
		t.Errorf("round trip: %+v", out)
	}
}

func TestMalformedAndSlowSubscribersAreCounted(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	sub := h.Subscribe(1)
	h.Receive([]byte{0x83, 0, 3, 0}, 1) // an event type with a bad length
	for i := 0; i < 3; i++ {
		g.Emit(wire.Event{Probe: 9, Class: wire.ClassGeneric, Args: make([]uint64, wire.MaxArgs)})
	}
	h.Drain()
	if st := h.Stats(); st.Malformed != 1 || st.Events != 3 {
		t.Errorf("stats %+v", st)
	}
	if sub.Dropped() != 2 {
		t.Errorf("slow subscriber dropped %d, want 2", sub.Dropped())
	}
}

func TestInjectSendsTheFault(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	if err := h.Inject(ctx(t), Injection{Kind: wire.InjectHang, CPU: 1, Seconds: 5}); err != nil {
		t.Fatal(err)
	}
	if err := h.Inject(ctx(t), Injection{Kind: wire.InjectSignal, Comm: "httpd", Signal: 9}); err != nil {
		t.Fatal(err)
	}
	if err := h.Inject(ctx(t), Injection{Kind: wire.InjectStall, CPU: 3, Seconds: 60}); err != nil {
		t.Fatal(err)
	}
	in := g.Injects()
	if len(in) != 3 || in[0].Arg != 1 || in[0].Arg2 != 5 || in[1].Comm != "httpd" || in[1].Arg != 9 ||
		in[2].Kind != wire.InjectStall || in[2].Arg != 0 || in[2].Arg2 != 60 {
		t.Errorf("injects %+v", in)
	}
}

// A driver that says hello again has lost its probes: the host arms the
// attached ones again under their ids, and not the detached ones.
func TestRearmWhenTheDriverStartsAgain(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Restart() // the first hello: nothing to re-arm
	<-h.Ready()
	keep, err := h.Attach(ctx(t), mustSpec(t, "p:keep do_exit"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := h.Attach(ctx(t), mustSpec(t, "p:gone vfs_read"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Detach(ctx(t), gone); err != nil {
		t.Fatal(err)
	}
	g.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, ok := g.Armed(keep)
		if ok {
			if a.Symbol != "do_exit" || g.ArmedCount() != 1 {
				t.Fatalf("re-armed %+v, %d probes in all; want only keep", a, g.ArmedCount())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attached probe was not armed again after the second hello")
		}
		time.Sleep(time.Millisecond)
	}
	list, err := h.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != keep || list[0].State != "armed" {
		t.Errorf("after re-arming, list %+v", list)
	}
}

// A call waiting on a guest that gets fenced fails at once, and so does a
// later one, instead of waiting out its deadline.
func TestGuestStoppedEndsWaits(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Silence() // the guest never answers
	errc := make(chan error, 1)
	go func() {
		errc <- h.Inject(context.Background(), Injection{Kind: wire.InjectSignal, Comm: "httpd", Signal: 9})
	}()
	testenv.WaitFor(t, 5*time.Second, "the inject to be outstanding", func() bool { return h.Stats().Outstanding == 1 })
	h.GuestStopped()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrGuestStopped) {
			t.Fatalf("inject after the fence: %v, want ErrGuestStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the inject still waits after the guest was fenced")
	}
	start := time.Now()
	if _, err := h.List(context.Background()); !errors.Is(err, ErrGuestStopped) || time.Since(start) > time.Second {
		t.Errorf("a list after the fence: %v after %v", err, time.Since(start))
	}
	if st := h.Stats(); st.Outstanding != 0 {
		t.Errorf("%d calls still outstanding", st.Outstanding)
	}
}
