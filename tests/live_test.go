package tests

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
)

// liveGuest is a guest that keeps running while a test drives it through
// vmm's API socket and watches its probe events.
type liveGuest struct {
	t     *testing.T
	sock  string
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan error
	stdin io.WriteCloser // the console's input (restoreShell), or nil

	mu     sync.Mutex
	events []probe.Event
	seen   chan struct{} // pinged at each event
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startLiveGuest boots `vmm run --api SOCK runFlags...` and waits until
// the guest's probe driver answers; cleanup kills what is left of it.
func startLiveGuest(t *testing.T, runFlags ...string) *liveGuest {
	t.Helper()
	return launchLiveGuest(t, false, runFlags...)
}

// launchLiveGuest is startLiveGuest, with the console's input a pipe
// (liveGuest.stdin) if input.
func launchLiveGuest(t *testing.T, input bool, runFlags ...string) *liveGuest {
	t.Helper()
	g := &liveGuest{t: t, sock: filepath.Join(t.TempDir(), "vm.sock"), out: &syncBuffer{},
		done: make(chan error, 1), seen: make(chan struct{}, 1)}
	g.cmd = vmmCommand(t, append([]string{"run", "--api", g.sock}, runFlags...)...)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if input {
		var err error
		if g.stdin, err = g.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		select {
		case <-g.done:
		case <-time.After(time.Minute):
			t.Errorf("vmm (pid %d) did not end in a minute after SIGKILL", g.cmd.Process.Pid)
		}
		t.Logf("guest output:\n%s", g.out.String())
	})
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := apiCall(g.sock, api.Request{Op: api.OpList})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's probe driver did not answer in 5 minutes: %v", err)
		}
		select {
		case err := <-g.done:
			t.Fatalf("vmm ended before its probe driver answered (%v)", err)
		case <-time.After(time.Second):
		}
	}
	go g.collect()
	return g
}

// as makes t the test that the guest's helpers fail, for the length of a
// subtest: defer g.as(t)().
func (g *liveGuest) as(t *testing.T) func() {
	prev := g.t
	g.t = t
	return func() { g.t = prev }
}

// collect streams events from the API into g.events.
func (g *liveGuest) collect() {
	c, err := api.Dial(g.sock)
	if err != nil {
		return
	}
	defer c.Close()
	c.Events(func(e probe.Event, _ []byte) bool {
		g.mu.Lock()
		g.events = append(g.events, e)
		g.mu.Unlock()
		select {
		case g.seen <- struct{}{}:
		default:
		}
		return true
	})
}

// apiTimeout bounds one API request in a test: the server gives the
// guest's driver 30 s, so only a stuck vmm takes longer.
const apiTimeout = time.Minute

// apiCall is api.Call with a deadline: a vmm that never answers fails the
// request after apiTimeout instead of hanging the test.
func apiCall(sock string, req api.Request) (api.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return api.CallContext(ctx, sock, req)
}

// call makes one API request, failing the test on an error.
func (g *liveGuest) call(req api.Request) api.Response {
	g.t.Helper()
	r, err := apiCall(g.sock, req)
	if err != nil {
		g.t.Fatalf("%s: %v", req.Op, err)
	}
	return r
}

// inject makes one inject request, returning its error (a service that is
// respawning may not be there yet: callers retry).
func (g *liveGuest) inject(in api.Injection) error {
	_, err := apiCall(g.sock, api.Request{Op: api.OpInject, Inject: &in})
	return err
}

// mark returns how many events arrived so far: waitEvent after it looks
// only at later ones.
func (g *liveGuest) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.events)
}

// waitEvent returns the first event after mark that match accepts.
func (g *liveGuest) waitEvent(mark int, what string, match func(probe.Event) bool) probe.Event {
	g.t.Helper()
	e, ok := g.waitEventWithin(mark, 2*time.Minute, match)
	if !ok {
		g.t.Fatalf("no %s in 2 minutes; events: %+v", what, g.since(mark))
	}
	return e
}

// waitEventWithin is waitEvent giving up after d.
func (g *liveGuest) waitEventWithin(mark int, d time.Duration, match func(probe.Event) bool) (probe.Event, bool) {
	g.t.Helper()
	deadline := time.After(d)
	for {
		g.mu.Lock()
		for _, e := range g.events[mark:] {
			if match(e) {
				g.mu.Unlock()
				return e, true
			}
		}
		g.mu.Unlock()
		select {
		case <-g.seen:
		case <-time.After(time.Second):
		case err := <-g.done:
			g.done <- err
			g.t.Fatalf("vmm ended (%v) while waiting for an event", err)
		case <-deadline:
			return probe.Event{}, false
		}
	}
}

// probeEvents returns the events after mark that probe id sent.
func (g *liveGuest) probeEvents(mark int, id uint32) []probe.Event {
	var out []probe.Event
	for _, e := range g.since(mark) {
		if e.ProbeID == id {
			out = append(out, e)
		}
	}
	return out
}

// waitProbeEvents waits up to d for the host to have streamed exactly
// want() events of probe id after mark (want is asked again at each look:
// the guest's counters may still be moving) and returns them; it fails
// the test, with both numbers, if they never agree.
func (g *liveGuest) waitProbeEvents(mark int, id uint32, d time.Duration, want func() uint64) []probe.Event {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := g.probeEvents(mark, id)
		w := want()
		if uint64(len(evs)) == w {
			return evs
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("probe %d: the guest delivered %d events, the host streamed %d in %v", id, w, len(evs), d)
		}
		select {
		case <-g.seen:
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// since returns the events after mark.
func (g *liveGuest) since(mark int) []probe.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]probe.Event(nil), g.events[mark:]...)
}

// wait waits for vmm to end and returns its exit code.
func (g *liveGuest) wait() int {
	g.t.Helper()
	select {
	case err := <-g.done:
		g.done <- err
		code, err := exitCode(err)
		if err != nil {
			g.t.Fatal(err)
		}
		return code
	case <-time.After(3 * time.Minute):
		g.t.Fatal("vmm did not end in 3 minutes")
	}
	return 0
}
