package kvm

import (
	"fmt"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine file descriptor.
type VM struct {
	fd      uintptr
	runSize int
}

// Fd returns the VM's file descriptor.
func (vm *VM) Fd() uintptr { return vm.fd }

// Close closes the VM descriptor; the kernel frees the VM once its vCPUs are
// closed too.
func (vm *VM) Close() error { return unix.Close(int(vm.fd)) }

// CheckExtension returns KVM_CHECK_EXTENSION asked on the VM descriptor,
// where some capabilities (KVM_CAP_XSAVE2's size) are answered for this VM.
func (vm *VM) CheckExtension(cap int) int { return checkExtension(vm.fd, cap) }

// SetMemory registers size bytes of host memory at hostAddr as guest RAM
// in slot at gpa (KVM_SET_USER_MEMORY_REGION). The host mapping must stay
// in place while the VM lives.
func (vm *VM) SetMemory(slot uint32, gpa, size, hostAddr uint64) error {
	r := gokvm.UserspaceMemoryRegion{
		Slot:          slot,
		GuestPhysAddr: gpa,
		MemorySize:    size,
		UserspaceAddr: hostAddr,
	}
	if err := retry(func() error { return gokvm.SetUserMemoryRegion(vm.fd, &r) }); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at %#x: %w", slot, gpa, err)
	}
	return nil
}

// SetTSSAddr sets the three-page region KVM uses for real-mode emulation on
// Intel VT-x (KVM_SET_TSS_ADDR).
func (vm *VM) SetTSSAddr(addr uint32) error {
	if err := retry(func() error { return gokvm.SetTSSAddr(vm.fd, addr) }); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR: %w", err)
	}
	return nil
}

// SetIdentityMapAddr sets the one-page identity map KVM uses on VT-x
// (KVM_SET_IDENTITY_MAP_ADDR). The kernel reads a __u64.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	if err := retry(func() error { return ioctlPtr(vm.fd, KVM_SET_IDENTITY_MAP_ADDR, ptrU64(&addr)) }); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR: %w", err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, IOAPIC and per-vCPU LAPICs. It
// must come before any vCPU is created.
func (vm *VM) CreateIRQChip() error {
	if err := retry(func() error { return gokvm.CreateIRQChip(vm.fd) }); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 PIT.
func (vm *VM) CreatePIT2() error {
	if err := retry(func() error { return gokvm.CreatePIT2(vm.fd) }); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of an interrupt line of the in-kernel irqchip
// (KVM_IRQ_LINE_STATUS).
func (vm *VM) IRQLine(irq uint32, high bool) error {
	level := uint32(0)
	if high {
		level = 1
	}
	return retry(func() error { return gokvm.IRQLineStatus(vm.fd, irq, level) })
}

// clockRealtime is KVM_CLOCK_REALTIME: KVM_GET_CLOCK filled Realtime.
const clockRealtime = 1 << 2

// Clock returns the guest's kvmclock in nanoseconds (KVM_GET_CLOCK) and,
// where KVM reports it (KVM_CLOCK_REALTIME), the host's CLOCK_REALTIME
// read at the same instant.
func (vm *VM) Clock() (kvmclock, realtime uint64, hasRealtime bool, err error) {
	var cd gokvm.ClockData
	if err := retry(func() error { return gokvm.GetClock(vm.fd, &cd) }); err != nil {
		return 0, 0, false, fmt.Errorf("KVM_GET_CLOCK: %w", err)
	}
	return cd.Clock, cd.Realtime, cd.Flags&clockRealtime != 0, nil
}

// CreateVCPU creates vCPU id and maps its kvm_run page.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := retryValue(func() (uintptr, error) { return gokvm.CreateVCPU(vm.fd, id) })
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	run, err := unix.Mmap(int(fd), 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("mmap kvm_run of vCPU %d: %w", id, err)
	}
	return &VCPU{ID: id, fd: fd, vmfd: vm.fd, run: Run{b: run}}, nil
}
