package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover/pcmk"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/pcmklab"
	"github.com/tracevisor/tracevisor/probe"
)

// pcmkResult is one run's outcome in one cluster.
type pcmkResult struct {
	Run     int
	Failure string
	Cluster string // vm1, vm2
	Method  string // monitor, fast-path
	Node    string // where the failure was caused
	// InjectNS: when the host caused the failure; FailureNS: the failure
	// in the guest (the probe's hit on the host clock; the kill for a
	// node), 0 not seen; KnewNS: when Pacemaker was told (the fast path's
	// crm_resource --fail, else the failing monitor), 0 not seen;
	// ServedNS: when the standby's first answer reached the client.
	// MovedNS: when the service address's IPaddr2 started on the standby's
	// node (Pacemaker's log), the failover's end on the cluster's side.
	InjectNS, FailureNS, KnewNS, MovedNS, ServedNS int64
	Outage                                         vmmnode.Outage
	// FailCount is how much the failed node's fail-count for the
	// resource rose; Starts how often its agent started the VM there.
	FailCount, Starts int
	Err               string
}

// recovered is failure → standby serving, if it happened.
func (r pcmkResult) recovered() (time.Duration, bool) {
	if r.FailureNS == 0 || r.ServedNS == 0 || r.ServedNS < r.FailureNS {
		return 0, false
	}
	return time.Duration(r.ServedNS - r.FailureNS), true
}

// moved is failure → the address started on the standby, if it did.
func (r pcmkResult) moved() (time.Duration, bool) {
	if r.FailureNS == 0 || r.MovedNS == 0 || r.MovedNS < r.FailureNS {
		return 0, false
	}
	return time.Duration(r.MovedNS - r.FailureNS), true
}

// knew is failure → Pacemaker told, if it happened.
func (r pcmkResult) knew() (time.Duration, bool) {
	if r.FailureNS == 0 || r.KnewNS == 0 || r.KnewNS < r.FailureNS {
		return 0, false
	}
	return time.Duration(r.KnewNS - r.FailureNS), true
}

func methodOf(c pcmklab.VMCluster) string {
	if c.Params["fast_path"] == "true" {
		return "fast-path"
	}
	return "monitor"
}

// run causes failure f once in every cluster concerned and waits for the
// recovery and the re-protection.
func (b *pcmkBench) run(ctx context.Context, k int, f string) ([]pcmkResult, error) {
	st, err := b.lab.Await(ctx, "cluster status", func(pcmklab.Status) bool { return true })
	if err != nil {
		return nil, err
	}
	var rs []pcmkResult
	polls := map[string]*vmmnode.Poller{}
	victim := b.clusters[len(b.clusters)-1].PromotedOn(st) // node: the fast path cluster's node
	for _, c := range b.clusters {
		node := c.PromotedOn(st)
		if node == "" {
			return nil, fmt.Errorf("%s is not promoted anywhere before run %d", c.Name(), k)
		}
		if f == failNode && node != victim {
			continue // not on the lost node: nothing to recover
		}
		r := pcmkResult{Run: k, Failure: f, Cluster: c.Name(), Method: methodOf(c), Node: node}
		if f != failNode {
			r.FailCount = -failCount(ctx, b.lab.Node(b.lab.Nodes()[0].Name), c.Name(), node)
		}
		r.Starts = -starts(pcmk.StateFor(b.state, node, c.Name()))
		rs = append(rs, r)
		polls[c.Name()] = b.client.PollN(c.Service().String(), b.o.poll, b.o.reqTimeout, vmmnode.MaxInFlight)
	}
	inject := time.Now().UnixNano()
	for i := range rs {
		rs[i].InjectNS = inject
	}
	switch f {
	case failNode:
		if err := b.lab.Node(victim).Kill(ctx); err != nil {
			return rs, err
		}
		for i := range rs {
			rs[i].FailureNS = inject
		}
	default:
		in := api.Injection{Kind: "signal", Comm: "httpd", Signal: 9}
		if f == failOOM {
			in = api.Injection{Kind: "signal", Comm: vmmnode.HogTrigger, Signal: 15}
		}
		var wg sync.WaitGroup
		for _, r := range rs {
			sock := pcmk.StateFor(b.state, r.Node, r.Cluster).Sock()
			wg.Add(1)
			go func() { // every cluster at once
				defer wg.Done()
				// The VMM may fence on the event before it answers: the
				// outcome, not the call, says whether the failure happened.
				ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				api.CallContext(ictx, sock, api.Request{Op: api.OpInject, Inject: &in})
			}()
		}
		wg.Wait()
	}
	within := b.o.within
	if f == failOOM {
		within += 3 * time.Minute // the hog's own time to fill the guest
	}
	deadline := time.Now().Add(within)
	for i := range rs {
		r := &rs[i]
		want := r.Cluster + "@" + b.lab.Peer(r.Node)
		for polls[r.Cluster].Outage().Last != want && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		o := polls[r.Cluster].Stop()
		r.Outage = o
		if at, ok := polls[r.Cluster].FirstAnswerBy(want); ok {
			r.ServedNS = at.UnixNano()
		} else {
			r.Err = fmt.Sprintf("the client got no answer from the standby within %v", within)
		}
		if f != failNode {
			// Now, before the failure-timeout clears it again.
			r.FailCount += failCount(ctx, b.lab.Node(b.lab.Nodes()[0].Name), r.Cluster, r.Node)
		}
	}
	if f == failNode {
		if err := b.lab.Node(victim).Revive(ctx); err != nil {
			return rs, err
		}
	}
	perr := b.protected(ctx)
	for i := range rs {
		r := &rs[i]
		s := pcmk.StateFor(b.state, r.Node, r.Cluster)
		peer := b.lab.Node(b.lab.Peer(r.Node))
		r.MovedNS = startedAt(filepath.Join(peer.Dir(), "log-pacemaker", "pacemaker.log"), "ip"+strings.TrimPrefix(r.Cluster, "vm"), peer.Name, inject)
		r.Starts += starts(s)
		if f == failNode {
			// The lost node's fail-counts went with it (transient
			// attributes); what Pacemaker knew was the membership.
			r.FailCount = 0
			continue
		}
		r.FailureNS = failureSeen(s, inject, f)
		r.KnewNS = pacemakerKnew(s, inject)
	}
	return rs, perr
}

