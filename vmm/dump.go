package vmm

import (
	"errors"
	"fmt"
	"os"
	"time"

	gokvm "github.com/bobuhiro11/gokvm/kvm"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/internal/atomicfile"
	"github.com/tracevisor/tracevisor/vmm/elfcore"
)

// parkedRegs are a vCPU's registers as read on its thread.
type parkedRegs struct {
	r gokvm.Regs
	s gokvm.Sregs
}

// readRegs reads the vCPU's registers; call it on the vCPU's thread, out
// of KVM_RUN.
func (v *vcpu) readRegs() (*parkedRegs, error) {
	r, err := v.kvm.Regs()
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	s, err := v.kvm.Sregs()
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	return &parkedRegs{r: *r, s: *s}, nil
}

// Dump writes the guest as an ELF core file at path (package elfcore): its
// RAM, mapped at the kernel's virtual addresses as the guest's page tables
// give them, and every vCPU's registers, for `gdb vmlinux PATH`. A fenced
// guest is written as its fence left it (the registers each vCPU read as
// it parked; a fence still in progress is waited for); a running one is
// paused until the core is written and runs on after it; a paused one
// stays paused. Pages of zeros are holes in the file. It appears whole or
// not at all (package atomicfile). It fails with ErrNotStarted before Run
// and ErrEnded after a run that ended unfenced.
func (m *Machine) Dump(path string) error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	start := time.Now()
	var regs []*parkedRegs
	var err error
	if m.fence.on.Load() {
		regs, err = m.fencedRegs()
	} else {
		wasPaused := m.pause.on.Load()
		if err := m.pauseLocked(); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		if !wasPaused {
			defer m.resumeLocked()
		}
		regs, err = m.pausedRegs()
	}
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	cpus := make([]elfcore.CPU, len(regs))
	for i, p := range regs {
		cpus[i] = coreCPU(p)
	}
	ram := m.mem.Regions()
	maps, how := m.coreMappings(regs, ram)
	err = atomicfile.Replace(path, 0o600, func(f *os.File) error { return elfcore.WriteFile(f, cpus, ram, maps) })
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	m.logf("dump %s: %d vCPUs, %d segments (%s), written in %v", path, len(cpus), len(maps), how, time.Since(start))
	return nil
}

// coreMappings are the core's segments: the kernel half of the page tables
// of a vCPU in 64-bit paging (one in kernel mode where there is one: a user
// mode vCPU's tables may map less of the kernel under page-table
// isolation), as far as the walk's bounds let it go; or, where no vCPU
// pages (it never ran, or stopped in its boot) or the walk fails, guest RAM
// at virtual = physical. how says which, for the log.
func (m *Machine) coreMappings(regs []*parkedRegs, ram []guestmem.Region) ([]elfcore.Mapping, string) {
	var pick *parkedRegs
	for _, p := range regs {
		if !longMode(p) {
			continue
		}
		if pick == nil || (!kernelMode(pick) && kernelMode(p)) {
			pick = p
		}
	}
	identity := func() []elfcore.Mapping {
		var maps []elfcore.Mapping
		for _, r := range ram {
			maps = append(maps, elfcore.Mapping{Virt: r.GPA, Phys: r.GPA, Size: r.Size()})
		}
		return maps
	}
	if pick == nil {
		return identity(), "no vCPU in 64-bit paging: physical addresses"
	}
	maps, err := elfcore.KernelMappings(m.mem, pick.s.CR3, pick.s.CR4)
	switch {
	case err == nil:
		return maps, "the kernel's mappings"
	case errors.Is(err, elfcore.ErrTooManySegments), errors.Is(err, elfcore.ErrTooManyTables):
		return maps, "the kernel's mappings, cut short: " + err.Error()
	}
	return identity(), "physical addresses: " + err.Error()
}

// Control-register bits coreMappings reads.
const (
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
	eferLMA = 1 << 10
)

// longMode reports whether the vCPU pages with 4-level (or 5-level) tables.
func longMode(p *parkedRegs) bool {
	return p.s.CR0&cr0PG != 0 && p.s.CR4&cr4PAE != 0 && p.s.EFER&eferLMA != 0
}

// kernelMode reports whether the vCPU runs at CPL 0.
func kernelMode(p *parkedRegs) bool { return p.s.CS.Selector&3 == 0 }

// fenceWait bounds Dump's wait for a fence in progress.
const fenceWait = 10 * time.Second

// fencedRegs returns the registers each vCPU read as it parked for the
// fence, once every vCPU is out (within fenceWait).
func (m *Machine) fencedRegs() ([]*parkedRegs, error) {
	m.fence.mu.Lock()
	allOut, started := m.fence.allOut, m.fence.started
	m.fence.mu.Unlock()
	if !started {
		return nil, ErrNotStarted
	}
	if allOut != nil {
		select {
		case <-allOut:
		case <-time.After(fenceWait):
			return nil, fmt.Errorf("the fence in progress did not take every vCPU out within %v", fenceWait)
		}
	}
	m.fence.mu.Lock()
	regs := append([]*parkedRegs(nil), m.fence.regs...)
	m.fence.mu.Unlock()
	for i, r := range regs {
		if r == nil {
			return nil, fmt.Errorf("vCPU %d's registers could not be read as it was fenced (see the machine's status)", i)
		}
	}
	return regs, nil
}

// pausedRegs reads every vCPU's registers on its thread; the guest is
// paused (the caller holds m.ctl).
func (m *Machine) pausedRegs() ([]*parkedRegs, error) {
	regs := make([]*parkedRegs, len(m.vcpus))
	for i, v := range m.vcpus {
		err := m.onVCPU(v, func() (err error) {
			regs[i], err = v.readRegs()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", v.kvm.ID, err)
		}
	}
	return regs, nil
}

// coreCPU is a vCPU's registers as the core gives them.
func coreCPU(p *parkedRegs) elfcore.CPU {
	r, s := p.r, p.s
	return elfcore.CPU{
		RAX: r.RAX, RBX: r.RBX, RCX: r.RCX, RDX: r.RDX, RSI: r.RSI, RDI: r.RDI, RSP: r.RSP, RBP: r.RBP,
		R8: r.R8, R9: r.R9, R10: r.R10, R11: r.R11, R12: r.R12, R13: r.R13, R14: r.R14, R15: r.R15,
		RIP: r.RIP, RFLAGS: r.RFLAGS,
		CS: uint64(s.CS.Selector), SS: uint64(s.SS.Selector), DS: uint64(s.DS.Selector),
		ES: uint64(s.ES.Selector), FS: uint64(s.FS.Selector), GS: uint64(s.GS.Selector),
		FSBase: s.FS.Base, GSBase: s.GS.Base,
	}
}
