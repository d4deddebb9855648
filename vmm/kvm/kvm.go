// Package kvm is tracevisor's thin layer over the Linux KVM API: the /dev/kvm
// system handle, VMs, vCPUs and the kvm_run page.
//
// Where github.com/bobuhiro11/gokvm's kvm package wraps an ioctl correctly it
// is used as is; the few ioctls it lacks or gets wrong (KVM_RUN's EINTR,
// KVM_SET_IDENTITY_MAP_ADDR's 8-byte argument) are written here on
// golang.org/x/sys/unix. Every pointer handed to the kernel is made in
// ioctl_unsafe.go, the only file of the package that imports unsafe.
// Constants are spelled as in <linux/kvm.h>.
package kvm

import (
	"fmt"
	"os"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// DevicePath is where the KVM device node lives.
const DevicePath = "/dev/kvm"

// KVM_API_VERSION is the only API version KVM has ever reported.
const KVM_API_VERSION = 12

// Capabilities queried with KVM_CHECK_EXTENSION (values from <linux/kvm.h>).
const (
	KVM_CAP_IRQCHIP                   = 0
	KVM_CAP_HLT                       = 1
	KVM_CAP_USER_MEMORY               = 3
	KVM_CAP_SET_TSS_ADDR              = 4
	KVM_CAP_NR_VCPUS                  = 9
	KVM_CAP_NR_MEMSLOTS               = 10
	KVM_CAP_PIT                       = 11
	KVM_CAP_MP_STATE                  = 14
	KVM_CAP_IRQFD                     = 32
	KVM_CAP_PIT2                      = 33
	KVM_CAP_IOEVENTFD                 = 36
	KVM_CAP_SET_IDENTITY_MAP_ADDR     = 37
	KVM_CAP_ADJUST_CLOCK              = 39
	KVM_CAP_VCPU_EVENTS               = 41
	KVM_CAP_TSC_CONTROL               = 60
	KVM_CAP_MAX_VCPUS                 = 66
	KVM_CAP_IMMEDIATE_EXIT            = 136
	KVM_CAP_EXIT_ON_EMULATION_FAILURE = 204
)

// CapabilityNames names the capabilities `vmm doctor` reports.
var CapabilityNames = []struct {
	Cap  int
	Name string
}{
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS"},
	{KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS"},
	{KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
	{KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK"},
	{KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	{KVM_CAP_EXIT_ON_EMULATION_FAILURE, "KVM_CAP_EXIT_ON_EMULATION_FAILURE"},
}

// System is an open /dev/kvm.
type System struct {
	f       *os.File
	runSize int
}

// Open opens /dev/kvm and checks the API version. The error says what to do
// when the device is missing or not accessible.
func Open() (*System, error) {
	f, err := os.OpenFile(DevicePath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case os.IsNotExist(err):
			return nil, fmt.Errorf("%s does not exist: this host offers no KVM (load kvm_intel, kvm_amd or kvm_pvm)", DevicePath)
		case os.IsPermission(err):
			return nil, fmt.Errorf("%s: permission denied (run as root or join the kvm group)", DevicePath)
		}
		return nil, err
	}
	s := &System{f: f}
	v, err := retryValue(func() (uintptr, error) { return gokvm.GetAPIVersion(s.fd()) })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != KVM_API_VERSION {
		f.Close()
		return nil, fmt.Errorf("KVM API version %d, want %d", v, KVM_API_VERSION)
	}
	n, err := retryValue(func() (uintptr, error) { return gokvm.GetVCPUMMmapSize(s.fd()) })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	s.runSize = int(n)
	return s, nil
}

// Available reports whether /dev/kvm exists, for tests that must skip
// (saying so) where it does not.
func Available() bool {
	_, err := os.Stat(DevicePath)
	return err == nil
}

func (s *System) fd() uintptr { return s.f.Fd() }

// Close closes /dev/kvm. VMs created from it stay valid.
func (s *System) Close() error { return s.f.Close() }

// CheckExtension returns KVM_CHECK_EXTENSION's answer for cap: 0 when
// absent, otherwise 1 or a capability-specific number.
func (s *System) CheckExtension(cap int) int {
	r, err := retryValue(func() (uintptr, error) { return ioctlValue(s.fd(), KVM_CHECK_EXTENSION, uintptr(cap)) })
	if err != nil {
		return 0
	}
	return int(r)
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID.
func (s *System) SupportedCPUID() (*gokvm.CPUID, error) {
	c := &gokvm.CPUID{Nent: 256, Entries: make([]gokvm.CPUIDEntry2, 256)}
	if err := retry(func() error { return gokvm.GetSupportedCPUID(s.fd(), c) }); err != nil {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	return c, nil
}

// CreateVM creates a VM.
func (s *System) CreateVM() (*VM, error) {
	fd, err := retryValue(func() (uintptr, error) { return gokvm.CreateVM(s.fd()) })
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &VM{fd: fd, runSize: s.runSize}, nil
}
