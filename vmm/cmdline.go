package vmm

import "strings"

// BaseKernelParams are on every guest command line: the console on COM1,
// keyboard-controller reboot (the VMM ends the run on the i8042 reset
// pulse), an immediate reboot on panic (so a panic ends the run), quiet
// boot, the TSC trusted as the host keeps it stable, and the initrd kept
// rather than freed (freeing poisons and re-protects every page, seconds
// of emulated work, to win back the initramfs's 2 MiB).
var BaseKernelParams = []string{
	"console=ttyS0",
	"reboot=k",
	"panic=-1",
	"quiet",
	"tsc=reliable",
	"retain_initrd",
}

// KernelCmdline composes the guest command line: BaseKernelParams, then the
// profile's parameters, then the user's extra text, so the user's words win
// where the kernel takes the last value.
func KernelCmdline(p Profile, extra string) string {
	parts := append([]string{}, BaseKernelParams...)
	if p == ProfileEmulated {
		parts = append(parts, EmulatedKernelParams...)
	}
	if e := strings.TrimSpace(extra); e != "" {
		parts = append(parts, e)
	}
	return strings.Join(parts, " ")
}
