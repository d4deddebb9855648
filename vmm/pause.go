package vmm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pausing stops the whole guest for a while, for a snapshot or on request:
// every vCPU out of KVM_RUN and parked on its own thread, then every virtio
// transport paused (no notification reaches a device, no device moves
// buffers or raises an interrupt). Resume undoes both, devices first. A
// pause, unlike a fence, ends; a fence or the end of the run ends it too.
//
// A pause sets one machine-wide flag and kicks every vCPU, as a fence does
// (immediate_exit and a signal). A vCPU loop looks at the flag only after
// a KVM_RUN that returned EINTR: KVM finishes an MMIO or port read the VMM
// answered before it honours immediate_exit, so a parked vCPU has no I/O
// half done and its state is whole (the KVM API's rule for migration). A
// parked vCPU waits on its own thread, where it also runs the work a
// snapshot gives it (onVCPU: KVM ties a vCPU to the thread that runs it).

// pauseTimeout bounds how long Pause waits for every vCPU to park: one
// stuck in a device handler (a console whose reader stopped reading) would
// hold it forever.
const pauseTimeout = 10 * time.Second

// Errors of Pause and Snapshot.
var (
	// ErrFenced: the machine is fenced; its vCPUs are stopped for good.
	ErrFenced = errors.New("vmm: the guest is fenced: its vCPUs are stopped for good")
	// ErrNotStarted: Run has not started the vCPUs yet.
	ErrNotStarted = errors.New("vmm: the guest has not started yet")
)

// pauser is a Machine's pause state.
type pauser struct {
	on atomic.Bool // the flag vCPU loops check after an interrupted KVM_RUN

	mu      sync.Mutex
	running []bool        // per vCPU: its loop runs (from runStarted until it leaves)
	parked  []bool        // per vCPU: parked for the current pause
	waiting int           // running vCPUs not parked yet
	allIn   chan struct{} // closed when waiting reaches 0
	release chan struct{} // closed to let parked vCPUs go (Resume, a fence)
	freed   bool          // release is closed
}

// Paused reports whether the guest is paused.
func (m *Machine) Paused() bool { return m.pause.on.Load() }

// Pause stops the guest: every vCPU out of KVM_RUN and parked, then every
// virtio transport paused. It returns once all are, at most pauseTimeout
// after the call (an error then, and the guest runs on); on a paused
// machine it does nothing. It fails with ErrNotStarted before Run, ErrEnded
// after the run, ErrFenced on a fenced machine.
func (m *Machine) Pause() error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	return m.pauseLocked()
}

// Resume lets a paused guest run on: the transports first (the
// notifications held meanwhile reach their devices), then the vCPUs. On a
// machine that is not paused it does nothing.
func (m *Machine) Resume() error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.resumeLocked()
	return nil
}

// pauseLocked is Pause with m.ctl held.
func (m *Machine) pauseLocked() error {
	if err := m.controllable(); err != nil {
		return err
	}
	if m.pause.on.Load() {
		return nil
	}
	allIn := m.pause.begin()
	for _, v := range m.vcpus {
		v.kick()
	}
	t := time.NewTimer(pauseTimeout)
	defer t.Stop()
	select {
	case <-allIn:
	case <-m.done:
	case <-t.C:
		late := m.pause.unparked()
		m.resumeLocked()
		return fmt.Errorf("vmm: pause: vCPU %v still in the guest %v after the pause began", late, pauseTimeout)
	}
	if err := m.controllable(); err != nil {
		m.pause.end() // a fence or the run's end came first
		return err
	}
	for _, t := range m.transports {
		t.Pause()
	}
	return nil
}

// resumeLocked is Resume with m.ctl held.
func (m *Machine) resumeLocked() {
	if !m.pause.on.Load() {
		return
	}
	for _, t := range m.transports {
		t.Resume()
	}
	m.pause.end()
}

// controllable says why the machine cannot be paused, if it cannot.
func (m *Machine) controllable() error {
	switch {
	case m.fence.on.Load():
		return ErrFenced
	case m.ended():
		return ErrEnded
	}
	m.fence.mu.Lock()
	started := m.fence.started
	m.fence.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	return nil
}

// start records that every vCPU loop of n is about to run (Run).
func (p *pauser) start(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = make([]bool, n)
	p.parked = make([]bool, n)
	for i := range p.running {
		p.running[i] = true
	}
}

// begin sets the pause flag and returns the channel closed once every
// running vCPU has parked.
func (p *pauser) begin() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allIn, p.release, p.freed = make(chan struct{}), make(chan struct{}), false
	p.waiting = 0
	for i, r := range p.running {
		p.parked[i] = false
		if r {
			p.waiting++
		}
	}
	if p.waiting == 0 {
		close(p.allIn)
	}
	p.on.Store(true)
	return p.allIn
}

// end clears the pause flag and releases the parked vCPUs.
func (p *pauser) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on.Store(false)
	p.freeLocked()
}

// free releases the parked vCPUs without ending the pause: a fence takes
// them out of their loops.
func (p *pauser) free() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.freeLocked()
}

func (p *pauser) freeLocked() {
	if p.release != nil && !p.freed {
		close(p.release)
		p.freed = true
	}
}

// arrivedLocked counts one running vCPU parked or gone.
func (p *pauser) arrivedLocked() {
	p.waiting--
	if p.waiting == 0 {
		close(p.allIn)
	}
}

// gone records that vCPU id's loop returned.
func (p *pauser) gone(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id >= len(p.running) || !p.running[id] {
		return
	}
	p.running[id] = false
	if p.on.Load() && !p.parked[id] {
		p.arrivedLocked()
	}
}

// unparked lists the running vCPUs not parked.
func (p *pauser) unparked() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []int
	for i, r := range p.running {
		if r && !p.parked[i] {
			ids = append(ids, i)
		}
	}
	return ids
}

// hold parks the vCPU for a pause on its own thread, running the work
// onVCPU hands it, until the pause ends, a fence frees it or the run ends.
// Called by the loop after an interrupted KVM_RUN.
func (v *vcpu) hold() {
	p := &v.m.pause
	id := v.kvm.ID
	p.mu.Lock()
	if !p.on.Load() || p.parked[id] {
		p.mu.Unlock()
		return
	}
	p.parked[id] = true
	p.arrivedLocked()
	release := p.release
	p.mu.Unlock()
	for waiting := true; waiting; {
		select {
		case w := <-v.work:
			w()
		case <-release:
			waiting = false
		case <-v.m.done:
			waiting = false
		}
	}
	p.mu.Lock()
	if p.release == release {
		p.parked[id] = false
	}
	p.mu.Unlock()
}

// onVCPU runs fn on the thread of v, which must be parked by the pause in
// force (the caller holds m.ctl), and returns its error. A vCPU that a
// fence or the run's end takes out of its loop first runs nothing.
func (m *Machine) onVCPU(v *vcpu, fn func() error) error {
	p := &m.pause
	p.mu.Lock()
	parked := p.on.Load() && p.parked[v.kvm.ID]
	release := p.release
	p.mu.Unlock()
	if !parked {
		return fmt.Errorf("vmm: vCPU %d is not parked", v.kvm.ID)
	}
	done := make(chan error, 1)
	select {
	case v.work <- func() { done <- fn() }:
	case <-release:
		return ErrFenced // only a fence frees a pause still in force
	case <-m.done:
		return ErrEnded
	}
	return <-done
}
