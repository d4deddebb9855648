package vmm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/vmm/kvm"
	"golang.org/x/sys/unix"
)

// Stopped states of a vCPU, as last seen by the halt watch.
const (
	stoppedNo       = iota // running, or halted with interrupts on
	stoppedHalted          // halted with interrupts off: only NMI/INIT wakes it
	stoppedNeverRan        // an AP still waiting for its INIT/SIPI
)

// vcpu is the VMM side of one KVM vCPU.
type vcpu struct {
	m       *Machine
	kvm     *kvm.VCPU
	tid     atomic.Int32
	stopped atomic.Int32
	runs    atomic.Uint64 // KVM_RUN calls
	work    chan func()   // what a pause has the parked vCPU run (onVCPU)
}

// kick makes the vCPU's KVM_RUN return EINTR soon: immediate_exit covers
// the window before the thread enters KVM_RUN, the signal the time inside.
func (v *vcpu) kick() {
	v.kvm.RunData().SetImmediateExit(true)
	if tid := v.tid.Load(); tid != 0 {
		unix.Tgkill(os.Getpid(), int(tid), kickSignal)
	}
}

// kickSignal interrupts KVM_RUN. The Go runtime handles SIGURG on every
// thread and ignores it outside its own preemption requests.
const kickSignal = unix.SIGURG

// loop runs the vCPU until the machine ends or is fenced. It reports
// setup success or failure on ready first. The fence flag is checked
// before every KVM_RUN: a fence's kick makes the KVM_RUN in progress
// return, and the vCPU leaves with its registers captured (park). The
// pause flag is checked after each interrupted KVM_RUN (see pause.go):
// the vCPU parks (hold) until the pause ends.
func (v *vcpu) loop(ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer v.left()
	v.tid.Store(int32(unix.Gettid()))
	if err := v.setup(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	run := v.kvm.RunData()
	for !v.m.ended() {
		if v.m.fence.on.Load() {
			v.park()
			return
		}
		if v.runs.Add(1) == 1 {
			v.m.firstEntry.CompareAndSwap(0, time.Now().UnixNano())
		}
		err := v.kvm.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			run.SetImmediateExit(false)
			v.observe()
			if v.m.pause.on.Load() {
				v.hold()
			}
			continue
		}
		if err != nil {
			v.m.end(Ending{Kind: EndInternalError, Reason: err.Error()})
			return
		}
		v.stopped.Store(stoppedNo)
		s := handleExit(run, v, v.m.cfg.Profile)
		if err := v.apply(s); err != nil {
			v.m.end(Ending{Kind: EndInternalError, Reason: err.Error()})
			return
		}
	}
}

// observe records whether the vCPU has stopped for good, after a kick, and
// takes a profile sample when profiling.
func (v *vcpu) observe() {
	st, err := v.kvm.MPState()
	if err != nil {
		return
	}
	if s := v.m.samples; s != nil {
		prefix := ""
		if len(v.m.vcpus) > 1 {
			prefix = fmt.Sprintf("cpu%d %s ", v.kvm.ID, mpStateName(st))
		}
		if r, err := v.kvm.Regs(); err == nil {
			s.record(v.m.cfg.Symbols, prefix, r.RIP, r.RIP < 1<<47)
		}
	}
	state := int32(stoppedNo)
	switch st {
	case kvm.KVM_MP_STATE_UNINITIALIZED:
		if v.kvm.ID != 0 {
			state = stoppedNeverRan
		}
	case kvm.KVM_MP_STATE_HALTED:
		if r, err := v.kvm.Regs(); err == nil && r.RFLAGS&rflagsIF == 0 {
			state = stoppedHalted
		}
	}
	v.stopped.Store(state)
	if state != stoppedNo {
		v.m.checkHalted()
	}
}

const rflagsIF = 1 << 9

// apply carries out handleExit's verdict on the vCPU.
func (v *vcpu) apply(s step) error {
	switch s.kind {
	case stepContinue:
		return nil
	case stepStop:
		v.m.end(v.m.refine(s.ending))
		return nil
	case stepSkip, stepReflectBP:
		r, err := v.kvm.Regs()
		if err != nil {
			return fmt.Errorf("KVM_GET_REGS: %w", err)
		}
		n := s.skip
		if s.kind == stepReflectBP {
			n = 1
		}
		r.RIP += uint64(n)
		if err := v.kvm.SetRegs(r); err != nil {
			return fmt.Errorf("KVM_SET_REGS: %w", err)
		}
		if s.kind == stepReflectBP {
			return v.kvm.InjectException(vectorBP)
		}
	}
	return nil
}

// PIO implements exitEnv.
func (v *vcpu) PIO(port uint16, data []byte, write bool) {
	var err error
	if write {
		err = v.m.pio.Write(uint64(port), data)
	} else {
		err = v.m.pio.Read(uint64(port), data)
	}
	if err != nil {
		v.m.dev.unhandled("port", err)
	}
}

// MMIO implements exitEnv.
func (v *vcpu) MMIO(addr uint64, data []byte, write bool) {
	var err error
	if write {
		err = v.m.mmio.Write(addr, data)
	} else {
		err = v.m.mmio.Read(addr, data)
	}
	if err != nil {
		v.m.dev.unhandled("mmio", err)
	}
}

// RIP implements exitEnv.
func (v *vcpu) RIP() (uint64, error) {
	r, err := v.kvm.Regs()
	if err != nil {
		return 0, err
	}
	return r.RIP, nil
}

// InsnAt implements exitEnv: it translates through the guest page tables
// and reads what lies in RAM, up to the page end.
func (v *vcpu) InsnAt(rip uint64) []byte {
	gpa, ok := v.kvm.Translate(rip)
	if !ok {
		return nil
	}
	n := uint64(15)
	if rem := 0x1000 - gpa%0x1000; rem < n {
		n = rem
	}
	b := make([]byte, n)
	if v.m.mem.ReadAt(b, gpa) != nil {
		return nil
	}
	return b
}

// Symbol implements exitEnv.
func (v *vcpu) Symbol(addr uint64) string { return v.m.cfg.Symbols.Lookup(addr) }

// mpStateName names a KVM_MP_STATE value for diagnostics.
func mpStateName(st uint32) string {
	switch st {
	case kvm.KVM_MP_STATE_RUNNABLE:
		return "runnable"
	case kvm.KVM_MP_STATE_UNINITIALIZED:
		return "uninitialized"
	case kvm.KVM_MP_STATE_INIT_RECEIVED:
		return "init-received"
	case kvm.KVM_MP_STATE_HALTED:
		return "halted"
	case kvm.KVM_MP_STATE_SIPI_RECEIVED:
		return "sipi-received"
	}
	return fmt.Sprintf("mp-state-%d", st)
}
