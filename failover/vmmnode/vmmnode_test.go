package vmmnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover/golden"
	"github.com/tracevisor/tracevisor/failover/netaddr"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

func TestGuestScript(t *testing.T) {
	addrs, err := netaddr.NodeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	s := GuestScript("vm2", addrs, netaddr.DefaultService)
	for _, want := range []string{
		"echo vm2 > /www/index.html",
		addrs.GuestCommands(netaddr.DefaultService),
		"ip addr replace 10.77.2.2/24 dev eth0",
		"/tmp/httpd -f -p 80 -h /www & pid=$!",
		"while :; do sleep 100000 & wait $!; done",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("guest script lacks %q:\n%s", want, s)
		}
	}
	// The loop comes after httpd: the guest outlives its service.
	if strings.Index(s, "while :") < strings.Index(s, "/tmp/httpd -f") {
		t.Errorf("the keep-alive loop comes before httpd:\n%s", s)
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n rejects the guest script: %v: %s\n%s", err, out, s)
		}
	}
}

func TestNodeArgs(t *testing.T) {
	addrs, _ := netaddr.NodeAddrs(0)
	c := &Cluster{cfg: Config{Mem: "128M", Service: netaddr.DefaultService, Probes: DefaultProbes("httpd"),
		ExtraArgs: []string{"--fence-on", "class=oom"}}}
	n := &Node{Name: "vm1", Addrs: addrs, Sock: "/d/vm1.sock", c: c}
	a := n.args("/d/vm1.1.events.jsonl", "")
	dash := slices.Index(a, "--")
	if dash < 0 || a[dash+1] != "sh" || a[dash+2] != "-c" || a[dash+3] != GuestScript("vm1", addrs, netaddr.DefaultService) {
		t.Fatalf("want -- sh -c SCRIPT at the end: %q", a)
	}
	flags := strings.Join(a[:dash], " ")
	for _, want := range []string{"run --api /d/vm1.sock --net tap:tv0 --mem 128M --events /d/vm1.1.events.jsonl",
		"--probe catalogue:signal --probe catalogue:exit:comm=httpd --probe catalogue:oom --probe catalogue:panic",
		"--fence-on class=oom"} {
		if !strings.Contains(flags, want) {
			t.Errorf("vmm flags %q lack %q", flags, want)
		}
	}

	// A restore: the boot's --net and --mem in the same order, the
	// snapshot named, no probes and no guest command.
	r := strings.Join(n.args("/d/vm1.2.events.jsonl", "/d/vm1.golden"), " ")
	want := "run --api /d/vm1.sock --net tap:tv0 --mem 128M --events /d/vm1.2.events.jsonl --fence-on class=oom --restore /d/vm1.golden"
	if r != want {
		t.Errorf("restore flags %q, want %q", r, want)
	}
}

