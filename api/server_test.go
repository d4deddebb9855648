package api

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/wire"
)

func serve(t *testing.T) (*probetest.Guest, string) {
	t.Helper()
	g := probetest.New(t)
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := Listen(sock, g.Host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return g, sock
}

func TestAttachListDetachOverTheSocket(t *testing.T) {
	g, sock := serve(t)
	r, err := Call(sock, Request{Op: OpAttach, Spec: "catalogue:oom:comm=httpd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IDs) != 2 || g.ArmedCount() != 2 {
		t.Fatalf("catalogue:oom armed %v (guest has %d)", r.IDs, g.ArmedCount())
	}
	if a, _ := g.Armed(r.IDs[0]); a.Comm != "httpd" {
		t.Errorf("the comm filter did not reach the guest: %+v", a)
	}
	l, err := Call(sock, Request{Op: OpList})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Probes) != 2 || l.Host == nil || l.Probes[0].Hits != 3 {
		t.Fatalf("list %+v", l)
	}
	if _, err := Call(sock, Request{Op: OpDetach, ID: r.IDs[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := Call(sock, Request{Op: OpDetach, ID: 999}); err == nil || !strings.Contains(err.Error(), "999") {
		t.Errorf("detaching an unknown id: %v", err)
	}
}

func TestBadRequestsAreAnswered(t *testing.T) {
	_, sock := serve(t)
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Op: "reboot"}, "unknown op"},
		{Request{Op: OpAttach, Spec: "p:x sym a=%zz"}, "zz"},
		{Request{Op: OpInject}, "no injection"},
		{Request{Op: OpInject, Inject: &Injection{Kind: "signal", Signal: 9}}, "which process"},
		{Request{Op: OpInject, Inject: &Injection{Kind: "hang", Seconds: 0}}, "seconds"},
		{Request{Op: OpInject, Inject: &Injection{Kind: "stall", Seconds: 3601}}, "1-3600"},
		{Request{Op: OpInject, Inject: &Injection{Kind: "meteor"}}, "unknown kind"},
	} {
		if _, err := Call(sock, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one with %q", tc.req, err, tc.want)
		}
	}
}

func TestInjectReachesTheGuest(t *testing.T) {
	g, sock := serve(t)
	if _, err := Call(sock, Request{Op: OpInject, Inject: &Injection{Kind: "signal", Comm: "httpd", Signal: 15}}); err != nil {
		t.Fatal(err)
	}
	in := g.Injects()
	if len(in) != 1 || in[0].Kind != wire.InjectSignal || in[0].Comm != "httpd" || in[0].Arg != 15 {
		t.Fatalf("guest got %+v", in)
	}
}

func TestEventStream(t *testing.T) {
	g, sock := serve(t)
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan probe.Event, 1)
	go c.Events(func(e probe.Event, _ []byte) bool { got <- e; return false })
	// The stream subscribes when the server reads the request: emit until
	// an event comes through, for at most 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.Emit(wire.Event{Probe: 1, Class: wire.ClassExit, PID: 7, Comm: "httpd", Value: 9, Args: make([]uint64, wire.MaxArgs)})
		select {
		case e := <-got:
			if e.Comm != "httpd" || e.Class != "exit" || e.Fields["signal"] != uint64(9) {
				t.Fatalf("event %+v", e)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no event came through the stream in 10 s")
}

func TestListenRefusesALiveSocket(t *testing.T) {
	_, sock := serve(t)
	if _, err := Listen(sock, probetest.New(t).Host, nil, nil); err == nil || !strings.Contains(err.Error(), "another vmm") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestListenLeavesOtherFilesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, probetest.New(t).Host, nil, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file: %v, want a refusal", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Listen removed the file there: %v", err)
	}
}

func TestCheckPathRefusesOverlongSocketPaths(t *testing.T) {
	long := "/tmp/" + strings.Repeat("s", 120) + ".sock"
	if err := CheckPath(long); err == nil || !strings.Contains(err.Error(), "at most 107 bytes") {
		t.Fatalf("CheckPath(%d bytes): %v", len(long), err)
	}
	if err := CheckPath(filepath.Join(t.TempDir(), "ok.sock")); err != nil {
		t.Fatalf("CheckPath of a free path: %v", err)
	}
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := Listen(sock, probetest.New(t).Host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.ln.(*net.UnixListener).SetUnlinkOnClose(false)
	s.Close() // leaves the socket file, as a killed vmm does
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("setup: %v", err)
	}
	s2, err := Listen(sock, probetest.New(t).Host, nil, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer s2.Close()
	callWithin(t, sock, 5*time.Second)
}
