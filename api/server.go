package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/wire"
)

// callTimeout bounds how long one request waits for the guest's driver (a
// guest kernel emulated by the host answers in tens of milliseconds; a
// busy one can take seconds).
const callTimeout = 30 * time.Second

// eventBuffer is how many events a slow "events" client may lag behind
// before it loses some (counted in the stream's closing line).
const eventBuffer = 4096

// Server serves the API for one probe host.
type Server struct {
	h  *probe.Host
	ln net.Listener

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Listen creates the socket at path (replacing a stale one nobody listens
// on) and serves h on it until Close.
func Listen(path string, h *probe.Host) (*Server, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("api: %s: another vmm is listening there", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s := &Server{h: h, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops listening, ends every connection and removes the socket.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	in := bufio.NewScanner(c)
	enc := json.NewEncoder(c)
	for in.Scan() {
		var req Request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			enc.Encode(Response{Error: "bad request: " + err.Error()})
			return
		}
		if req.Op == OpEvents {
			s.stream(c, enc)
			return
		}
		if err := enc.Encode(s.call(req)); err != nil {
			return
		}
	}
}

// call runs one request against the host.
func (s *Server) call(req Request) Response {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
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
	default:
		err = fmt.Errorf("unknown op %q: want attach, detach, list, inject or events", req.Op)
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

// stream writes events to the connection until it fails or the host closes.
func (s *Server) stream(c net.Conn, enc *json.Encoder) {
	sub := s.h.Subscribe(eventBuffer)
	defer sub.Cancel()
	go func() {
		// The client writes nothing more; its EOF or error ends the stream.
		buf := make([]byte, 1)
		c.Read(buf)
		sub.Cancel()
	}()
	for e := range sub.C {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}
