package pcmk

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/vmm"
)

// fakeVMM answers a vmm's control API on a state's socket: status,
// fence and stop, as a vmm does; it records the ops it was asked.
type fakeVMM struct {
	l     net.Listener
	mu    sync.Mutex
	state string
	ops   []string
}

func newFakeVMM(t *testing.T, s State) *fakeVMM {
	t.Helper()
	if err := os.MkdirAll(string(s), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", s.Sock())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVMM{l: l, state: vmm.StateRunning}
	t.Cleanup(f.close)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeVMM) close() { f.l.Close() }

func (f *fakeVMM) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var req api.Request
		json.Unmarshal(sc.Bytes(), &req)
		f.mu.Lock()
		f.ops = append(f.ops, req.Op)
		var resp api.Response
		switch req.Op {
		case api.OpFence:
			f.state = vmm.StateFenced
			resp.Machine = &vmm.Status{State: f.state, FenceReason: req.Reason}
		case api.OpStatus:
			resp.Machine = &vmm.Status{State: f.state}
		case api.OpStop:
			f.l.Close() // the vmm ends: nobody listens any more
		}
		f.mu.Unlock()
		b, _ := json.Marshal(resp)
		c.Write(append(b, '\n'))
	}
}

func (f *fakeVMM) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}
