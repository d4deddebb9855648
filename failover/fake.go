package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tracevisor/tracevisor/probe"
)

// FakeStream is an EventStream fed from Go, for tests and simulations:
// Send hands Events one event, End ends the stream with an error.
type FakeStream struct {
	c    chan probe.Event
	end  chan error
	once sync.Once
	done chan struct{}
}

// ErrStreamClosed is what a FakeStream's Events returns after Close.
var ErrStreamClosed = errors.New("failover: fake stream closed")

// NewFakeStream returns an open FakeStream.
func NewFakeStream() *FakeStream {
	return &FakeStream{c: make(chan probe.Event), end: make(chan error, 1), done: make(chan struct{})}
}

// Send hands e to Events and returns once it has taken it, or an error if
// the stream was closed or ctx ended first.
func (s *FakeStream) Send(ctx context.Context, e probe.Event) error {
	select {
	case s.c <- e:
		return nil
	case <-s.done:
		return ErrStreamClosed
	case <-ctx.Done():
		return fmt.Errorf("failover: fake stream: event not taken: %w", ctx.Err())
	}
}

// End makes Events return err (nil: a clean end of the stream).
func (s *FakeStream) End(err error) {
	select {
	case s.end <- err:
	default:
	}
}

// Events calls fn for each event sent until fn returns false, End or Close.
func (s *FakeStream) Events(fn func(e probe.Event, raw []byte) bool) error {
	for {
		select {
		case e := <-s.c:
			if !fn(e, nil) {
				return nil
			}
		case err := <-s.end:
			return err
		case <-s.done:
			return ErrStreamClosed
		}
	}
}

// Close ends the stream.
func (s *FakeStream) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// Closed reports whether Close was called.
func (s *FakeStream) Closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
