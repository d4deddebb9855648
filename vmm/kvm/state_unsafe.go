package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request numbers of the state ioctls gokvm lacks or wraps without
// the return value (<linux/kvm.h>; _IOC(dir, 0xAE, nr, size)).
const (
	KVM_GET_MSR_INDEX_LIST = 0xC004AE02 // _IOWR(KVMIO, 0x02, struct kvm_msr_list)
	KVM_GET_MSRS           = 0xC008AE88 // _IOWR(KVMIO, 0x88, struct kvm_msrs)
	KVM_SET_MSRS           = 0x4008AE89 // _IOW(KVMIO, 0x89, struct kvm_msrs)
	KVM_GET_FPU            = 0x81A0AE8C // _IOR(KVMIO, 0x8c, struct kvm_fpu)
	KVM_SET_FPU            = 0x41A0AE8D // _IOW(KVMIO, 0x8d, struct kvm_fpu)
	KVM_GET_XSAVE          = 0x9000AEA4 // _IOR(KVMIO, 0xa4, struct kvm_xsave)
	KVM_SET_XSAVE          = 0x5000AEA5 // _IOW(KVMIO, 0xa5, struct kvm_xsave)
	KVM_GET_XSAVE2         = 0x9000AECF // _IOR(KVMIO, 0xcf, struct kvm_xsave)
)

// FPU must be struct kvm_fpu byte for byte: the two lines fail to compile
// if it is larger or smaller than 416 bytes.
var (
	_ [fpuSize - unsafe.Sizeof(FPU{})]byte
	_ [unsafe.Sizeof(FPU{}) - fpuSize]byte
)

// ioctlPtrValue is ioctlPtr for ioctls whose non-negative return value
// carries a result (KVM_GET_MSRS: the count read).
func ioctlPtrValue(fd, req uintptr, p unsafe.Pointer) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(p))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// msrIndexList returns KVM_GET_MSR_INDEX_LIST, growing the buffer once
// when the kernel answers E2BIG with the count it needs.
func msrIndexList(sysfd uintptr) ([]uint32, error) {
	n := 512
	for {
		buf := make([]uint32, 1+n) // struct kvm_msr_list { nmsrs; indices[] }
		buf[0] = uint32(n)
		err := retry(func() error { return ioctlPtr(sysfd, KVM_GET_MSR_INDEX_LIST, unsafe.Pointer(&buf[0])) })
		if errors.Is(err, unix.E2BIG) && int(buf[0]) > n && buf[0] <= maxMSRs {
			n = int(buf[0])
			continue
		}
		if err != nil {
			return nil, err
		}
		if int(buf[0]) > n {
			return nil, fmt.Errorf("kernel reported %d MSRs in a %d-entry list", buf[0], n)
		}
		return buf[1 : 1+buf[0]], nil
	}
}

// msrBuffer lays out struct kvm_msrs followed by one kvm_msr_entry per
// MSR (index, reserved, data: 16 bytes).
func msrBuffer(msrs []MSR) []byte {
	b := make([]byte, 8+16*len(msrs))
	binary.LittleEndian.PutUint32(b, uint32(len(msrs)))
	for i, m := range msrs {
		e := b[8+16*i:]
		binary.LittleEndian.PutUint32(e, m.Index)
		binary.LittleEndian.PutUint64(e[8:], m.Data)
	}
	return b
}

// getMSRs issues one KVM_GET_MSRS for the indices of msrs and returns the
// entries the kernel read: it stops at the first MSR it cannot read and
// returns how many it did.
func getMSRs(vcpufd uintptr, msrs []MSR) ([]MSR, error) {
	if len(msrs) == 0 {
		return nil, nil
	}
	b := msrBuffer(msrs)
	n, err := retryValue(func() (int, error) { return ioctlPtrValue(vcpufd, KVM_GET_MSRS, unsafe.Pointer(&b[0])) })
	if err != nil {
		return nil, err
	}
	if n < 0 || n > len(msrs) {
		return nil, fmt.Errorf("KVM_GET_MSRS read %d of %d MSRs", n, len(msrs))
	}
	out := make([]MSR, n)
	for i := range out {
		e := b[8+16*i:]
		out[i] = MSR{Index: binary.LittleEndian.Uint32(e), Data: binary.LittleEndian.Uint64(e[8:])}
	}
	return out, nil
}

// setMSRs issues one KVM_SET_MSRS and returns how many MSRs the kernel
// wrote; it stops at the first one it refuses.
func setMSRs(vcpufd uintptr, msrs []MSR) (int, error) {
	if len(msrs) == 0 {
		return 0, nil
	}
	b := msrBuffer(msrs)
	return retryValue(func() (int, error) { return ioctlPtrValue(vcpufd, KVM_SET_MSRS, unsafe.Pointer(&b[0])) })
}

// getFPU issues KVM_GET_FPU.
func getFPU(vcpufd uintptr) (*FPU, error) {
	f := new(FPU)
	err := retry(func() error { return ioctlPtr(vcpufd, KVM_GET_FPU, unsafe.Pointer(f)) })
	return f, err
}

// setFPU issues KVM_SET_FPU.
func setFPU(vcpufd uintptr, f *FPU) error {
	g := *f
	return retry(func() error { return ioctlPtr(vcpufd, KVM_SET_FPU, unsafe.Pointer(&g)) })
}

// getXSAVE reads size bytes of XSAVE area: KVM_GET_XSAVE2 when size came
// from KVM_CAP_XSAVE2, otherwise KVM_GET_XSAVE (size 4096).
func getXSAVE(vcpufd uintptr, size int, xsave2 bool) ([]byte, error) {
	b := make([]byte, size)
	req := uintptr(KVM_GET_XSAVE)
	if xsave2 {
		req = KVM_GET_XSAVE2
	}
	err := retry(func() error { return ioctlPtr(vcpufd, req, unsafe.Pointer(&b[0])) })
	return b, err
}

// setXSAVE issues KVM_SET_XSAVE. The kernel reads as many bytes as
// KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) reports (4096 without it), so the
// area is copied into a buffer of hostSize bytes, zero-padded.
func setXSAVE(vcpufd uintptr, area []byte, hostSize int) error {
	b := make([]byte, hostSize)
	copy(b, area)
	return retry(func() error { return ioctlPtr(vcpufd, KVM_SET_XSAVE, unsafe.Pointer(&b[0])) })
}
