// Package vmm is tracevisor's virtual machine monitor: a KVM VM with guest
// RAM, the in-kernel irqchip and PIT, one locked OS thread per vCPU, port-I/O
// and MMIO buses with the legacy devices a Linux guest needs (COM1 UART,
// i8042 reset, CMOS clock, POST port) and tracevisor's debug device.
//
// A Machine runs one guest once: New builds it, Run starts the vCPUs and
// returns how the guest ended (Ending). Fence (fence.go) stops its vCPUs
// for good while the process, guest RAM and the control API live on;
// Pause (pause.go) stops them for a while. Snapshot (snapshot.go) writes
// the running guest to a directory, and New with Config.Restore
// (restore.go) builds a machine that resumes it there.
package vmm

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/tracevisor/tracevisor/guestmem"
	vconsole "github.com/tracevisor/tracevisor/virtio/console"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/vmm/boot"
	"github.com/tracevisor/tracevisor/vmm/bus"
	"github.com/tracevisor/tracevisor/vmm/kvm"
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
	// Cmdline is extra kernel command-line text, appended after the VMM's
	// own parameters (see KernelCmdline).
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
	// VirtioConsole makes a virtio console the guest's console (hvc0), fed
	// by ConsoleIn and writing to Console, instead of COM1.
	VirtioConsole bool
	// Virtio lists the virtio-mmio devices, in the order the guest will
	// see them (the first disk is /dev/vda).
	Virtio []VirtioDevice
	// ProfileGuest samples where the guest's vCPUs execute every
	// profilePeriod and writes the top functions to Log when the run ends.
	ProfileGuest bool

	// Restore, when set, is a snapshot directory (see Snapshot): New
	// builds the machine from it, memory mapped copy-on-write from its
	// memory file, instead of loading a kernel, and Run resumes the guest
	// where it was. Kernel, Initrd and Cmdline are not used. The rest of
	// the configuration must be the one the snapshot was taken with (its
	// fingerprint: see snapshotConfig), on a VMM of the same Version and
	// host profile; New refuses any other snapshot before it touches KVM.
	Restore string
	// Layer, when not nil, keeps the state of what runs above the machine
	// (the probe host) in its snapshots and gives it back on a restore.
	Layer Layer
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

	cmdline    string
	tap        consoleTap        // every console's output passes through it
	console    *vconsole.Device  // the virtio console, when configured
	transports []*mmio.Transport // one per cfg.Virtio entry, in order
	closers    []io.Closer       // eventfds and the like, closed with the machine

	ctl          sync.Mutex      // one Pause, Resume, Snapshot, Dump or Close at a time
	pause        pauser          // see pause.go
	restored     bool            // built from a snapshot: Run resumes, no boot set-up
	restoreClock *kvm.ClockState // kvmclock to set just before a restored guest runs

	eventfdNotifies atomic.Int64 // queue notifications that came by ioeventfd

	started    time.Time
	firstEntry atomic.Int64 // unix ns of the first KVM_RUN of any vCPU (0: none yet)
	events     eventLog
	samples    *sampler
	fence      fence // see fence.go

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
	m.tap.w = cfg.Console
	if cfg.ProfileGuest {
		m.samples = newSampler()
	}
	if err := m.build(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// openKVM opens /dev/kvm; tests replace it to prove what happens before.
var openKVM = kvm.Open

// build does New's work on a Machine that Close can always release. A
// restore reads and checks the whole snapshot and maps its memory before
// the first KVM call, and restores nothing until every section passed.
func (m *Machine) build() error {
	if m.cfg.VirtioConsole {
		m.console = vconsole.New(&m.tap)
		m.cfg.Virtio = append([]VirtioDevice{{Name: "console", Device: m.console}}, m.cfg.Virtio...)
	}
	if len(m.cfg.Virtio) > MaxVirtioDevices {
		return fmt.Errorf("%d virtio devices: at most %d", len(m.cfg.Virtio), MaxVirtioDevices)
	}
	var plan *restorePlan
	var err error
	if m.cfg.Restore != "" {
		if plan, err = m.loadSnapshot(); err != nil {
			return err
		}
	} else if m.mem, err = guestmem.New(m.cfg.MemBytes); err != nil {
		return err
	}
	if m.sys, err = openKVM(); err != nil {
		return err
	}
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return err
	}
	if err = m.setupVM(); err != nil {
		return err
	}
	cpuid, err := m.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	if plan != nil {
		m.cmdline = plan.machine.Cmdline
	} else if err := m.loadKernel(cpuid); err != nil {
		return err
	}
	if m.dev, err = m.attachDevices(); err != nil {
		return err
	}
	if err = m.attachVirtio(); err != nil {
		return err
	}
	for i := 0; i < m.cfg.CPUs; i++ {
		c, err := m.vm.CreateVCPU(i)
		if err != nil {
			return err
		}
		m.vcpus = append(m.vcpus, &vcpu{m: m, kvm: c, work: make(chan func())})
		if err := c.SetCPUID2(vcpuCPUID(cpuid, i, m.cfg.CPUs)); err != nil {
			return fmt.Errorf("KVM_SET_CPUID2 on vCPU %d: %w", i, err)
		}
	}
	if plan != nil {
		return m.restore(plan)
	}
	return nil
}

