package vmm

import gokvm "github.com/bobuhiro11/gokvm/kvm"

// CPUID leaves and bits the VMM adjusts per vCPU.
const (
	cpuidLeafFeatures  = 0x1
	cpuidLeafExtTopo   = 0xB
	cpuidLeafExtTopoV2 = 0x1F

	cpuidHypervisorBit = 1 << 31 // leaf 1 ECX: running under a hypervisor
	cpuidHTTBit        = 1 << 28 // leaf 1 EDX: EBX[23:16] counts logical CPUs
)

// vcpuCPUID returns the CPUID table for vCPU id of n: KVM's supported set,
// with the initial APIC ID, the logical processor count and the hypervisor
// bit filled in. (On the emulated profile the guest reads the host's CPUID
// regardless; the table still matters for KVM's own view of the vCPU.)
func vcpuCPUID(supported *gokvm.CPUID, id, n int) *gokvm.CPUID {
	out := &gokvm.CPUID{Nent: supported.Nent, Entries: make([]gokvm.CPUIDEntry2, supported.Nent)}
	copy(out.Entries, supported.Entries[:supported.Nent])
	for i := range out.Entries {
		e := &out.Entries[i]
		switch e.Function {
		case cpuidLeafFeatures:
			e.Ebx = e.Ebx&0x0000_ffff | uint32(id)<<24 | uint32(n)<<16
			e.Ecx |= cpuidHypervisorBit
			if n > 1 {
				e.Edx |= cpuidHTTBit
			}
		case cpuidLeafExtTopo, cpuidLeafExtTopoV2:
			e.Edx = uint32(id)
		}
	}
	return out
}

// kvmFeatures returns the KVM paravirtual feature leaf (0x40000001 EAX) of a
// CPUID table, 0 when absent.
func kvmFeatures(c *gokvm.CPUID) uint32 {
	for _, e := range c.Entries[:c.Nent] {
		if e.Function == cpuidLeafKVMFeatures {
			return e.Eax
		}
	}
	return 0
}
