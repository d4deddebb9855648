package vmm

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Fencing stops a failed guest for good while the VMM process lives on: a
// cluster manager fences a node before it gives the node's service
// address to a standby, so the failed guest can never answer there again.
//
// A fence sets one machine-wide flag, then kicks every vCPU out of
// KVM_RUN (kick: immediate_exit and a signal). Each vCPU loop checks the
// flag before every KVM_RUN: once set, the vCPU captures its registers
// for a post-mortem and leaves its loop, never to enter the guest again.
// Guest RAM, the VM and the control API stay; devices stop through the
// hooks given to OnFence (the network gate drops every frame either way).
// Only Stop then ends Run, with EndFenced, whatever the guest was doing.

// Machine states as Status reports them.
const (
	StateRunning = "running" // the guest runs (or has not started yet)
	StatePaused  = "paused"  // paused (Pause, a snapshot): Resume lets it run on
	StateFenced  = "fenced"  // fenced: no vCPU enters the guest again
	StateEnded   = "ended"   // the run ended without a fence
)

// ErrEnded is Fence's answer on a machine whose run ended unfenced: its
// guest no longer runs, but it was not fenced.
var ErrEnded = errors.New("vmm: the guest's run has ended; nothing to fence")

// Status is a machine's state and, once fenced, the fence.
type Status struct {
	State string `json:"state"`
	// FencedAtNS is when the fence began (host Unix ns), FenceReason why.
	FencedAtNS  int64  `json:"fenced_at_ns,omitempty"`
	FenceReason string `json:"fence_reason,omitempty"`
	// FenceTookNS is the time from the fence's start until every vCPU was
	// out of KVM_RUN for good (0 until then).
	FenceTookNS int64 `json:"fence_took_ns,omitempty"`
	// VCPUs is each vCPU as the fence left it (at the fence, registers
	// included), or as it runs (KVM_RUN entries only).
	VCPUs []VCPUStatus `json:"vcpus"`
}

// VCPUStatus is one vCPU. The registers are read on the vCPU's thread as
// it leaves the guest for good; Regs is false where that failed or it has
// not happened yet.
type VCPUStatus struct {
	ID int `json:"id"`
	// KVMRuns counts the vCPU's KVM_RUN calls: it stops growing once the
	// vCPU is fenced.
	KVMRuns uint64 `json:"kvm_runs"`
	Fenced  bool   `json:"fenced"`
	Regs    bool   `json:"regs"`
	RIP     uint64 `json:"rip"`
	RSP     uint64 `json:"rsp"`
	RFLAGS  uint64 `json:"rflags"`
	RAX     uint64 `json:"rax"`
	CR0     uint64 `json:"cr0"`
	CR2     uint64 `json:"cr2"`
	CR3     uint64 `json:"cr3"`
	CR4     uint64 `json:"cr4"`
	EFER    uint64 `json:"efer"`
	// Symbol names RIP in the guest kernel ("" for user space or when no
	// System.map is known).
	Symbol string `json:"symbol,omitempty"`
	Error  string `json:"error,omitempty"`
}

// fence is a Machine's fencing state.
type fence struct {
	on atomic.Bool // the flag every vCPU loop checks before KVM_RUN

	mu      sync.Mutex
	started bool // Run started the vCPU loops
	at      time.Time
	reason  string
	took    time.Duration
	allDone bool          // allOut is closed
	out     int           // vCPU loops that have left for good (any reason)
	cpus    []VCPUStatus  // per vCPU, filled as each parks
	regs    []*parkedRegs // per vCPU, its registers as it parked (nil: not read)
	hooks   []func()      // OnFence hooks
	hooksOK chan struct{} // closed when every hook returned
	allOut  chan struct{} // closed when every vCPU is out (fenced machines only)
}

// Fenced reports whether the machine has been fenced.
func (m *Machine) Fenced() bool { return m.fence.on.Load() }

// OnFence adds fn to what a fence runs: each fn runs once, on a goroutine
// of its own, after the fence flag is set; Fence returns after every fn
// has. Devices use it to stop (the network gate waits out a frame in
// flight). Call it before Run.
func (m *Machine) OnFence(fn func()) {
	m.fence.mu.Lock()
	defer m.fence.mu.Unlock()
	m.fence.hooks = append(m.fence.hooks, fn)
}