// loadKernel builds the kernel command line and loads the kernel and
// initrd into guest RAM for a boot.
func (m *Machine) loadKernel(cpuid *gokvm.CPUID) error {
	console := "ttyS0"
	if m.cfg.VirtioConsole {
		console = "hvc0"
	}
	extra := m.cfg.Cmdline
	if v := virtioCmdline(len(m.cfg.Virtio)); len(v) > 0 {
		extra = strings.Join(append(v, extra), " ")
	}
	m.cmdline = KernelCmdline(m.cfg.Profile, kvmFeatures(cpuid), console, extra)
	var err error
	if m.boot, err = boot.Load(m.mem, m.cfg.Kernel, boot.Config{
		Cmdline: m.cmdline,
		Initrd:  m.cfg.Initrd,
		CPUs:    m.cfg.CPUs,
	}); err != nil {
		return err
	}
	// The images are in guest RAM now; holding them would keep megabytes
	// of the caller's (possibly unmapped) buffers reachable for the run.
	m.cfg.Kernel, m.cfg.Initrd = nil, nil
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

// Cmdline returns the kernel command line the guest was booted with.
func (m *Machine) Cmdline() string { return m.cmdline }

// Memory returns guest RAM.
func (m *Machine) Memory() *guestmem.Memory { return m.mem }

// Run starts every vCPU on its own locked OS thread and blocks until the
// guest ends, then returns how. It may be called once.
func (m *Machine) Run() Ending {
	m.started = time.Now()
	m.runStarted()
	if err := m.resumeRestored(); err != nil {
		m.end(Ending{Kind: EndInternalError, Reason: "restore: " + err.Error()})
	}
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
	// The watch kicks vCPUs through their kvm_run pages: Run waits for it
	// too, so that Close never unmaps a page it is about to touch.
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.watch()
	}()
	<-m.done
	for _, v := range m.vcpus {
		v.kick()
	}
	wg.Wait()
	m.ending.Status = m.events.status()
	if m.samples != nil {
		m.samples.report(m.cfg.Log, 40)
	}
	if n := m.eventfdNotifies.Load(); n > 0 {
		m.logf("%d virtqueue notifications arrived by ioeventfd", n)
	}
	return m.ending
}

// Stop asks a running guest to end with EndStopped (EndFenced once the
// machine is fenced); Run then returns.
func (m *Machine) Stop(reason string) {
	m.end(Ending{Kind: EndStopped, Reason: reason})
}

// end records the first ending and releases Run. Once the machine is
// fenced only a Stop ends it, as EndFenced: what its vCPUs were doing as
// the fence came (a poweroff, a fault) is moot.
func (m *Machine) end(e Ending) {
	f := &m.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on.Load() {
		if e.Kind != EndStopped {
			return
		}
		e = Ending{Kind: EndFenced, Reason: fmt.Sprintf("fenced at %s (%s); %s",
			f.at.Format(time.RFC3339Nano), f.reason, e.Reason)}
	}
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

// profilePeriod is the kick period while the guest is being profiled.
const profilePeriod = 7 * time.Millisecond

// watch kicks the vCPUs every watchPeriod (profilePeriod when profiling)
// until the run ends.
func (m *Machine) watch() {
	period := watchPeriod
	if m.samples != nil {
		period = profilePeriod
	}
	t := time.NewTicker(period)
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

// FirstEntry returns when a vCPU first entered the guest (its first
// KVM_RUN), once one has: for a restore, the moment the guest runs again.
func (m *Machine) FirstEntry() (time.Time, bool) {
	ns := m.firstEntry.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Close releases the vCPUs, the VM and guest RAM, once a snapshot or dump
// in progress is done with them.
func (m *Machine) Close() error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	for _, c := range m.closers {
		c.Close()
	}
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
