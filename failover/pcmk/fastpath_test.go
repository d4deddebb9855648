package pcmk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/probe"
)

// fakeCRM records what is asked of Pacemaker; at says where Locate finds
// the resource.
type fakeCRM struct {
	mu    sync.Mutex
	calls []string
	at    []Located
}

func (c *fakeCRM) rec(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *fakeCRM) Locate(_ context.Context, r string) ([]Located, error) {
	c.rec("locate " + r)
	return c.at, nil
}
func (c *fakeCRM) Fail(_ context.Context, r, n string) error {
	c.rec("fail " + r + " " + n)
	return nil
}
func (c *fakeCRM) SetPromotion(_ context.Context, r string, s int) error {
	c.rec(fmt.Sprintf("set %s %d", r, s))
	return nil
}
func (c *fakeCRM) DelPromotion(_ context.Context, r string) error { c.rec("del " + r); return nil }

func signalTo(comm string, sig uint32) probe.Event {
	return probe.Event{Probe: "signal", Class: "signal", Comm: comm, PID: 42, TID: 42, HostNS: 1,
		Fields: map[string]any{"sig": sig, "sender_comm": "sh"}}
}

// runFastPath feeds events to a fast path and returns its verdict, the
// CRM calls, the journal and the state.
func runFastPath(t *testing.T, at []Located, events ...probe.Event) (failover.Verdict, bool, []string, string, State) {
	t.Helper()
	st := failover.NewFakeStream()
	src := failover.Source{Node: "n1", Open: func(context.Context) (failover.EventStream, error) { return st, nil }}
	crm := &fakeCRM{at: at}
	var journal bytes.Buffer
	s := State(t.TempDir())
	f := &FastPath{State: s, Resource: "vm2", Node: "n1", Service: "httpd", CRM: crm, Source: &src, Journal: &journal}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() {
		for _, e := range events {
			if st.Send(ctx, e) != nil {
				return
			}
		}
	}()
	v, ok, err := f.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v, ok, crm.calls, journal.String(), s
}

func TestFastPathTellsPacemaker(t *testing.T) {
	v, ok, calls, journal, s := runFastPath(t, []Located{{Node: "n2"}, {Node: "n1", Promoted: true}},
		signalTo("sleep", 9), signalTo("httpd", 28), signalTo("httpd", 9))
	if !ok || v.Kind != failover.ServiceFailure || v.Cause.Sig != 9 || v.Node != "n1" {
		t.Fatalf("verdict %+v (ok %v), want a service failure on SIGKILL to httpd", v, ok)
	}
	if want := []string{"set vm2 -1000000", "locate vm2", "fail vm2 n1"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("CRM calls %v, want %v", calls, want)
	}
	got, standing := s.Verdict()
	if !standing || got.Cause.Sig != 9 {
		t.Errorf("standing verdict %+v (%v)", got, standing)
	}
	var steps []string
	for _, line := range strings.Split(strings.TrimSpace(journal), "\n") {
		var st Step
		if err := json.Unmarshal([]byte(line), &st); err != nil || st.TimeNS == 0 {
			t.Fatalf("journal line %q: %v", line, err)
		}
		steps = append(steps, st.Step)
	}
	if want := []string{"watching", "verdict", "promotion-dropped", "located", "told-pacemaker"}; !reflect.DeepEqual(steps, want) {
		t.Errorf("journal steps %v, want %v", steps, want)
	}
}

// A resource Pacemaker does not run here gets no --fail (it would record
// a failure where nothing runs); the verdict still stands for the
// monitor.
func TestFastPathNotHere(t *testing.T) {
	_, ok, calls, journal, s := runFastPath(t, []Located{{Node: "n2", Promoted: true}}, signalTo("httpd", 9))
	if !ok {
		t.Fatal("no verdict")
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "fail") {
			t.Errorf("crm_resource --fail for a resource not on this node: %v", calls)
		}
	}
	if _, standing := s.Verdict(); !standing || !strings.Contains(journal, `"not-here"`) {
		t.Errorf("standing %v, journal %s", standing, journal)
	}
}

// Harmless events give no verdict and ask nothing of Pacemaker.
func TestFastPathIgnoresHarmless(t *testing.T) {
	_, ok, calls, _, s := runFastPath(t, nil, signalTo("sleep", 9), signalTo("httpd", 1), signalTo("httpd", 17))
	if ok || len(calls) != 0 {
		t.Errorf("verdict %v, calls %v on harmless events", ok, calls)
	}
	if _, standing := s.Verdict(); standing {
		t.Error("a standing verdict on harmless events")
	}
}
