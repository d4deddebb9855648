package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KVM_IOEVENTFD flags (<linux/kvm.h>).
const (
	KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0
	KVM_IOEVENTFD_FLAG_PIO       = 1 << 1
	KVM_IOEVENTFD_FLAG_DEASSIGN  = 1 << 2
)

// kvmIoeventfd mirrors struct kvm_ioeventfd (64 bytes).
type kvmIoeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	Fd        int32
	Flags     uint32
	_         [36]byte
}

// IOEventFD makes KVM signal a new eventfd, without exiting to the VMM,
// when the guest writes datamatch as a len-byte value to the MMIO address
// addr (KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DATAMATCH). Other writes to
// addr still exit as MMIO. The caller owns the returned descriptor.
func (vm *VM) IOEventFD(addr uint64, length uint32, datamatch uint64) (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	s := kvmIoeventfd{Datamatch: datamatch, Addr: addr, Len: length, Fd: int32(fd), Flags: KVM_IOEVENTFD_FLAG_DATAMATCH}
	if err := retry(func() error { return ioeventfdIoctl(vm.fd, &s) }); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("KVM_IOEVENTFD at %#x: %w", addr, err)
	}
	return fd, nil
}
