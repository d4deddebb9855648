package probe_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
	. "github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/wire"
)

// Tests of a hostile or broken guest driver: every answer is matched to
// the request it answers, by type, and what is not counted as malformed.

// logBuf is a log writer the test reads while the host may write.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func (l *logBuf) lines() int { return strings.Count(l.String(), "\n") }

func shortCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel)
	return c
}

// A Reply to a stats request's sequence number used to panic the API
// goroutine (m.(wire.Stats)) and with it the VMM.
func TestReplyToAStatsRequestIsMalformed(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Answer(func(cmd wire.Message) ([]wire.Message, bool) {
		if s, ok := cmd.(wire.StatsRequest); ok {
			return []wire.Message{wire.Reply{Seq: s.Seq}}, true
		}
		return nil, false
	})
	if _, err := h.List(shortCtx(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List answered by a success reply: want it to wait out its deadline, got %v", err)
	}
	h.Drain()
	if st := h.Stats(); st.Malformed != 1 || st.Outstanding != 0 {
		t.Errorf("stats %+v: want the reply malformed and no request left", st)
	}
	// A refusal is how the driver answers a command it cannot parse.
	g.Answer(func(cmd wire.Message) ([]wire.Message, bool) {
		if s, ok := cmd.(wire.StatsRequest); ok {
			return []wire.Message{wire.Reply{Seq: s.Seq, Status: -int32(syscall.EBADMSG)}}, true
		}
		return nil, false
	})
	var ge *GuestError
	if _, err := h.List(ctx(t)); !errors.As(err, &ge) || !errors.Is(err, syscall.EBADMSG) {
		t.Fatalf("List refused with EBADMSG: want a GuestError, got %v", err)
	}
	if st := h.Stats(); st.Malformed != 1 {
		t.Errorf("a refusal counted as malformed: %+v", st)
	}
}

// An answer of the wrong type is not the answer: the attach waits for its
// Reply, and the probe is armed by it.
func TestMistypedAnswerDoesNotCompleteAnAttach(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Answer(func(cmd wire.Message) ([]wire.Message, bool) {
		if a, ok := cmd.(wire.Attach); ok {
			return []wire.Message{wire.Stats{Seq: a.Seq, Last: true}, wire.Reply{Seq: a.Seq, ID: a.ID}}, true
		}
		return nil, false
	})
	if _, err := h.Attach(ctx(t), mustSpec(t, "p:x do_exit")); err != nil {
		t.Fatal(err)
	}
	g.Answer(nil)
	list, err := h.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != "armed" {
		t.Errorf("list %+v: want the probe armed by its reply", list)
	}
	if st := h.Stats(); st.Malformed != 1 {
		t.Errorf("stats %+v: want the stats answering an attach malformed", st)
	}
}

// Stats parts nobody asked for used to be kept forever (1.36 GB after two
// floods); they are malformed, and the next real answer is not polluted.
func TestUnsolicitedStatsAreDropped(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	id, err := h.Attach(ctx(t), mustSpec(t, "p:x do_exit"))
	if err != nil {
		t.Fatal(err)
	}
	const flood = 3000 // under the inbox's 4096
	bogus := []wire.Stat{{ID: id, Kind: wire.KindKprobe, Hits: 999}, {ID: 77, Kind: wire.KindKprobe}}
	for seq := uint32(1); seq <= flood; seq++ { // the host's next sequence numbers among them
		g.Emit(wire.Stats{Seq: seq, Entries: bogus})
	}
	h.Drain()
	if st := h.Stats(); st.Malformed != flood || st.Outstanding != 0 {
		t.Fatalf("stats %+v: want %d malformed and no request outstanding", st, flood)
	}
	list, err := h.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Hits != 3 {
		t.Errorf("list %+v: want the guest's real counters (3 hits)", list)
	}
}

// One stats answer holds at most MaxProbes entries: more is malformed and
// fails the request instead of growing it.
func TestStatsAnswerIsBounded(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	g.Answer(func(cmd wire.Message) ([]wire.Message, bool) {
		s, ok := cmd.(wire.StatsRequest)
		if !ok {
			return nil, false
		}
		var out []wire.Message
		for i := 0; i <= wire.MaxProbes/wire.StatsPerMsg; i++ { // one part too many
			part := wire.Stats{Seq: s.Seq}
			for k := 0; k < wire.StatsPerMsg; k++ {
				part.Entries = append(part.Entries, wire.Stat{ID: uint32(1 + i*wire.StatsPerMsg + k), Kind: wire.KindKprobe})
			}
			out = append(out, part)
		}
		return append(out, wire.Stats{Seq: s.Seq, Last: true}), true
	})
	_, err := h.List(ctx(t))
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List given %d entries: want a protocol error, got %v", wire.MaxProbes+wire.StatsPerMsg, err)
	}
	h.Drain()
	// The part past the bound, and the Last after the request failed.
	if st := h.Stats(); st.Malformed != 2 || st.Outstanding != 0 {
		t.Errorf("stats %+v: want 2 malformed, no request outstanding", st)
	}
}

