package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/vmm"
)

func TestFenceOnIsCheckedBeforeBoot(t *testing.T) {
	f := runFlagsForTest()
	f.fenceOn = []string{"class=oom|panic", "class=signal,comm=httpd,sig=KILL|TERM"}
	p, err := checkRun(f, meminfoOf(1<<20))
	if err != nil || len(p.fenceOn) != 2 || p.fenceOn[1].String() != "class=signal,comm=httpd,sig=KILL|TERM" {
		t.Fatalf("good rules: %v, %v", p.fenceOn, err)
	}
	f.fenceOn = []string{"class=oom", "class=signal,sig=NOPE"}
	_, err = checkRun(f, meminfoOf(1<<20))
	wantErr(t, "a bad --fence-on", err, "--fence-on", "NOPE")
	// run refuses it before it opens the kernel.
	_, err = run(f, []string{"true"})
	wantErr(t, "run with a bad --fence-on", err, "--fence-on")
}

// fakeMachine is an api.Machine for the fence command's tests.
type fakeMachine struct {
	mu sync.Mutex
	st vmm.Status
}

func (m *fakeMachine) BeginFence(reason string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.State == vmm.StateFenced {
		return false
	}
	m.st = vmm.Status{State: vmm.StateFenced, FencedAtNS: time.Now().UnixNano(), FenceReason: reason, FenceTookNS: 42000,
		VCPUs: []vmm.VCPUStatus{{ID: 0, Fenced: true, Regs: true, RIP: 0xffffffff81234567, Symbol: "default_idle+0x4", KVMRuns: 9},
			{ID: 1, Fenced: true, Error: "KVM_GET_REGS: EIO"}}}
	return true
}

func (m *fakeMachine) Fence(reason string) (vmm.Status, error) {
	m.BeginFence(reason)
	return m.Status(), nil
}

func (m *fakeMachine) Status() vmm.Status { m.mu.Lock(); defer m.mu.Unlock(); return m.st }
func (m *fakeMachine) Stop(string)        {}

// serveFake serves the control API on m at a new socket until the test
// ends, and returns the socket's path.
func serveFake(t *testing.T, m api.Machine) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "vm.sock")
	s, err := api.Listen(sock, probetest.New(t).Host, api.NewControl(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return sock
}

func TestFenceCommand(t *testing.T) {
	sock := serveFake(t, &fakeMachine{st: vmm.Status{State: vmm.StateRunning}})
	var out bytes.Buffer
	if err := fence(&out, sock, "httpd died", false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fenced at ", "out of KVM_RUN 42µs", "reason: httpd died\n",
		"vCPU 0: RIP 0xffffffff81234567 (default_idle+0x4)", "9 KVM_RUN entries", "vCPU 1: registers not read: KVM_GET_REGS: EIO"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := fence(&out, sock, "again", true); err != nil || !strings.Contains(out.String(), `"fence_reason":"httpd died"`) {
		t.Errorf("--json after a second fence: %v\n%s", err, out.String())
	}
	if code := fenceCmd([]string{"--reason", "x"}); code != exitUsage {
		t.Errorf("vmm fence without --api: exit %d, want %d", code, exitUsage)
	}
	if code := fenceCmd([]string{"--api", filepath.Join(t.TempDir(), "none.sock")}); code != exitError {
		t.Errorf("vmm fence on a socket nobody serves: exit %d, want %d", code, exitError)
	}
}

// fakeFenceable is the machine side of a fence gate in tests.
type fakeFenceable struct {
	mu     sync.Mutex
	fenced bool
	hooks  []func()
}

func (f *fakeFenceable) Fenced() bool     { f.mu.Lock(); defer f.mu.Unlock(); return f.fenced }
func (f *fakeFenceable) OnFence(h func()) { f.hooks = append(f.hooks, h) }

// fence sets the flag and runs the hooks, as vmm's BeginFence and Fence.
func (f *fakeFenceable) fence() {
	f.mu.Lock()
	f.fenced = true
	f.mu.Unlock()
	for _, h := range f.hooks {
		h()
	}
}

// pipeBackend is a backend whose Send blocks until release is closed and
// whose Recv returns the frames put on rx.
type pipeBackend struct {
	mu      sync.Mutex
	sent    [][]byte
	release chan struct{}
	sending chan struct{}
	rx      chan []byte
}

func (b *pipeBackend) Send(f []byte) error {
	b.sending <- struct{}{}
	<-b.release
	b.mu.Lock()
	b.sent = append(b.sent, f)
	b.mu.Unlock()
	return nil
}

func (b *pipeBackend) Recv(buf []byte) (int, error) {
	f, ok := <-b.rx
	if !ok {
		return 0, errors.New("closed")
	}
	return copy(buf, f), nil
}

func (b *pipeBackend) Close() error { return nil }

func (b *pipeBackend) sentCount() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.sent) }

func TestFenceGateStopsFramesBothWays(t *testing.T) {
	be := &pipeBackend{release: make(chan struct{}), sending: make(chan struct{}, 8), rx: make(chan []byte, 8)}
	g := newFenceGate(be)
	m := &fakeFenceable{}
	g.attach(m)

	// Before the fence frames pass; one Send is in flight as the fence comes.
	sendDone := make(chan error, 1)
	go func() { sendDone <- g.Send([]byte("in flight")) }()
	<-be.sending
	fenced := make(chan struct{})
	go func() { m.fence(); close(fenced) }()
	select {
	case <-fenced:
		t.Fatal("the fence completed while a Send was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(be.release)
	select {
	case <-fenced:
	case <-time.After(10 * time.Second):
		t.Fatal("the fence did not complete in 10 s after the Send in flight returned")
	}
	if err := <-sendDone; err != nil || be.sentCount() != 1 {
		t.Fatalf("the frame in flight: %v, %d sent", err, be.sentCount())
	}

	// After the fence nothing leaves, and nothing reaches the guest.
	if err := g.Send([]byte("after")); !errors.Is(err, errFenced) || be.sentCount() != 1 {
		t.Errorf("Send after the fence: %v, %d frames sent", err, be.sentCount())
	}
	be.rx <- []byte("dropped 1")
	be.rx <- []byte("dropped 2")
	close(be.rx)
	if n, err := g.Recv(make([]byte, 64)); err == nil {
		t.Errorf("Recv after the fence handed the guest %d bytes", n)
	}
	if tx, rx := g.dropped(); tx != 1 || rx != 2 {
		t.Errorf("dropped %d out, %d in; want 1, 2", tx, rx)
	}
}
