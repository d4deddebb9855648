package vmm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Profile says how much of the guest the host's KVM runs in hardware.
type Profile int

const (
	// ProfileHardware is ordinary KVM on VT-x or AMD-V: nothing to work around.
	ProfileHardware Profile = iota + 1
	// ProfileEmulated is a KVM that runs guest user mode natively but
	// emulates guest kernel mode instruction by instruction (the PVM
	// module, kvm_pvm). Some instructions cannot be emulated, CPUID is not
	// virtualized and user-mode SYSCALL does not reach the guest kernel;
	// see EmulatedKernelParams and the exit handling in exit.go.
	ProfileEmulated
)

func (p Profile) String() string {
	switch p {
	case ProfileHardware:
		return "hardware"
	case ProfileEmulated:
		return "emulated"
	}
	return fmt.Sprintf("Profile(%d)", int(p))
}

// ParseProfile parses --host-profile: "auto" returns 0, meaning detect.
func ParseProfile(s string) (Profile, error) {
	switch s {
	case "auto", "":
		return 0, nil
	case "hardware":
		return ProfileHardware, nil
	case "emulated":
		return ProfileEmulated, nil
	}
	return 0, fmt.Errorf("unknown host profile %q (want auto, hardware or emulated)", s)
}

// EmulatedKernelParams keep a guest kernel off what an emulating host cannot
// run. CPUID is not virtualized there, so features are cleared on the
// command line instead: xsave/xrstor, FSGSBASE, PCID, and by X86_FEATURE
// number (Linux 6.1): cx16(141) movbe(150) popcnt(151) bmi1(291) bmi2(296)
// erms(297) invpcid(298) rdseed(306) smap(308) clflushopt(311) clwb(312)
// rdpid(534) fsrm(580) rdrand(158) abm(197) vmx(133) umip(514).
// tracevisor.syscall_fixup switches on the guest-kernel patch that finishes
// user-mode system calls (guest-kernel/patches). rodata=off skips
// write-protecting the kernel's read-only data and freeing the alignment
// gaps around it: page-attribute splits and page poisoning that cost 3.4 s
// of emulated boot, for a protection a throwaway test guest can spare.
// percpu_alloc=page builds the per-CPU first chunk from the pages it needs
// instead of one 2 MiB embedded block that memblock zeroes a byte per
// emulated step (about 0.5 s of boot).
var EmulatedKernelParams = []string{
	"noxsave", "nofsgsbase", "nopcid",
	"clearcpuid=141,150,151,291,296,297,298,306,308,311,312,534,580,158,197,133,514",
	"tracevisor.syscall_fixup",
	"rodata=off",
	"percpu_alloc=page",
}

// DetectProfile decides the profile from what the host shows under root
// ("/" in production; tests pass a fake tree): the kvm_pvm module means
// emulated; kvm_intel or kvm_amd, or vmx/svm in /proc/cpuinfo, mean
// hardware. The reason says which evidence decided.
func DetectProfile(root string) (Profile, string) {
	if exists(filepath.Join(root, "sys/module/kvm_pvm")) {
		return ProfileEmulated, "kvm_pvm module loaded: guest kernel mode is emulated"
	}
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if exists(filepath.Join(root, "sys/module", m)) {
			return ProfileHardware, m + " module loaded: hardware virtualization"
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "flags") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if f == "vmx" || f == "svm" {
					return ProfileHardware, "CPU flag " + f + " present"
				}
			}
			break
		}
	}
	return ProfileEmulated, "no kvm_intel/kvm_amd module and no vmx/svm CPU flag: assuming an emulating KVM"
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