// An answer after its waiter gave up is malformed: it is not delivered to
// anyone, and the table keeps nothing for it. The probe stays listed, as
// unconfirmed, until detached.
func TestLateAnswerAfterTimeoutIsMalformed(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	var mu sync.Mutex
	var late wire.Attach
	g.Answer(func(cmd wire.Message) ([]wire.Message, bool) {
		if a, ok := cmd.(wire.Attach); ok {
			mu.Lock()
			late = a
			mu.Unlock()
			return nil, true // no answer, for now
		}
		return nil, false
	})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Attach(c, mustSpec(t, "p:x do_exit")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if st := h.Stats(); st.Outstanding != 0 {
		t.Fatalf("stats %+v: the abandoned attach is still outstanding", st)
	}
	mu.Lock()
	g.Emit(wire.Reply{Seq: late.Seq, ID: late.ID})
	mu.Unlock()
	h.Drain()
	if st := h.Stats(); st.Malformed != 1 {
		t.Errorf("stats %+v: want the late reply malformed", st)
	}
	list, err := h.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != "unconfirmed" {
		t.Fatalf("list %+v: want the unanswered probe listed as unconfirmed", list)
	}
	// The guest never armed it: detaching says so and forgets it.
	if err := h.Detach(ctx(t), late.ID); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("detach of a probe the guest lacks: %v", err)
	}
	if list, _ := h.List(ctx(t)); len(list) != 0 {
		t.Errorf("after detach, list %+v", list)
	}
}

// A guest that says hello a thousand times used to start a thousand
// re-arms (and goroutines), filling probedev's command backlog and the
// log. One re-arm is in flight at a time; the hellos during it ask for one
// more.
func TestHelloFloodRearmsOneAtATime(t *testing.T) {
	var log logBuf
	g := probetest.NewLogged(t, &log)
	h := g.Host
	g.Restart() // the first hello
	<-h.Ready()
	const n = 8
	for i := 0; i < n; i++ {
		if _, err := h.Attach(ctx(t), mustSpec(t, "p:x do_exit")); err != nil {
			t.Fatal(err)
		}
	}
	g.Hold() // the guest handles the re-arm but keeps its answers
	const hellos = 1000
	for i := 0; i < hellos; i++ {
		g.Restart()
	}
	h.Drain()
	testenv.WaitFor(t, 5*time.Second, "the first re-arm", func() bool { return g.Commands(wire.CmdAttach) >= 2*n })
	h.Drain()
	if got := g.Commands(wire.CmdAttach); got != 2*n {
		t.Fatalf("%d attach commands while the first re-arm is unanswered, want %d", got, 2*n)
	}
	if st := h.Stats(); st.Restarts != hellos || st.Outstanding != n {
		t.Errorf("stats %+v: want %d restarts and the %d re-arm commands outstanding", st, hellos, n)
	}
	g.Release()
	testenv.WaitFor(t, 5*time.Second, "every probe armed again", func() bool {
		list, err := h.List(ctx(t))
		if err != nil || len(list) != n {
			return false
		}
		for _, s := range list {
			if s.State != "armed" {
				return false
			}
		}
		return g.ArmedCount() == n
	})
	if got := g.Commands(wire.CmdAttach); got > 3*n {
		t.Errorf("%d attach commands for %d hellos: want at most one more re-arm (%d)", got, hellos, 3*n)
	}
	if lines := log.lines(); lines > 20 {
		t.Errorf("%d log lines for %d hellos:\n%s", lines, hellos, log.String())
	}
}

// Lines about malformed messages are rate-limited; the counter has them
// all. A guest message of a command's type is named, not hex-dumped.
func TestMalformedFloodIsCountedNotLogged(t *testing.T) {
	var log logBuf
	g := probetest.NewLogged(t, &log)
	h := g.Host
	g.Emit(wire.Detach{Seq: 1, ID: 2})
	h.Drain()
	if !strings.Contains(log.String(), "unexpected message type detach (0x2)") {
		t.Errorf("log %q: want the type's name and number", log.String())
	}
	const flood = 3000
	for i := 0; i < flood; i++ {
		h.Receive([]byte{0x83, 0, 3, 0}, 1)
	}
	h.Drain()
	if st := h.Stats(); st.Malformed != flood+1 {
		t.Errorf("malformed %d, want %d", st.Malformed, flood+1)
	}
	if lines := log.lines(); lines > 20 {
		t.Errorf("%d log lines for %d malformed messages", lines, flood)
	}
}

// The guest's errno is explained for the command it refused: EILSEQ on an
// attach is an offset inside an instruction, not libc's "invalid or
// incomplete multibyte or wide character".
func TestGuestErrorExplainsTheErrno(t *testing.T) {
	g := probetest.New(t)
	h := g.Host
	for _, c := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EILSEQ, "offset is not at an instruction boundary (EILSEQ)"},
		{syscall.ENOENT, "no such symbol in the guest kernel (ENOENT)"},
		{syscall.ENOSPC, "already holds its 64 probes (ENOSPC)"},
	} {
		g.Refuse(c.errno)
		_, err := h.Attach(ctx(t), mustSpec(t, "p:mid do_exit+3"))
		if !errors.Is(err, c.errno) {
			t.Fatalf("refused with %v: errors.Is fails for %v", c.errno, err)
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, "attach mid") {
			t.Errorf("refused with %s: message %q, want it to say %q", c.errno, msg, c.want)
		}
	}
	g.Refuse(0)
	id, err := h.Attach(ctx(t), mustSpec(t, "p:x do_exit"))
	if err != nil {
		t.Fatal(err)
	}
	g.Restart() // the guest forgets it; the host has no hello yet, so no re-arm
	if err := h.Detach(ctx(t), id); err == nil || !strings.Contains(err.Error(), "holds no probe with this id (ENOENT)") {
		t.Errorf("detach refused with ENOENT: %v", err)
	}
}