// A node boots alike in every cluster with the same names and config, so
// clusters that share a golden store share its snapshot; another node,
// or the same one with other memory or probes, has a snapshot of its own.
func TestGoldenKeyAcrossClusters(t *testing.T) {
	key := func(dir, name string, idx int, mem string, probes []string) string {
		addrs, _ := netaddr.NodeAddrs(idx)
		c := &Cluster{cfg: Config{Dir: dir, Mem: mem, Service: netaddr.DefaultService, Probes: probes}}
		n := &Node{Name: name, Addrs: addrs, Sock: filepath.Join(dir, name+".sock"), c: c}
		return golden.Key(n.args("", ""))
	}
	p := DefaultProbes("httpd")
	base := key("/tmp/a", "vm1", 0, "48M", p)
	if k := key("/tmp/b", "vm1", 0, "48M", p); k != base {
		t.Errorf("vm1 in another cluster's directory: key %s, want %s", k, base)
	}
	for what, k := range map[string]string{
		"another node":    key("/tmp/a", "vm2", 1, "48M", p),
		"other memory":    key("/tmp/a", "vm1", 0, "256M", p),
		"other probes":    key("/tmp/a", "vm1", 0, "48M", p[:1]),
		"another address": key("/tmp/a", "vm1", 1, "48M", p),
	} {
		if k == base {
			t.Errorf("%s: the same golden key", what)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Dir: "/tmp", Nodes: []string{"a"}},
		{VMM: "vmm", Nodes: []string{"a"}},
		{VMM: "vmm", Dir: "/tmp"},
		{VMM: "vmm", Dir: "/tmp", Nodes: []string{"a", "a"}},
		{VMM: "vmm", Dir: "/tmp", Nodes: []string{"a; reboot"}},
		{VMM: "vmm", Dir: "/tmp", Nodes: []string{""}},
	} {
		if c, err := New(cfg); err == nil {
			c.Close()
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
}

func TestPollerOutage(t *testing.T) {
	p := &Poller{}
	t0 := time.Unix(1700000000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	down := errors.New("connection refused")
	// Out of order, as concurrent requests end: by the time they were sent.
	p.record(poll{sent: at(50), ended: at(50).Add(time.Second), by: "vm1", err: nil})
	p.record(poll{sent: at(200), ended: at(200).Add(time.Second), by: "vm2", err: nil})
	p.record(poll{sent: at(0), ended: at(0).Add(time.Second), by: "vm1", err: nil})
	p.record(poll{sent: at(150), ended: at(150).Add(time.Second), by: "", err: errors.New("timeout")})
	p.record(poll{sent: at(100), ended: at(100).Add(time.Second), by: "", err: down})
	p.record(poll{sent: at(300), ended: at(300).Add(time.Second), by: "vm2", err: nil})
	p.record(poll{sent: at(250), ended: at(250).Add(time.Second), by: "", err: errors.New("later")})
	o := p.Outage()
	if o.Requests != 7 || o.Failed != 3 || !o.FirstFailed.Equal(at(100)) || !o.FirstOK.Equal(at(200)) ||
		o.FirstOKBy != "vm2" || o.FirstErr != down.Error() || o.First != "vm1" || o.Last != "vm2" {
		t.Fatalf("outage %+v", o)
	}
	if o.Duration() != 100*time.Millisecond {
		t.Errorf("duration %v, want 100ms", o.Duration())
	}
	// The first answer from vm2 arrived a second after its request (at
	// 200 ms) was sent; none came from vm9.
	if got, ok := p.FirstAnswerBy("vm2"); !ok || !got.Equal(at(1200)) {
		t.Errorf("FirstAnswerBy(vm2) = %v %v, want %v", got, ok, at(1200))
	}
	if _, ok := p.FirstAnswerBy("vm9"); ok {
		t.Error("an answer from a node that never answered")
	}
	p.Reset()
	p.record(poll{sent: time.Now().Add(-time.Second), ended: time.Now().Add(-time.Second).Add(time.Second), by: "", err: errors.New("sent before the reset")})
	p.record(poll{sent: time.Now().Add(time.Second), ended: time.Now().Add(time.Second).Add(time.Second), by: "vm3", err: nil})
	if o := p.Outage(); o.Requests != 1 || o.Failed != 0 || o.First != "vm3" {
		t.Errorf("after Reset: %+v; want only the one request sent after it", o)
	}
	if (Outage{FirstFailed: at(1)}).Duration() != 0 {
		t.Error("an outage that never ended has a duration")
	}
}

// The client's connections are made inside its namespace: a server that
// listens only there answers it, and the host's loopback does not have it.
func TestClientDialsInsideTheNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, testenv.Root, "making a network namespace needs root")
	}
	ns, err := netaddr.Create("tvvmmnode-")
	if err != nil {
		testenv.Missing(t, testenv.Netns, "cannot make a network namespace: %v", err)
	}
	defer ns.Delete()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "vm7") })}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	c := NewClient(ns)
	ctx := context.Background()
	if by, err := c.Get(ctx, addr, 5*time.Second); err != nil || by != "vm7" {
		t.Fatalf("Get in the namespace: %q, %v; want vm7", by, err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s answers in the host's namespace too: the test proves nothing", addr)
	}
	if err := c.HTTPCheck(addr).Check(ctx); err != nil {
		t.Errorf("HTTPCheck: %v", err)
	}
	if err := c.TCPCheck(addr).Check(ctx); err != nil {
		t.Errorf("TCPCheck: %v", err)
	}
	if _, err := c.AwaitAnswer(ctx, addr, "vm7", 10*time.Millisecond, time.Second); err != nil {
		t.Errorf("AwaitAnswer vm7: %v", err)
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.AwaitAnswer(actx, addr, "vm8", 10*time.Millisecond, time.Second); err == nil || !strings.Contains(err.Error(), `"vm7"`) {
		t.Errorf("AwaitAnswer vm8 from a server that answers vm7: %v", err)
	}
	p := c.Poll(addr, 10*time.Millisecond, time.Second)
	for deadline := time.Now().Add(10 * time.Second); p.Outage().First == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the poller got no answer in 10 s: %+v", p.Stop())
		}
	}
	srv.Close()
	for deadline := time.Now().Add(10 * time.Second); p.Outage().Failed == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the poller saw no failure in 10 s after the server closed: %+v", p.Stop())
		}
	}
	if err := c.TCPCheck(addr).Check(ctx); err == nil {
		t.Error("TCPCheck passes on a closed server")
	}
	o := p.Stop()
	if o.First != "vm7" || o.Failed == 0 || o.FirstFailed.IsZero() || !o.FirstOK.IsZero() {
		t.Errorf("poller across the server's end: %+v", o)
	}
}

// Clusters sharing BootSlots boot one guest at a time: the second node's
// vmm starts only once the first's boot has ended (here it fails: the
// stand-in vmm never makes its tap, so each boot runs to BootTimeout).
func TestBootSlots(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, testenv.Root, "a cluster's namespace needs root")
	}
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	fake := filepath.Join(dir, "vmm")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ndate +%s%N >> "+starts+"\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const boot = 1500 * time.Millisecond
	cl, err := New(Config{VMM: fake, Dir: dir, Nodes: []string{"a", "b"}, BootTimeout: boot, StopTimeout: time.Second,
		BootSlots: make(chan struct{}, 1)})
	if err != nil {
		testenv.Missing(t, testenv.Netns, "cannot make the cluster's namespace: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Start(ctx); err == nil {
		t.Fatal("a cluster of stand-in vmms that make no tap started")
	}
	b, _ := os.ReadFile(starts)
	lines := strings.Fields(string(b))
	if len(lines) != 2 {
		t.Fatalf("%d vmm starts, want 2: %q", len(lines), b)
	}
	t0, _ := strconv.ParseInt(lines[0], 10, 64)
	t1, _ := strconv.ParseInt(lines[1], 10, 64)
	if gap := time.Duration(t1 - t0); gap < boot*9/10 {
		t.Errorf("the second vmm started %v after the first: both booted at once, want one boot slot (gap ≥ %v)", gap, boot)
	}
}
