package boot

import (
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Config is what the guest is booted with besides the kernel.
type Config struct {
	// Cmdline is the kernel command line, without the terminating NUL: at
	// most CmdlineMaxSize-1 bytes (a bzImage may allow fewer).
	Cmdline string
	// Initrd is the initial ramdisk; empty for none.
	Initrd []byte
	// CPUs is the number of vCPUs, 1 to MaxCPUs, described in the MP
	// table.
	CPUs int
}

// Format is a kernel file format.
type Format int

// Kernel formats Load accepts.
const (
	// FormatELF is an uncompressed ELF vmlinux, booted through PVH.
	FormatELF Format = iota + 1
	// FormatBzImage is a bzImage, booted through the 64-bit boot protocol.
	FormatBzImage
)

// String returns the format's usual name.
func (f Format) String() string {
	switch f {
	case FormatELF:
		return "ELF vmlinux"
	case FormatBzImage:
		return "bzImage"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ErrUnknownFormat is returned for a kernel file that is neither an ELF
// vmlinux nor a bzImage.
var ErrUnknownFormat = errors.New("kernel is neither an ELF vmlinux nor a bzImage")

// Detect tells the kernel file's format from its content: the ELF magic at
// offset 0, or the boot protocol's "HdrS" magic at offset 0x202.
func Detect(kernel []byte) (Format, error) {
	switch {
	case isELF(kernel):
		return FormatELF, nil
	case isBzImage(kernel):
		return FormatBzImage, nil
	}
	return 0, fmt.Errorf("%w: no ELF magic at offset 0 and no %q at %#x (a compressed vmlinux.gz or an arch/x86/boot/compressed/vmlinux.bin is not bootable)",
		ErrUnknownFormat, headerMagic, headerMagicOffset)
}

// Load writes the kernel file kernel, in either Format, into guest RAM mem
// together with everything it needs to boot with cfg (see the package
// documentation and layout.go), and returns the boot CPU's state at the
// kernel's entry point. mem's first region must start at 0 and extend past
// 1 MiB, as guestmem.New lays it out. Load clears every structure it
// writes and the vmlinux bss, so mem need not be zero.
//
// Load checks the kernel, the command line, the CPU count and the fit in
// RAM before it writes anything; every error names what is wrong with them.
func Load(mem *guestmem.Memory, kernel []byte, cfg Config) (*CPU, error) {
	format, err := Detect(kernel)
	if err != nil {
		return nil, err
	}
	ram := ramRanges(mem)
	e820, err := E820Map(ram)
	if err != nil {
		return nil, err
	}
	mp, err := mpTable(cfg.CPUs)
	if err != nil {
		return nil, err
	}

	var cpu *CPU
	switch format {
	case FormatELF:
		cpu, err = loadPVH(mem, kernel, &cfg, ram, e820)
	case FormatBzImage:
		cpu, err = loadBzImage(mem, kernel, &cfg, ram, e820)
	}
	if err != nil {
		return nil, err
	}
	if err := writeMPTable(mem, mp); err != nil {
		return nil, err
	}
	return cpu, nil
}
