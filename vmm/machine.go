// Package vmm is tracevisor's virtual machine monitor: a KVM VM with guest
// RAM, the in-kernel irqchip and PIT, one locked OS thread per vCPU, port-I/O
// and MMIO buses with the legacy devices a Linux guest needs (COM1 UART,
// i8042 reset, CMOS clock, POST port) and tracevisor's debug device.
//
// A Machine runs one guest once: New builds it, Run starts the vCPUs and
// returns how the guest ended (Ending).
package vmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/vmm/boot"
	"github.com/tracevisor/tracevisor/vmm/bus"
	"github.com/tracevisor/tracevisor/vmm/guestmem"
	"github.com/tracevisor/tracevisor/vmm/kvm"
	"golang.org/x/sys/unix"
)

// MaxCPUs is the most vCPUs a guest may have (bounded by the MP table).
const MaxCPUs = 16

// Addresses KVM needs for real-mode emulation on VT-x, in the top of the
// 32-bit hole, clear of the IOAPIC and LAPIC.
const (
	identityMapAddr = 0xFFFB_C000
	tssAddr         = 0xFFFB_D000
)

// Config describes one guest run.
type Config struct {
	// Kernel is a vmlinux ELF (booted through PVH) or a bzImage.
	Kernel []byte
	// Initrd is the initramfs; may be empty.
	Initrd []byte
	// Cmdline is the complete kernel command line (see KernelCmdline).
	Cmdline string
	// MemBytes is the guest RAM size.
	MemBytes uint64
	// CPUs is the vCPU count, 1..MaxCPUs.
	CPUs int
	// Profile must be ProfileHardware or ProfileEmulated (detect first).
	Profile Profile
	// Console receives the guest's serial output; ConsoleIn, when not nil,
	// feeds the serial input.
	Console   io.Writer
	ConsoleIn io.Reader
	// Symbols names kernel addresses in diagnostics; may be nil.
	Symbols *Symbols
	// Log receives VMM diagnostics (unhandled device accesses, ...); nil
	// discards them.
	Log io.Writer
}

// Machine is one VM.
type Machine struct {
	cfg   Config
	sys   *kvm.System
	vm    *kvm.VM
	mem   *guestmem.Memory
	pio   bus.Bus
	mmio  bus.Bus
	vcpus []*vcpu
	boot  *boot.CPU
	dev   *devices

	started time.Time
	events  eventLog

	endOnce sync.Once
	ending  Ending
	done    chan struct{}
}

