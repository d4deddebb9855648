package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/vmm"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

const doctorHelp = `Usage: vmm doctor

Print what this host's /dev/kvm offers, which host profile 'vmm run
--host-profile=auto' picks and why, the kernel parameters that profile adds,
and whether the project's guest kernel and initramfs are built.
Exits 1 when /dev/kvm cannot be used.
`

func doctorCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm doctor", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, doctorHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "vmm doctor: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usageError("doctor", fmt.Errorf("unexpected argument %q: doctor takes none", fs.Arg(0)))
	}
	code := 0
	var features uint32
	sys, err := kvm.Open()
	if err != nil {
		fmt.Printf("kvm:           %v\n", err)
		code = exitError
	} else {
		fmt.Printf("kvm:           %s, API version %d\n", kvm.DevicePath, kvm.KVM_API_VERSION)
		for _, c := range kvm.CapabilityNames {
			fmt.Printf("  %-36s %d\n", c.Name, sys.CheckExtension(c.Cap))
		}
		if features, err = vmm.KVMFeatures(sys); err == nil {
			fmt.Printf("  %-36s %#x\n", "KVM paravirtual features", features)
		}
		sys.Close()
	}
	p, why := vmm.DetectProfile("/")
	fmt.Printf("host profile:  %s (%s)\n", p, why)
	if p == vmm.ProfileEmulated {
		params := append(append([]string{}, vmm.EmulatedKernelParams...), vmm.EmulatedKVMFeatureParam(features))
		fmt.Printf("  kernel parameters added: %s\n", strings.Join(params, " "))
		fmt.Println("  int3 is reflected into the guest as #BP; fwait is skipped")
	}
	for _, f := range []struct{ rel, what, target string }{
		{defaultKernel, "guest kernel", "guest-kernel"},
		{defaultInitramfs, "initramfs", "initramfs"},
	} {
		if path, err := findDefault(f.rel, f.what, f.target); err == nil {
			fmt.Printf("%-14s %s\n", f.what+":", path)
		} else {
			fmt.Printf("%-14s not built (make %s)\n", f.what+":", f.target)
		}
	}
	return code
}
