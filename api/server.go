package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/internal/ratelog"
	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/wire"
)

// callTimeout bounds how long one request waits for the guest's driver (a
// guest kernel emulated by the host answers in tens of milliseconds; a
// busy one can take seconds).
const callTimeout = 30 * time.Second

// MaxConns bounds the connections served at once; one more is answered
// with an error line and closed. With MaxRequestLine and eventBuffer it
// bounds what clients can make the server hold.
const MaxConns = 32

// Accept retries: a failed Accept (out of file descriptors, say) is
// retried after a delay that starts at acceptDelayMin and doubles up to
// acceptDelayMax, as net/http's Server does.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// maxSocketPath is the longest path a unix socket can be bound to
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// Server serves the API for one probe host.
type Server struct {
	h   *probe.Host
	ctl *Control // nil: no machine methods
	ln  net.Listener
	log *ratelog.Logger

	ctx    context.Context // cancelled by Close: ends calls in flight
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	acceptErrors, refused, longLines atomic.Uint64
}

// ServerStats counts what the server refused or survived.
type ServerStats struct {
	AcceptErrors uint64 `json:"accept_errors"` // failed Accepts, each retried
	Refused      uint64 `json:"refused"`       // connections beyond MaxConns
	LongLines    uint64 `json:"long_lines"`    // request lines beyond MaxRequestLine
}

// CheckPath reports whether Listen could serve at path: a path a unix
// socket can have, where nothing but a stale socket lies and no vmm
// listens. It does not check the directory. Its errors wrap one that says
// what is wrong without naming the path.
func CheckPath(path string) error {
	if err := checkPath(path); err != nil {
		return fmt.Errorf("api: %s: %w", path, err)
	}
	return nil
}

func checkPath(path string) error {
	if path == "" {
		return errors.New("no socket path")
	}
	if len(path) > maxSocketPath {
		return fmt.Errorf("a unix socket path has at most %d bytes, this one %d", maxSocketPath, len(path))
	}
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSocket == 0 {
		return errors.New("exists and is not a socket: not replacing it")
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return errors.New("another vmm is listening there")
	}
	return nil
}

// Listen creates the socket at path (replacing a stale one nobody listens
// on, never another kind of file) and serves h and, when ctl is not nil,
// the machine methods on it until Close. log receives, rate-limited, what
// the server survives (failed accepts, refused connections); nil discards
// it.
func Listen(path string, h *probe.Host, ctl *Control, log io.Writer) (*Server, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("api: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return serveOn(ln, h, ctl, log), nil
}

// serveOn serves h and ctl on ln until Close.
func serveOn(ln net.Listener, h *probe.Host, ctl *Control, log io.Writer) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{h: h, ctl: ctl, ln: ln, log: ratelog.Default(log), ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

// Close stops listening, ends every connection and call in flight and
// removes the socket.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.ln.Close()
	s.wg.Wait()
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{AcceptErrors: s.acceptErrors.Load(), Refused: s.refused.Load(), LongLines: s.longLines.Load()}
}

// accept serves connections until the listener is closed or the server
// shut down. Any other Accept error (EMFILE, ENFILE, ENOBUFS, ENOMEM,
// ECONNABORTED, EINTR, a timeout: the temporary ones, and any this code
// does not know) is counted, logged and retried after a backoff: giving up
// would leave the running guest without its control API for good.
func (s *Server) accept() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			delay = nextAcceptDelay(delay)
			s.acceptErrors.Add(1)
			s.log.Printf("api: accept: %v; retrying in %v", err, delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		s.admit(c)
	}
}

// nextAcceptDelay doubles the accept backoff within its bounds.
func nextAcceptDelay(d time.Duration) time.Duration {
	if d == 0 {
		return acceptDelayMin
	}
	return min(2*d, acceptDelayMax)
}

// admit serves c on a goroutine of its own, or refuses it when MaxConns
// are served or the server is closing.
func (s *Server) admit(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if len(s.conns) >= MaxConns {
		s.mu.Unlock()
		s.refused.Add(1)
		s.log.Printf("api: refused a connection: %d connections already served (the limit)", MaxConns)
		// The socket buffer of a new connection takes a short line at
		// once; the deadline covers a peer that somehow filled it.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		writeResponse(c, Response{Error: fmt.Sprintf("too many connections: the vmm serves at most %d at once", MaxConns)})
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.serve(c)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
}

// call runs one request against the host.
func (s *Server) call(req Request) Response {
	ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
	defer cancel()
	var r Response
	var err error
	switch req.Op {
	case OpAttach:
		r.IDs, err = s.attach(ctx, req.Spec)
	case OpDetach:
		err = s.h.Detach(ctx, req.ID)
	case OpList:
		r.Probes, err = s.h.List(ctx)
		st := s.h.Stats()
		r.Host = &st
	case OpInject:
		err = s.inject(ctx, req.Inject)
	case OpFence, OpStatus, OpStop, OpFenceOn, OpSnapshot, OpResume, OpDump:
		r, err = s.machineCall(req)
	default:
		err = fmt.Errorf("unknown op %q: want attach, detach, list, inject, events, fence, status, stop, fence_on, snapshot, resume or dump", req.Op)
	}
	if err != nil {
		r = Response{Error: err.Error(), IDs: r.IDs}
	}
	return r
}

// attach arms every probe a spec or catalogue entry names; on a refusal
// the ones already armed stay (their IDs come with the error).
func (s *Server) attach(ctx context.Context, spec string) ([]uint32, error) {
	specs, err := probe.ParseProbeFlag(spec)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, sp := range specs {
		id, err := s.h.Attach(ctx, sp)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Server) inject(ctx context.Context, in *Injection) error {
	if in == nil {
		return errors.New("inject: no injection given")
	}
	pi, err := in.probeInjection()
	if err != nil {
		return err
	}
	return s.h.Inject(ctx, pi)
}

// probeInjection checks an Injection and converts it for the host.
func (in *Injection) probeInjection() (probe.Injection, error) {
	kind, ok := wire.ParseInjectKind(in.Kind)
	if !ok {
		return probe.Injection{}, fmt.Errorf("inject: unknown kind %q: want %s", in.Kind, InjectKinds)
	}
	pi := probe.Injection{Kind: kind}
	switch kind {
	case wire.InjectSignal:
		if in.Comm == "" {
			return pi, errors.New("inject signal: which process? give its name (comm)")
		}
		if in.Signal < 1 || in.Signal > 64 {
			return pi, fmt.Errorf("inject signal: signal %d: want 1-64", in.Signal)
		}
		pi.Comm, pi.Signal = in.Comm, uint32(in.Signal)
	case wire.InjectHang, wire.InjectStall:
		if in.CPU < 0 || in.Seconds < 1 || in.Seconds > wire.InjectMaxSeconds {
			return pi, fmt.Errorf("inject %s: cpu %d, %d seconds: want cpu >= 0 and 1-%d seconds", in.Kind, in.CPU, in.Seconds, wire.InjectMaxSeconds)
		}
		pi.CPU, pi.Seconds = uint32(in.CPU), uint32(in.Seconds)
	}
	return pi, nil
}
