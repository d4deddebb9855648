package api

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// A vmm that accepts but never answers: CallContext returns at ctx's end
// with its cause instead of waiting for ever.
func TestCallContextGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := CallContext(ctx, path, Request{Op: OpStatus})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CallContext on a mute vmm = %v, want the deadline", err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Fatalf("returned after %v, before the deadline", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CallContext still waiting 10 s after its 50 ms deadline")
	}
}

func TestCallContextAnswers(t *testing.T) {
	_, sock := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := CallContext(ctx, sock, Request{Op: OpList}); err != nil {
		t.Fatalf("CallContext on a live server: %v", err)
	}
}