// New validates cfg, creates the VM, loads the kernel and initrd, and
// creates the vCPUs. Close releases everything if Run is never called.
func New(cfg Config) (*Machine, error) {
	if cfg.CPUs < 1 || cfg.CPUs > MaxCPUs {
		return nil, fmt.Errorf("--cpus %d: must be 1 to %d", cfg.CPUs, MaxCPUs)
	}
	if cfg.Profile != ProfileHardware && cfg.Profile != ProfileEmulated {
		return nil, errors.New("vmm: Config.Profile not set")
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	m := &Machine{cfg: cfg, done: make(chan struct{})}
	if err := m.build(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// build does New's work on a Machine that Close can always release.
func (m *Machine) build() error {
	var err error
	if m.mem, err = guestmem.New(m.cfg.MemBytes); err != nil {
		return err
	}
	if m.sys, err = kvm.Open(); err != nil {
		return err
	}
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return err
	}
	if err = m.setupVM(); err != nil {
		return err
	}
	if m.boot, err = boot.Load(m.mem, m.cfg.Kernel, boot.Config{
		Cmdline: m.cfg.Cmdline,
		Initrd:  m.cfg.Initrd,
		CPUs:    m.cfg.CPUs,
	}); err != nil {
		return err
	}
	if m.dev, err = m.attachDevices(); err != nil {
		return err
	}
	cpuid, err := m.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	for i := 0; i < m.cfg.CPUs; i++ {
		c, err := m.vm.CreateVCPU(i)
		if err != nil {
			return err
		}
		m.vcpus = append(m.vcpus, &vcpu{m: m, kvm: c})
		if err := c.SetCPUID2(vcpuCPUID(cpuid, i, m.cfg.CPUs)); err != nil {
			return fmt.Errorf("KVM_SET_CPUID2 on vCPU %d: %w", i, err)
		}
	}
	return nil
}

// setupVM creates the in-kernel irqchip and PIT, the VT-x helper regions,
// and registers guest RAM.
func (m *Machine) setupVM() error {
	if m.sys.CheckExtension(kvm.KVM_CAP_IRQCHIP) == 0 {
		return errors.New("KVM lacks KVM_CAP_IRQCHIP (in-kernel irqchip)")
	}
	if m.sys.CheckExtension(kvm.KVM_CAP_SET_TSS_ADDR) != 0 {
		if err := m.vm.SetTSSAddr(tssAddr); err != nil {
			return err
		}
	}
	if m.sys.CheckExtension(kvm.KVM_CAP_SET_IDENTITY_MAP_ADDR) != 0 {
		if err := m.vm.SetIdentityMapAddr(identityMapAddr); err != nil {
			return err
		}
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	if err := m.vm.CreatePIT2(); err != nil {
		return err
	}
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetMemory(uint32(i), r.GPA, r.Size(), r.HostAddr()); err != nil {
			return err
		}
	}
	return nil
}

// Memory returns guest RAM.
func (m *Machine) Memory() *guestmem.Memory { return m.mem }

// Run starts every vCPU on its own locked OS thread and blocks until the
// guest ends, then returns how. It may be called once.
func (m *Machine) Run() Ending {
	m.started = time.Now()
	var wg sync.WaitGroup
	ready := make(chan error, len(m.vcpus))
	for _, v := range m.vcpus {
		wg.Add(1)
		go func(v *vcpu) {
			defer wg.Done()
			v.loop(ready)
		}(v)
	}
	for range m.vcpus {
		if err := <-ready; err != nil {
			m.end(Ending{Kind: EndInternalError, Reason: err.Error()})
		}
	}
	go m.watch()
	<-m.done
	for _, v := range m.vcpus {
		v.kick()
	}
	wg.Wait()
	m.ending.Status = m.events.status()
	return m.ending
}

// Stop asks a running guest to end with EndStopped; Run then returns.
func (m *Machine) Stop(reason string) {
	m.end(Ending{Kind: EndStopped, Reason: reason})
}

// end records the first ending and releases Run.
func (m *Machine) end(e Ending) {
	m.endOnce.Do(func() {
		m.ending = e
		close(m.done)
	})
}

func (m *Machine) ended() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// watchPeriod is how often idle vCPUs are kicked to see whether the guest
// has halted for good (a halt with interrupts off wakes no vCPU thread).
const watchPeriod = 100 * time.Millisecond

// watch kicks the vCPUs every watchPeriod until the run ends.
func (m *Machine) watch() {
	t := time.NewTicker(watchPeriod)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			for _, v := range m.vcpus {
				v.kick()
			}
		}
	}
}

// checkHalted ends the run when every vCPU has stopped for good: the boot
// CPU halted with interrupts disabled, the others too or never started.
func (m *Machine) checkHalted() {
	for _, v := range m.vcpus {
		if v.stopped.Load() == stoppedNo {
			return
		}
	}
	if m.vcpus[0].stopped.Load() != stoppedHalted {
		return
	}
	m.end(Ending{Kind: EndPoweroff, Reason: "guest halted (poweroff)"})
}

// BootTime returns the time from the first vCPU start to init's
// INIT_START event on the debug device.
func (m *Machine) BootTime() (time.Duration, bool) {
	t, ok := m.events.initStart()
	if !ok {
		return 0, false
	}
	return t.Sub(m.started), true
}

// Close releases the vCPUs, the VM and guest RAM.
func (m *Machine) Close() error {
	for _, v := range m.vcpus {
		v.kvm.Close()
	}
	if m.vm != nil {
		m.vm.Close()
	}
	if m.sys != nil {
		m.sys.Close()
	}
	if m.mem != nil {
		m.mem.Close()
	}
	return nil
}

func (m *Machine) logf(format string, args ...any) {
	fmt.Fprintf(m.cfg.Log, "vmm: "+format+"\n", args...)
}

// Stopped states of a vCPU, as last seen by the halt watch.
const (
	stoppedNo       = iota // running, or halted with interrupts on
	stoppedHalted          // halted with interrupts off: only NMI/INIT wakes it
	stoppedNeverRan        // an AP still waiting for its INIT/SIPI
)

// vcpu is the VMM side of one KVM vCPU.
type vcpu struct {
	m       *Machine
	kvm     *kvm.VCPU
	tid     atomic.Int32
	stopped atomic.Int32
}

