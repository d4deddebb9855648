package vmm

import (
	"testing"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
)

func TestVCPUCPUID(t *testing.T) {
	supported := &gokvm.CPUID{Nent: 3, Entries: []gokvm.CPUIDEntry2{
		{Function: 0x1, Ebx: 0xff00_0800, Edx: 0},
		{Function: 0xb, Index: 0, Edx: 0xff},
		{Function: 0x40000001, Eax: 0x1007efb},
	}}
	c := vcpuCPUID(supported, 1, 2)
	if got := c.Entries[0].Ebx; got != 0x0102_0800 {
		t.Errorf("leaf 1 EBX = %#x, want APIC ID 1, 2 logical CPUs, low bits kept", got)
	}
	if c.Entries[0].Ecx&cpuidHypervisorBit == 0 || c.Entries[0].Edx&cpuidHTTBit == 0 {
		t.Errorf("leaf 1 ECX %#x EDX %#x: want hypervisor and HTT bits", c.Entries[0].Ecx, c.Entries[0].Edx)
	}
	if c.Entries[1].Edx != 1 {
		t.Errorf("leaf 0xb EDX = %d, want x2APIC ID 1", c.Entries[1].Edx)
	}
	if supported.Entries[0].Ebx != 0xff00_0800 {
		t.Error("vcpuCPUID modified the supported table")
	}
	if one := vcpuCPUID(supported, 0, 1); one.Entries[0].Edx&cpuidHTTBit != 0 {
		t.Error("HTT set for a one-vCPU guest")
	}
	if got := kvmFeatures(supported); got != 0x1007efb {
		t.Errorf("kvmFeatures = %#x", got)
	}
	if got := emulatedKVMFeatures(0x1007efb); got&(1<<kvmFeaturePVSendIPI) != 0 || got != 0x1007efb&^0x800 {
		t.Errorf("emulatedKVMFeatures = %#x, want PV_SEND_IPI cleared and nothing else", got)
	}
}
