package pcmk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/failover"
)

// FastPath is the node's tracevisor side of one VM instance: it reads the
// VMM's probe events, judges them by Rules (the embedded manager's), and
// on the first failure verdict
//
//  1. writes the verdict into the state (the standing verdict the monitor
//     reports: nothing is lost if Pacemaker is slow or down),
//  2. sets the instance's promotion score to ScoreFailed (the scheduler
//     then promotes the other instance instead of restarting this one in
//     place and promoting it again),
//  3. locates the resource and, where Pacemaker has it running on this
//     node, tells it the resource failed here (crm_resource --fail), so
//     recovery starts on the event, not at the next monitor.
//
// It then ends: the instance is failed, and the next start runs a fresh
// fast path. The end of the event stream (the VMM died) is a failure too.
type FastPath struct {
	State    State
	Resource string
	Node     string
	Service  string
	CRM      CRM
	// Source opens the VMM's event stream (nil: the state's API socket).
	Source *failover.Source
	// Journal receives one JSON line per step (nil: discarded); Log the
	// detector's stream errors.
	Journal io.Writer
	Log     io.Writer

	mu sync.Mutex
}

// Step is one line of the fast path's journal.
type Step struct {
	TimeNS  int64             `json:"time_ns"`
	Step    string            `json:"step"` // watching, verdict, promotion-dropped, located, told-pacemaker, not-here, error
	Verdict *failover.Verdict `json:"verdict,omitempty"`
	Nodes   []Located         `json:"nodes,omitempty"`
	Detail  string            `json:"detail,omitempty"`
}

func (f *FastPath) step(s Step) {
	if f.Journal == nil {
		return
	}
	s.TimeNS = time.Now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(s)
	f.Journal.Write(append(b, '\n'))
}

// Run watches until the first verdict has been acted on, or ctx ends. It
// returns the verdict (ok false when ctx ended first) and the error of
// telling Pacemaker, if that failed.
func (f *FastPath) Run(ctx context.Context) (v failover.Verdict, ok bool, err error) {
	src := failover.APISource(f.Node, f.State.Sock())
	if f.Source != nil {
		src = *f.Source
	}
	det := &failover.ProbeDetector{Rules: Rules(f.Service), Sources: []failover.Source{src}, Log: f.Log}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	out := make(chan failover.Verdict, 1)
	go det.Run(dctx, out)
	f.step(Step{Step: "watching", Detail: fmt.Sprintf("resource %s on node %s, service %s", f.Resource, f.Node, f.Service)})
	select {
	case v = <-out:
	case <-ctx.Done():
		return v, false, nil
	}
	stop()
	if werr := f.State.WriteVerdict(v); werr != nil {
		f.step(Step{Step: "error", Detail: "write the standing verdict: " + werr.Error()})
	}
	f.step(Step{Step: "verdict", Verdict: &v})
	// Pacemaker's tools get their own time even when ctx is ending: the
	// verdict must reach it.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*CRMTimeout)
	defer cancel()
	if derr := f.CRM.SetPromotion(tctx, f.Resource, ScoreFailed); derr != nil {
		f.step(Step{Step: "error", Detail: "drop the promotion score: " + derr.Error()})
	} else {
		f.step(Step{Step: "promotion-dropped"})
	}
	nodes, err := f.CRM.Locate(tctx, f.Resource)
	if err != nil {
		f.step(Step{Step: "error", Detail: "locate: " + err.Error()})
		return v, true, err
	}
	f.step(Step{Step: "located", Nodes: nodes})
	if !slices.ContainsFunc(nodes, func(l Located) bool { return l.Node == f.Node }) {
		// crm_resource --fail would record a failure on a node where
		// the resource does not run; the monitor reports the verdict.
		f.step(Step{Step: "not-here", Detail: "Pacemaker does not have " + f.Resource + " running on " + f.Node})
		return v, true, nil
	}
	if err := f.CRM.Fail(tctx, f.Resource, f.Node); err != nil {
		f.step(Step{Step: "error", Detail: "crm_resource --fail: " + err.Error()})
		return v, true, err
	}
	f.step(Step{Step: "told-pacemaker"})
	return v, true, nil
}
