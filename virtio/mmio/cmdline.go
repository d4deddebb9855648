package mmio

import "fmt"

// CmdlineParam returns the Linux kernel command-line parameter that makes
// the guest probe a virtio-mmio device of size bytes at guest-physical
// base using interrupt irq, in the form drivers/virtio/virtio_mmio.c
// (vm_cmdline_set, CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES) parses:
//
//	virtio_mmio.device=<size>@<base>:<irq>
//
// <size> goes through memparse, so it is written with a K, M or G suffix
// when it is a whole number of those; <base> is read with "%lli", so it
// is written in 0x-prefixed hex; <irq> with "%u". Example:
// CmdlineParam(0x1000, 0xd0001000, 5) == "virtio_mmio.device=4K@0xd0001000:5".
// One parameter per device, separated by spaces.
func CmdlineParam(size, base uint64, irq uint32) string {
	return fmt.Sprintf("virtio_mmio.device=%s@%#x:%d", memSize(size), base, irq)
}

// memSize writes n the way memparse reads it back.
func memSize(n uint64) string {
	switch {
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("%d", n)
}
