package failover_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

func check(c failover.Checker, d time.Duration) (error, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx)
	return err, time.Since(start)
}

func TestHTTPCheck(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/gone", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux) // 127.0.0.1 only
	defer srv.Close()
	defer close(release)

	if err, _ := check(failover.HTTPCheck(srv.URL+"/ok"), 5*time.Second); err != nil {
		t.Errorf("/ok: %v", err)
	}
	if err, _ := check(failover.HTTPCheck(srv.URL+"/moved"), 5*time.Second); err != nil {
		t.Errorf("/moved (3xx, not followed): %v", err)
	}
	if err, _ := check(failover.HTTPCheck(srv.URL+"/broken"), 5*time.Second); err == nil {
		t.Error("/broken: a 500 passed")
	}
	err, took := check(failover.HTTPCheck(srv.URL+"/slow"), 50*time.Millisecond)
	if err == nil || took > 2*time.Second {
		t.Errorf("/slow: %v after %v: want a failure at the deadline", err, took)
	}
	if err, _ := check(failover.HTTPCheck("http://[::1"), time.Second); err == nil {
		t.Error("a bad URL passed")
	}
	url := srv.URL
	srv.Close()
	if err, _ := check(failover.HTTPCheck(url+"/ok"), 5*time.Second); err == nil {
		t.Error("a closed server passed")
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err, _ := check(failover.TCPCheck(addr), 5*time.Second); err != nil {
		t.Errorf("listening: %v", err)
	}
	l.Close()
	if err, _ := check(failover.TCPCheck(addr), 5*time.Second); err == nil {
		t.Error("closed port passed")
	}
}

func TestVMMCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vm.sock")
	if err, _ := check(failover.VMMCheck(path), 5*time.Second); err == nil {
		t.Error("no socket passed")
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err, _ := check(failover.VMMCheck(path), 5*time.Second); err != nil {
		t.Errorf("listening vmm: %v", err)
	}
}