// failureSeen is the host time of the first probe event at or after
// since in a VM's events files (the failed run's, kept by
// State.KeepPrevious once it restarted, and the current one's) that is
// the failure f: a SIGKILL sent to httpd, or the OOM killer at work (0:
// none).
func failureSeen(s pcmk.State, since int64, f string) int64 {
	for _, path := range s.Runs("events.jsonl") {
		if ns := firstFailure(path, since, f); ns != 0 {
			return ns
		}
	}
	return 0
}

func firstFailure(path string, since int64, f string) int64 {
	file, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e probe.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.HostNS < since {
			continue
		}
		switch {
		case f == failSignal && e.Class == "signal" && e.Comm == "httpd" && fmt.Sprint(e.Fields["sig"]) == "9":
			return e.HostNS
		case f == failOOM && e.Class == "oom":
			return e.HostNS
		}
	}
	return 0
}

// pacemakerKnew is when Pacemaker was told of the failure in state s:
// the fast path's crm_resource --fail, or a monitor that failed, the
// earlier (0: neither since since).
func pacemakerKnew(s pcmk.State, since int64) int64 {
	var knew int64
	first := func(ns int64) {
		if ns >= since && (knew == 0 || ns < knew) {
			knew = ns
		}
	}
	for _, st := range s.Steps(since) {
		if st.Step == "told-pacemaker" {
			first(st.TimeNS)
		}
	}
	for _, a := range s.Actions() {
		if a.Action == "monitor" && (a.Code == pcmk.ErrGeneric || a.Code == pcmk.FailedPromoted) {
			first(a.TimeNS)
		}
	}
	return knew
}

// starts counts the agent's successful starts in state s.
func starts(s pcmk.State) int {
	n := 0
	for _, a := range s.Actions() {
		if a.Action == "start" && a.Code == pcmk.Success {
			n++
		}
	}
	return n
}

var failCountRE = regexp.MustCompile(`value=(\d+|INFINITY)`)

// failCount is resource's fail-count on node as crm_failcount says it (0
// when none or unreadable).
func failCount(ctx context.Context, via *pcmklab.Node, resource, node string) int {
	out, err := via.Output(ctx, "crm_failcount", "--query", "--resource", resource, "--node", node)
	if err != nil {
		return 0
	}
	m := failCountRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	if string(m[1]) == "INFINITY" {
		return 1000000
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// describePcmk is one line about a run in every cluster.
func describePcmk(rs []pcmkResult) string {
	var parts []string
	for _, r := range rs {
		s := r.Cluster + " (" + r.Method + "): "
		if d, ok := r.knew(); ok {
			s += "knew " + fmtDur(d) + ", "
		}
		if d, ok := r.moved(); ok {
			s += "address moved " + fmtDur(d) + ", "
		}
		if d, ok := r.recovered(); ok {
			s += "client served by the standby " + fmtDur(d)
		} else {
			s += "client not served by the standby"
		}
		s += fmt.Sprintf(", fail-count +%d, %d start", r.FailCount, r.Starts)
		if r.Err != "" {
			s += " (" + r.Err + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " | ")
}