// kick makes the vCPU's KVM_RUN return EINTR soon: immediate_exit covers
// the window before the thread enters KVM_RUN, the signal the time inside.
func (v *vcpu) kick() {
	v.kvm.RunData().SetImmediateExit(true)
	if tid := v.tid.Load(); tid != 0 {
		unix.Tgkill(os.Getpid(), int(tid), kickSignal)
	}
}

// kickSignal interrupts KVM_RUN. The Go runtime handles SIGURG on every
// thread and ignores it outside its own preemption requests.
const kickSignal = unix.SIGURG

// loop runs the vCPU until the machine ends. It reports setup success or
// failure on ready first.
func (v *vcpu) loop(ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	v.tid.Store(int32(unix.Gettid()))
	if err := v.setup(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	run := v.kvm.RunData()
	for !v.m.ended() {
		err := v.kvm.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			run.SetImmediateExit(false)
			v.observe()
			continue
		}
		if err != nil {
			v.m.end(Ending{Kind: EndInternalError, Reason: err.Error()})
			return
		}
		v.stopped.Store(stoppedNo)
		s := handleExit(run, v, v.m.cfg.Profile)
		if err := v.apply(s); err != nil {
			v.m.end(Ending{Kind: EndInternalError, Reason: err.Error()})
			return
		}
	}
}

// observe records whether the vCPU has stopped for good, after a kick.
func (v *vcpu) observe() {
	st, err := v.kvm.MPState()
	if err != nil {
		return
	}
	state := int32(stoppedNo)
	switch st {
	case kvm.KVM_MP_STATE_UNINITIALIZED:
		if v.kvm.ID != 0 {
			state = stoppedNeverRan
		}
	case kvm.KVM_MP_STATE_HALTED:
		if r, err := v.kvm.Regs(); err == nil && r.RFLAGS&rflagsIF == 0 {
			state = stoppedHalted
		}
	}
	v.stopped.Store(state)
	if state != stoppedNo {
		v.m.checkHalted()
	}
}

const rflagsIF = 1 << 9

// apply carries out handleExit's verdict on the vCPU.
func (v *vcpu) apply(s step) error {
	switch s.kind {
	case stepContinue:
		return nil
	case stepStop:
		v.m.end(v.m.refine(s.ending))
		return nil
	case stepSkip, stepReflectBP:
		r, err := v.kvm.Regs()
		if err != nil {
			return fmt.Errorf("KVM_GET_REGS: %w", err)
		}
		n := s.skip
		if s.kind == stepReflectBP {
			n = 1
		}
		r.RIP += uint64(n)
		if err := v.kvm.SetRegs(r); err != nil {
			return fmt.Errorf("KVM_SET_REGS: %w", err)
		}
		if s.kind == stepReflectBP {
			return v.kvm.InjectException(vectorBP)
		}
	}
	return nil
}

// PIO implements exitEnv.
func (v *vcpu) PIO(port uint16, data []byte, write bool) {
	var err error
	if write {
		err = v.m.pio.Write(uint64(port), data)
	} else {
		err = v.m.pio.Read(uint64(port), data)
	}
	if err != nil {
		v.m.dev.unhandled("port", err)
	}
}

// MMIO implements exitEnv.
func (v *vcpu) MMIO(addr uint64, data []byte, write bool) {
	var err error
	if write {
		err = v.m.mmio.Write(addr, data)
	} else {
		err = v.m.mmio.Read(addr, data)
	}
	if err != nil {
		v.m.dev.unhandled("mmio", err)
	}
}

// RIP implements exitEnv.
func (v *vcpu) RIP() (uint64, error) {
	r, err := v.kvm.Regs()
	if err != nil {
		return 0, err
	}
	return r.RIP, nil
}

// InsnAt implements exitEnv: it translates through the guest page tables
// and reads what lies in RAM, up to the page end.
func (v *vcpu) InsnAt(rip uint64) []byte {
	gpa, ok := v.kvm.Translate(rip)
	if !ok {
		return nil
	}
	n := uint64(15)
	if rem := 0x1000 - gpa%0x1000; rem < n {
		n = rem
	}
	b := make([]byte, n)
	if v.m.mem.ReadAt(b, gpa) != nil {
		return nil
	}
	return b
}

// Symbol implements exitEnv.
func (v *vcpu) Symbol(addr uint64) string { return v.m.cfg.Symbols.Lookup(addr) }
