package vmm

import (
	"fmt"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/tracevisor/tracevisor/vmm/boot"
)

// MSRs set on every vCPU before it first runs.
const (
	msrIA32MiscEnable = 0x1a0
	msrMTRRdefType    = 0x2ff

	miscEnableFastString = 1 << 0
	mtrrDefTypeEnable    = 1 << 11
	mtrrTypeWriteBack    = 6
)

// setup prepares the vCPU on its own thread: MSRs for every vCPU, and the
// boot protocol's entry state for the boot CPU. Application processors keep
// KVM's reset state and wait for INIT/SIPI from the in-kernel LAPIC. A
// restored machine's vCPUs need none of it.
func (v *vcpu) setup() error {
	if v.m.restored {
		return nil // the snapshot's state is in, MSRs and all
	}
	if err := v.kvm.SetMSRs([]gokvm.MSREntry{
		{Index: msrIA32MiscEnable, Data: miscEnableFastString},
		{Index: msrMTRRdefType, Data: mtrrDefTypeEnable | mtrrTypeWriteBack},
	}); err != nil {
		return fmt.Errorf("KVM_SET_MSRS on vCPU %d: %w", v.kvm.ID, err)
	}
	if v.kvm.ID != 0 {
		return nil
	}
	b := v.m.boot
	s, err := v.kvm.Sregs()
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	applySregs(s, b)
	if err := v.kvm.SetSregs(s); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	if err := v.kvm.SetRegs(&gokvm.Regs{
		RIP: b.RIP, RSP: b.RSP, RBX: b.RBX, RSI: b.RSI, RFLAGS: b.RFLAGS,
	}); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

// applySregs copies the boot CPU's mode, descriptor tables and segments
// into kvm_sregs, keeping the fields boot.CPU does not describe (APIC base,
// interrupt bitmap).
func applySregs(s *gokvm.Sregs, b *boot.CPU) {
	s.CR0, s.CR3, s.CR4, s.EFER = b.CR0, b.CR3, b.CR4, b.EFER
	s.GDT = gokvm.Descriptor{Base: b.GDT.Base, Limit: b.GDT.Limit}
	s.IDT = gokvm.Descriptor{Base: b.IDT.Base, Limit: b.IDT.Limit}
	s.CS, s.DS, s.ES = segment(b.CS), segment(b.DS), segment(b.ES)
	s.FS, s.GS, s.SS = segment(b.FS), segment(b.GS), segment(b.SS)
	s.TR, s.LDT = segment(b.TR), segment(b.LDT)
}

func segment(g boot.Segment) gokvm.Segment {
	return gokvm.Segment{
		Base: g.Base, Limit: g.Limit, Selector: g.Selector, Typ: g.Type,
		Present: bit(g.Present), DPL: g.DPL, DB: bit(g.DB), S: bit(g.S),
		L: bit(g.L), G: bit(g.G), AVL: bit(g.AVL), Unusable: bit(!g.Present),
	}
}

func bit(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
