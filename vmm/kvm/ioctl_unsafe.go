package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request numbers this package issues itself (<linux/kvm.h>).
const (
	KVM_CHECK_EXTENSION       = 0xAE03     // _IO(KVMIO, 0x03)
	KVM_RUN                   = 0xAE80     // _IO(KVMIO, 0x80)
	KVM_SET_IDENTITY_MAP_ADDR = 0x4008AE48 // _IOW(KVMIO, 0x48, __u64)
	KVM_IOEVENTFD             = 0x4040AE79 // _IOW(KVMIO, 0x79, struct kvm_ioeventfd)
	KVM_IRQFD                 = 0x4020AE76 // _IOW(KVMIO, 0x76, struct kvm_irqfd)
)

// irqfdIoctl issues KVM_IRQFD.
func irqfdIoctl(vm uintptr, s *kvmIrqfd) error {
	return ioctlPtr(vm, KVM_IRQFD, unsafe.Pointer(s))
}

// ioeventfdIoctl issues KVM_IOEVENTFD.
func ioeventfdIoctl(vm uintptr, s *kvmIoeventfd) error {
	return ioctlPtr(vm, KVM_IOEVENTFD, unsafe.Pointer(s))
}

// ioctlValue issues an ioctl whose argument is a plain integer.
func ioctlValue(fd uintptr, req uintptr, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// ioctlPtr issues an ioctl whose argument points at memory the caller owns
// for the duration of the call.
func ioctlPtr(fd uintptr, req uintptr, p unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(p))
	if errno != 0 {
		return errno
	}
	return nil
}

// ptrU64 passes a *uint64 to ioctlPtr.
func ptrU64(v *uint64) unsafe.Pointer { return unsafe.Pointer(v) }
