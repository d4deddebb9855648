package vmm

import (
	"fmt"
	"strings"

	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// BaseKernelParams are on every guest command line (after the console=
// that KernelCmdline adds): keyboard-controller reboot (the VMM ends the run on the i8042 reset
// pulse), an immediate reboot on panic (so a panic ends the run), quiet
// boot, the TSC trusted as the host keeps it stable, and the initrd kept
// rather than freed (freeing poisons and re-protects every page, seconds
// of emulated work, to win back the initramfs's 2 MiB).
var BaseKernelParams = []string{
	"reboot=k",
	"panic=-1",
	"quiet",
	"tsc=reliable",
	"retain_initrd",
}

// KVM paravirtual feature bits (CPUID 0x40000001 EAX, <asm/kvm_para.h>).
const (
	cpuidLeafKVMFeatures = 0x40000001
	kvmFeaturePVSendIPI  = 11
)

// emulatedKVMFeatures returns the KVM paravirtual features a guest on an
// emulating host should use: what this KVM reports, less PV IPIs. The guest
// reads the outer hypervisor's feature leaf there (CPUID is not
// virtualized), and PV IPIs sent through KVM_HC_SEND_IPI stalled SMP
// bring-up on such a host; plain APIC IPIs work.
func emulatedKVMFeatures(supported uint32) uint32 {
	return supported &^ (1 << kvmFeaturePVSendIPI)
}

// EmulatedKVMFeatureParam is the tracevisor.kvm_features parameter the
// emulated profile passes for KVM's supported paravirtual feature leaf.
func EmulatedKVMFeatureParam(supported uint32) string {
	return fmt.Sprintf("tracevisor.kvm_features=%#x", emulatedKVMFeatures(supported))
}

// KVMFeatures returns KVM's supported paravirtual feature leaf (CPUID
// 0x40000001 EAX from KVM_GET_SUPPORTED_CPUID).
func KVMFeatures(sys *kvm.System) (uint32, error) {
	c, err := sys.SupportedCPUID()
	if err != nil {
		return 0, err
	}
	return kvmFeatures(c), nil
}

// KernelCmdline composes the guest command line: BaseKernelParams, then the
// profile's parameters, then the user's extra text, so the user's words win
// where the kernel takes the last value. kvmFeatures is KVM's supported
// paravirtual feature leaf; the emulated profile passes a mask of it to the
// guest-kernel patch that reads tracevisor.kvm_features.
//
// console names the guest console device: "ttyS0" (COM1) or "hvc0" (the
// virtio console).
func KernelCmdline(p Profile, kvmFeatures uint32, console, extra string) string {
	parts := append([]string{"console=" + console}, BaseKernelParams...)
	if p == ProfileEmulated {
		parts = append(parts, EmulatedKernelParams...)
		parts = append(parts, EmulatedKVMFeatureParam(kvmFeatures))
	}
	if e := strings.TrimSpace(extra); e != "" {
		parts = append(parts, e)
	}
	return strings.Join(parts, " ")
}
