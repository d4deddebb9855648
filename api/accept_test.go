package api

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/probe/probetest"
)

// flakyListener fails its first fails Accepts with err, then accepts.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func listenFlaky(t *testing.T, fails int32, err error) (*Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, lerr := net.Listen("unix", sock)
	if lerr != nil {
		t.Fatal(lerr)
	}
	fl := &flakyListener{Listener: ln, err: err}
	fl.fails.Store(fails)
	s := serveOn(fl, probetest.New(t).Host, nil, nil)
	t.Cleanup(s.Close)
	return s, sock
}

// callWithin makes one list call and fails the test if it takes longer
// than d.
func callWithin(t *testing.T, sock string, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Call(sock, Request{Op: OpList})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("no answer within %v: the server stopped accepting", d)
	}
}

func TestAcceptSurvivesTemporaryErrors(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"EMFILE", emfile},
		{"ECONNABORTED", &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}},
		{"unknown", errors.New("something odd")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, sock := listenFlaky(t, 3, tc.err)
			callWithin(t, sock, 5*time.Second)
			if n := s.Stats().AcceptErrors; n != 3 {
				t.Errorf("AcceptErrors = %d, want 3", n)
			}
			// 5 + 10 + 20 ms of backoff: no busy loop.
			if d := time.Since(start); d < 35*time.Millisecond {
				t.Errorf("3 failed accepts retried in %v: want at least 35ms of backoff", d)
			}
			callWithin(t, sock, 5*time.Second) // and it keeps serving
		})
	}
}

func TestAcceptDelayDoublesToOneSecond(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 10 {
		d = nextAcceptDelay(d)
		got = append(got, d)
	}
	var want []time.Duration
	for _, ms := range []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000} {
		want = append(want, ms*time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
}

func TestCloseEndsAcceptBackoff(t *testing.T) {
	s, _ := listenFlaky(t, 1<<30, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.ENFILE)})
	// Let it reach the long delays.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().AcceptErrors < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d accept errors in 5s", s.Stats().AcceptErrors)
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Close waited out the accept backoff")
	}
}
