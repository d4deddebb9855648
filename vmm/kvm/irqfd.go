package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kvmIrqfd mirrors struct kvm_irqfd (32 bytes).
type kvmIrqfd struct {
	Fd         uint32
	Gsi        uint32
	Flags      uint32
	Resamplefd uint32
	_          [16]byte
}

// IRQFD returns a new eventfd that injects an interrupt on gsi each time it
// is written (KVM_IRQFD): KVM raises and lowers the line, an edge, without
// an ioctl from the VMM. The caller owns the descriptor.
func (vm *VM) IRQFD(gsi uint32) (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	s := kvmIrqfd{Fd: uint32(fd), Gsi: gsi}
	if err := retry(func() error { return irqfdIoctl(vm.fd, &s) }); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("KVM_IRQFD for GSI %d: %w", gsi, err)
	}
	return fd, nil
}
