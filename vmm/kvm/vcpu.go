package kvm

import (
	"errors"
	"fmt"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// KVM_MP_STATE_* values of a vCPU (x86).
const (
	KVM_MP_STATE_RUNNABLE      = 0
	KVM_MP_STATE_UNINITIALIZED = 1
	KVM_MP_STATE_INIT_RECEIVED = 2
	KVM_MP_STATE_HALTED        = 3
	KVM_MP_STATE_SIPI_RECEIVED = 4
)

// ErrInterrupted is returned by VCPU.Run when KVM_RUN ended because of a
// signal or immediate_exit (EINTR), not a guest exit.
var ErrInterrupted = errors.New("KVM_RUN interrupted")

// VCPU is a virtual CPU. Its methods must be called from the one OS thread
// that runs it (KVM ties a vCPU to the task that last ran KVM_RUN), except
// Kick.
type VCPU struct {
	ID   int
	fd   uintptr
	vmfd uintptr // the VM's descriptor, for per-VM KVM_CHECK_EXTENSION
	run  Run
}

// Fd returns the vCPU file descriptor.
func (c *VCPU) Fd() uintptr { return c.fd }

// Run returns the vCPU's kvm_run page.
func (c *VCPU) RunData() Run { return c.run }

// Close unmaps kvm_run and closes the vCPU.
func (c *VCPU) Close() error {
	unix.Munmap(c.run.b)
	return unix.Close(int(c.fd))
}

// Run enters the guest until the next exit. It returns ErrInterrupted for
// EINTR (a kick), nil after a guest exit, and other errors as they are.
// EAGAIN is retried.
func (c *VCPU) Run() error {
	for {
		_, err := ioctlValue(c.fd, KVM_RUN, 0)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			return ErrInterrupted
		case errors.Is(err, unix.EAGAIN):
			continue
		default:
			return fmt.Errorf("KVM_RUN on vCPU %d: %w", c.ID, err)
		}
	}
}

// Regs returns the general-purpose registers.
func (c *VCPU) Regs() (*gokvm.Regs, error) {
	return retryValue(func() (*gokvm.Regs, error) { return gokvm.GetRegs(c.fd) })
}

// SetRegs sets the general-purpose registers.
func (c *VCPU) SetRegs(r *gokvm.Regs) error {
	return retry(func() error { return gokvm.SetRegs(c.fd, r) })
}

// Sregs returns the special registers.
func (c *VCPU) Sregs() (*gokvm.Sregs, error) {
	return retryValue(func() (*gokvm.Sregs, error) { return gokvm.GetSregs(c.fd) })
}

// SetSregs sets the special registers.
func (c *VCPU) SetSregs(s *gokvm.Sregs) error {
	return retry(func() error { return gokvm.SetSregs(c.fd, s) })
}

// MPState returns KVM_GET_MP_STATE.
func (c *VCPU) MPState() (uint32, error) {
	var s gokvm.MPState
	err := retry(func() error { return gokvm.GetMPState(c.fd, &s) })
	return s.State, err
}

// SetCPUID2 sets the CPUID the guest sees (KVM_SET_CPUID2).
func (c *VCPU) SetCPUID2(id *gokvm.CPUID) error {
	return retry(func() error { return gokvm.SetCPUID2(c.fd, id) })
}

// SetMSRs writes model-specific registers.
func (c *VCPU) SetMSRs(entries []gokvm.MSREntry) error {
	m := &gokvm.MSRS{NMSRs: uint32(len(entries)), Entries: entries}
	return retry(func() error { return gokvm.SetMSRs(c.fd, m) })
}

// InjectException queues exception vector for delivery on the next entry
// (KVM_SET_VCPU_EVENTS), without an error code, leaving interrupt, NMI and
// SIPI state as KVM_GET_VCPU_EVENTS found them.
func (c *VCPU) InjectException(vector uint8) error {
	var ev gokvm.VCPUEvents
	if err := retry(func() error { return gokvm.GetVCPUEvents(c.fd, &ev) }); err != nil {
		return fmt.Errorf("KVM_GET_VCPU_EVENTS: %w", err)
	}
	ev.E = gokvm.Exception{Inject: 1, Nr: vector}
	ev.Flags = 0 // do not rewrite NMI-pending, SIPI vector or SMM state
	if err := retry(func() error { return gokvm.SetVCPUEvents(c.fd, &ev) }); err != nil {
		return fmt.Errorf("KVM_SET_VCPU_EVENTS: %w", err)
	}
	return nil
}

// Translate walks the guest page tables for a guest-virtual address
// (KVM_TRANSLATE) and returns the guest-physical address.
func (c *VCPU) Translate(gva uint64) (uint64, bool) {
	t := gokvm.Translation{LinearAddress: gva}
	if err := retry(func() error { return gokvm.Translate(c.fd, &t) }); err != nil || t.Valid == 0 {
		return 0, false
	}
	return t.PhysicalAddress, true
}