// BeginFence fences the machine without waiting: it sets the flag, kicks
// every vCPU and starts the OnFence hooks, then returns at once. Any
// thread may call it, a vCPU's own included. It reports whether this call
// began the fence (false: fenced already, or the run had ended).
func (m *Machine) BeginFence(reason string) bool {
	f := &m.fence
	f.mu.Lock()
	if f.on.Load() || m.ended() {
		f.mu.Unlock()
		return false
	}
	f.at, f.reason = time.Now(), reason
	f.allOut = make(chan struct{})
	f.hooksOK = make(chan struct{})
	f.on.Store(true)
	for _, v := range m.vcpus {
		v.kick()
	}
	m.pause.free() // parked vCPUs leave their loops for the fence
	if !f.started || f.out == len(m.vcpus) {
		// No vCPU loop runs: none can enter the guest; those Run starts
		// later park before their first KVM_RUN.
		f.took, f.allDone = time.Since(f.at), true
		close(f.allOut)
	}
	hooks := f.hooks
	f.mu.Unlock()
	go func() {
		var wg sync.WaitGroup
		for _, h := range hooks {
			wg.Add(1)
			go func(h func()) {
				defer wg.Done()
				h()
			}(h)
		}
		wg.Wait()
		close(f.hooksOK)
	}()
	return true
}

// Fence fences the machine (see BeginFence) and returns once every vCPU
// is out of KVM_RUN for good and every OnFence hook has returned. It is
// idempotent: on a machine fenced already it waits for that fence and
// returns its status. On a run that ended unfenced it returns ErrEnded.
func (m *Machine) Fence(reason string) (Status, error) {
	m.BeginFence(reason)
	f := &m.fence
	f.mu.Lock()
	allOut, hooksOK := f.allOut, f.hooksOK
	f.mu.Unlock()
	if allOut == nil {
		return m.Status(), ErrEnded
	}
	<-allOut
	<-hooksOK
	return m.Status(), nil
}

// Status reports the machine's state and each vCPU's.
func (m *Machine) Status() Status {
	f := &m.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{State: StateRunning}
	switch {
	case f.on.Load():
		s.State = StateFenced
		s.FencedAtNS, s.FenceReason = f.at.UnixNano(), f.reason
		s.FenceTookNS = int64(f.took)
	case m.ended():
		s.State = StateEnded
	case m.pause.on.Load():
		s.State = StatePaused
	}
	for i, v := range m.vcpus {
		c := VCPUStatus{ID: i}
		if i < len(f.cpus) {
			c = f.cpus[i]
		}
		c.KVMRuns = v.runs.Load()
		s.VCPUs = append(s.VCPUs, c)
	}
	return s
}

// runStarted records that Run is starting the vCPU loops.
func (m *Machine) runStarted() {
	m.pause.start(len(m.vcpus)) // before started: a Pause from then on finds them
	m.fence.mu.Lock()
	m.fence.started = true
	m.fence.cpus = make([]VCPUStatus, len(m.vcpus))
	m.fence.regs = make([]*parkedRegs, len(m.vcpus))
	m.fence.mu.Unlock()
}

// park captures the vCPU's registers on its own thread as it leaves the
// guest for a fence.
func (v *vcpu) park() {
	c := VCPUStatus{ID: v.kvm.ID, Fenced: true}
	parked, err := v.readRegs()
	if err != nil {
		c.Error = err.Error()
	} else {
		r, s := &parked.r, &parked.s
		c.Regs = true
		c.RIP, c.RSP, c.RFLAGS, c.RAX = r.RIP, r.RSP, r.RFLAGS, r.RAX
		c.CR0, c.CR2, c.CR3, c.CR4, c.EFER = s.CR0, s.CR2, s.CR3, s.CR4, s.EFER
		if r.RIP >= 1<<63 {
			c.Symbol = v.m.cfg.Symbols.Lookup(r.RIP)
		}
	}
	f := &v.m.fence
	f.mu.Lock()
	if v.kvm.ID < len(f.cpus) {
		f.cpus[v.kvm.ID] = c
		f.regs[v.kvm.ID] = parked
	}
	f.mu.Unlock()
}

// left records that a vCPU loop returned (fenced or not); the last one out
// of a fenced machine completes the fence.
func (v *vcpu) left() {
	v.tid.Store(0) // the thread may run other goroutines now: kick it no more
	v.m.pause.gone(v.kvm.ID)
	f := &v.m.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out++
	if f.on.Load() && f.out == len(v.m.vcpus) && !f.allDone {
		f.took, f.allDone = time.Since(f.at), true
		close(f.allOut)
	}
}
