package failover_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// recorder is a fake Actions that records every call in order, moves a
// fake clock 1 ms per fence and move (so stages have distinct times; not
// per recovery, which runs beside the manager), fails the
// calls told to, and holds recoveries until released when gated.
type recorder struct {
	clock *failover.FakeClock

	mu        sync.Mutex
	calls     []string // fence and move, in order
	recovers  []string // recover calls, each on a goroutine of its own
	failFence map[string]error
	failMove  map[string]error
	failRec   map[string]error
	gated     bool
	gates     map[string]chan struct{}
	address   string // who holds the service address
}

func newRecorder(clock *failover.FakeClock, holder string) *recorder {
	return &recorder{clock: clock, address: holder, failFence: map[string]error{}, failMove: map[string]error{},
		failRec: map[string]error{}, gates: map[string]chan struct{}{}}
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.HasPrefix(call, "recover ") {
		r.recovers = append(r.recovers, call)
		return
	}
	r.calls = append(r.calls, call)
	if r.clock != nil {
		r.clock.Advance(time.Millisecond)
	}
}

func (r *recorder) Fence(_ context.Context, node string) error {
	r.record("fence " + node)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failFence[node]
}

func (r *recorder) MoveAddress(_ context.Context, to string) error {
	r.record("move " + to)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failMove[to]; err != nil {
		return err
	}
	r.address = to
	return nil
}

func (r *recorder) Recover(ctx context.Context, node string, why failover.Kind) error {
	r.record(fmt.Sprintf("recover %s (%s)", node, why))
	r.mu.Lock()
	gate := r.gates[node]
	if r.gated && gate == nil {
		gate = make(chan struct{})
		r.gates[node] = gate
	}
	err := r.failRec[node]
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// release lets node's gated recovery finish.
func (r *recorder) release(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.gates[node]; g != nil {
		close(g)
	} else {
		g = make(chan struct{})
		close(g)
		r.gates[node] = g
	}
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// recovered waits for the recover calls to be want, in any order.
func (r *recorder) recovered(t *testing.T, want ...string) {
	t.Helper()
	sort.Strings(want)
	var got []string
	testenv.WaitFor(t, 5*time.Second, fmt.Sprint("recover calls ", want), func() bool {
		r.mu.Lock()
		got = append([]string(nil), r.recovers...)
		r.mu.Unlock()
		sort.Strings(got)
		return len(got) >= len(want)
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recover calls %q, want %q", got, want)
	}
}

func (r *recorder) holder() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.address
}

func waitState(t *testing.T, m *failover.Manager, node string, want failover.State) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, node+" "+want.String(), func() bool { s, _ := m.State(node); return s == want })
}
