package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Stream is a Backend over a byte stream, normally a SOCK_STREAM unix
// socket between two VMM processes: each frame travels as a 4-byte
// big-endian length followed by the frame. A length above MaxFrameLen is
// a protocol error that ends the stream. To join two processes' switches,
// Listen in one, Dial in the other, and Switch.Attach each end.
type Stream struct {
	c      io.ReadWriteCloser
	wmu    sync.Mutex // one frame written at a time
	rmu    sync.Mutex
	hdr    [4]byte
	toobig atomic.Uint64
}

// NewStream wraps an established connection.
func NewStream(c io.ReadWriteCloser) *Stream { return &Stream{c: c} }

// Dial connects to a unix socket a peer is listening on.
func Dial(path string) (*Stream, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return NewStream(c), nil
}

// Listener accepts Stream peers on a unix socket.
type Listener struct{ l net.Listener }

// Listen creates the unix socket path and listens on it. Close removes it.
func Listen(path string) (*Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return &Listener{l: l}, nil
}

// Accept waits for the next peer.
func (l *Listener) Accept() (*Stream, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, err
	}
	return NewStream(c), nil
}

// Addr returns the socket's address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Close stops listening and unlinks the socket.
func (l *Listener) Close() error { return l.l.Close() }

// TooBig returns how many frames Recv discarded because they were larger
// than its buffer.
func (s *Stream) TooBig() uint64 { return s.toobig.Load() }

// Send implements Backend: it writes the length prefix and the frame in
// one write.
func (s *Stream) Send(frame []byte) error {
	if len(frame) > MaxFrameLen {
		return fmt.Errorf("virtio-net: frame of %d bytes exceeds %d", len(frame), MaxFrameLen)
	}
	msg := make([]byte, 4+len(frame))
	binary.BigEndian.PutUint32(msg, uint32(len(frame)))
	copy(msg[4:], frame)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.c.Write(msg)
	return err
}

// ErrProtocol is returned by Recv when the peer sent a length above
// MaxFrameLen.
var ErrProtocol = errors.New("virtio-net: stream frame length above MaxFrameLen")

// Recv implements Backend. It returns io.EOF when the peer closed between
// frames and io.ErrUnexpectedEOF when it closed inside one.
func (s *Stream) Recv(buf []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		if _, err := io.ReadFull(s.c, s.hdr[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(s.hdr[:])
		if n > MaxFrameLen {
			return 0, fmt.Errorf("%w: %d", ErrProtocol, n)
		}
		if int(n) <= len(buf) {
			if _, err := io.ReadFull(s.c, buf[:n]); err != nil {
				return 0, noEOF(err)
			}
			return int(n), nil
		}
		s.toobig.Add(1)
		if _, err := io.CopyN(io.Discard, s.c, int64(n)); err != nil {
			return 0, noEOF(err)
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Close implements Backend.
func (s *Stream) Close() error { return s.c.Close() }
