package net

import (
	"io"
	"sync"
	"sync/atomic"
)

// PortQueueLen bounds the frames queued to one switch port that its reader
// has not taken; beyond it frames to that port are dropped and counted.
const PortQueueLen = 256

// Switch is an in-process learning Ethernet switch. Every Port is a
// Backend. A frame sent on a port teaches the switch that its source MAC
// lives behind that port; it is then forwarded to the port that learned its
// destination MAC, or flooded to every other port when the destination is
// broadcast, multicast or unknown. Learned addresses do not age out; they
// move when a MAC shows up on another port and are forgotten when their
// port closes. Safe for concurrent use.
type Switch struct {
	mu    sync.RWMutex
	ports map[*Port]struct{}
	fdb   map[[6]byte]*Port
}

// NewSwitch returns a switch with no ports.
func NewSwitch() *Switch {
	return &Switch{ports: map[*Port]struct{}{}, fdb: map[[6]byte]*Port{}}
}

// Port is one port of a Switch, a Backend.
type Port struct {
	sw     *Switch
	in     chan []byte // frames for this port's reader
	done   chan struct{}
	once   sync.Once
	sent   atomic.Uint64
	recvd  atomic.Uint64
	drops  atomic.Uint64 // frames to this port dropped: queue full
	toobig atomic.Uint64 // frames discarded by Recv: larger than its buffer
}

// PortStats are one port's counters.
type PortStats struct {
	Sent     uint64 // frames sent into the switch on this port
	Received uint64 // frames returned by Recv
	Dropped  uint64 // frames for this port dropped because its queue was full
	TooBig   uint64 // frames discarded by Recv because they exceeded its buffer
}

// Port adds a port to the switch.
func (s *Switch) Port() *Port {
	p := &Port{sw: s, in: make(chan []byte, PortQueueLen), done: make(chan struct{})}
	s.mu.Lock()
	s.ports[p] = struct{}{}
	s.mu.Unlock()
	return p
}

// Stats returns the port's counters.
func (p *Port) Stats() PortStats {
	return PortStats{Sent: p.sent.Load(), Received: p.recvd.Load(), Dropped: p.drops.Load(), TooBig: p.toobig.Load()}
}

// Send implements Backend: it switches a copy of frame. Frames shorter
// than an Ethernet header are ignored.
func (p *Port) Send(frame []byte) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	if len(frame) < EthHeaderLen {
		return nil
	}
	p.sent.Add(1)
	f := append([]byte(nil), frame...) // shared read-only by the receivers
	var dst, src [6]byte
	copy(dst[:], f[0:6])
	copy(src[:], f[6:12])
	s := p.sw

	s.mu.RLock()
	learned := s.fdb[src] == p
	s.mu.RUnlock()
	if !learned && src[0]&1 == 0 {
		s.mu.Lock()
		if _, open := s.ports[p]; open {
			s.fdb[src] = p
		}
		s.mu.Unlock()
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if dst[0]&1 == 0 {
		if out, ok := s.fdb[dst]; ok {
			if out != p {
				out.enqueue(f)
			}
			return nil
		}
	}
	for out := range s.ports {
		if out != p {
			out.enqueue(f)
		}
	}
	return nil
}

func (p *Port) enqueue(f []byte) {
	select {
	case p.in <- f:
	default:
		p.drops.Add(1)
	}
}

// Recv implements Backend.
func (p *Port) Recv(buf []byte) (int, error) {
	for {
		select {
		case f := <-p.in:
			if len(f) > len(buf) {
				p.toobig.Add(1)
				continue
			}
			p.recvd.Add(1)
			return copy(buf, f), nil
		case <-p.done:
			return 0, ErrClosed
		}
	}
}

// Close implements Backend: it detaches the port from the switch and
// forgets the addresses learned on it.
func (p *Port) Close() error {
	p.once.Do(func() {
		s := p.sw
		s.mu.Lock()
		delete(s.ports, p)
		for mac, q := range s.fdb {
			if q == p {
				delete(s.fdb, mac)
			}
		}
		s.mu.Unlock()
		close(p.done)
	})
	return nil
}

// Attach connects an external backend (a Stream to another process's
// switch, a TAP) to a new port: frames the switch forwards to the port are
// sent on b, frames received from b enter the switch through the port. It
// returns a Closer that closes b and the port and waits for the two
// forwarding goroutines; the link also goes down by itself when b.Recv
// fails (its peer closed).
func (s *Switch) Attach(b Backend) io.Closer {
	p := s.Port()
	l := &link{p: p, b: b}
	l.wg.Add(2)
	go func() { // backend -> switch
		defer l.wg.Done()
		defer l.shut()
		buf := make([]byte, MaxFrameLen)
		for {
			n, err := b.Recv(buf)
			if err != nil {
				return
			}
			p.Send(buf[:n])
		}
	}()
	go func() { // switch -> backend
		defer l.wg.Done()
		defer l.shut()
		for {
			select {
			case f := <-p.in:
				p.recvd.Add(1)
				b.Send(f) // a failing peer shows up in Recv
			case <-p.done:
				return
			}
		}
	}()
	return l
}

type link struct {
	p    *Port
	b    Backend
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

func (l *link) shut() {
	l.once.Do(func() {
		l.p.Close()
		l.err = l.b.Close()
	})
}

// Close implements io.Closer.
func (l *link) Close() error {
	l.shut()
	l.wg.Wait()
	return l.err
}
