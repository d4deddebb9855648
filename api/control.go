package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/vmm"
)

// Machine is the VM the API's machine methods (fence, status, stop,
// fence_on) act on: a *vmm.Machine, or a fake in tests.
type Machine interface {
	// Fence stops every vCPU for good and returns once none is in
	// KVM_RUN; it is idempotent.
	Fence(reason string) (vmm.Status, error)
	// BeginFence fences without waiting; it reports whether this call
	// began the fence.
	BeginFence(reason string) bool
	Status() vmm.Status
	// Stop ends the run (and the vmm process).
	Stop(reason string)
}

// Snapshotter is a Machine that can also be snapshotted and paused (a
// *vmm.Machine): the snapshot and resume methods need it.
type Snapshotter interface {
	// Snapshot writes the guest to dir, an absolute path; it leaves the
	// guest paused if stayPaused (or if it was paused already).
	Snapshot(dir string, stayPaused bool) error
	// Resume lets a paused guest run on.
	Resume() error
}

var _ Snapshotter = (*vmm.Machine)(nil)

// Dumper is a Machine that can be written as an ELF core file.
type Dumper interface {
	// Dump writes the guest to path, an absolute path.
	Dump(path string) error
}

var _ Dumper = (*vmm.Machine)(nil)

// Control is the machine side of a vmm's API: the Machine and the fence
// rules armed on it. Its Observe is the probe host's event hook
// (probe.Host.SetEventHook): an event a rule matches fences the machine
// there, on the host's decoding goroutine, before any other process sees
// the event and without waiting for the vCPUs (one of them may be the one
// delivering events).
type Control struct {
	m Machine

	mu    sync.Mutex
	rules []FenceRule
	event *probe.Event // the event that fenced the machine, if a rule did
}

// NewControl returns the control of m, with no fence rule armed.
func NewControl(m Machine) *Control { return &Control{m: m} }

// Arm adds a fence rule; at most MaxFenceRules are armed at once.
func (c *Control) Arm(r FenceRule) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rules) >= MaxFenceRules {
		return fmt.Errorf("fence rule %s: %d rules armed already, the most a vmm holds", r, MaxFenceRules)
	}
	c.rules = append(c.rules, r)
	return nil
}

// Rules returns the armed rules in FenceRuleSyntax.
func (c *Control) Rules() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for _, r := range c.rules {
		s = append(s, r.String())
	}
	return s
}

// Event returns the event that made a rule fence the machine.
func (c *Control) Event() (probe.Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.event == nil {
		return probe.Event{}, false
	}
	return *c.event, true
}

// Observe fences the machine if a rule matches e, with the rule and the
// event (as JSON) as the reason. It never blocks on the machine.
func (c *Control) Observe(e probe.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.event != nil {
		return
	}
	for _, r := range c.rules {
		if !r.Match(e) {
			continue
		}
		b, _ := json.Marshal(e)
		if c.m.BeginFence(fmt.Sprintf("fence rule %s matched event %s", r, b)) {
			c.event = &e
		}
		return
	}
}

// status is the status request's answer.
func (c *Control) status() Response {
	st := c.m.Status()
	r := Response{Machine: &st, FenceRules: c.Rules()}
	if e, ok := c.Event(); ok {
		r.FenceEvent = &e
	}
	return r
}

// machineCall answers the machine methods. A stop is only checked here:
// serve stops the machine once the answer is written.
func (s *Server) machineCall(req Request) (Response, error) {
	if s.ctl == nil {
		return Response{}, fmt.Errorf("%s: this vmm serves no machine methods", req.Op)
	}
	c := s.ctl
	switch req.Op {
	case OpFence:
		reason := req.Reason
		if reason == "" {
			reason = "fenced through the API"
		}
		start := time.Now()
		st, err := c.m.Fence(reason)
		if err != nil {
			return Response{}, err
		}
		r := c.status()
		r.Machine, r.WaitedNS = &st, int64(time.Since(start))
		return r, nil
	case OpSnapshot, OpResume:
		return c.snapshotCall(req)
	case OpDump:
		return c.dumpCall(req)
	case OpFenceOn:
		rule, err := ParseFenceRule(req.Rule)
		if err != nil {
			return Response{}, err
		}
		if err := c.Arm(rule); err != nil {
			return Response{}, err
		}
		return c.status(), nil
	}
	return c.status(), nil // status, stop
}

// snapshotCall answers snapshot and resume.
func (c *Control) snapshotCall(req Request) (Response, error) {
	sn, ok := c.m.(Snapshotter)
	if !ok {
		return Response{}, fmt.Errorf("%s: this vmm's machine cannot be snapshotted", req.Op)
	}
	if req.Op == OpResume {
		if err := sn.Resume(); err != nil {
			return Response{}, err
		}
		return c.status(), nil
	}
	if err := absPath("snapshot", "directory", "dir", req.Dir); err != nil {
		return Response{}, err
	}
	start := time.Now()
	if err := sn.Snapshot(req.Dir, req.Paused); err != nil {
		return Response{}, err
	}
	r := c.status()
	r.SnapshotNS = int64(time.Since(start))
	return r, nil
}

// absPath checks that the path a request's field gives is there and
// absolute: the vmm's working directory is not the client's.
func absPath(op, what, field, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: no %s given (%s)", op, what, field)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%s: %s %q is not an absolute path (the vmm's working directory is not the client's)", op, what, p)
	}
	return nil
}

// dumpCall answers dump.
func (c *Control) dumpCall(req Request) (Response, error) {
	d, ok := c.m.(Dumper)
	if !ok {
		return Response{}, errors.New("dump: this vmm's machine cannot be dumped")
	}
	if err := absPath("dump", "file", "path", req.Path); err != nil {
		return Response{}, err
	}
	start := time.Now()
	if err := d.Dump(req.Path); err != nil {
		return Response{}, err
	}
	r := c.status()
	r.DumpNS = int64(time.Since(start))
	return r, nil
}

// stopAfter ends the machine after a stop request was answered.
func (s *Server) stopAfter(req Request) {
	reason := req.Reason
	if reason == "" {
		reason = "stopped through the API"
	}
	s.ctl.m.Stop(reason)
}
