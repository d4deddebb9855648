package vmm

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// Snapshots (issue 12): Snapshot writes a running guest to a directory in
// the snapshot package's format; New with Config.Restore builds a machine
// from one instead of booting a kernel (restore.go).
//
// A snapshot holds guest RAM and one section per piece of state:
//
//	vmm            the VMM's own bookkeeping (machineState)
//	vcpu/N         each vCPU's KVM state (kvm.VCPUState)
//	vm             the in-kernel PICs, IOAPIC, PIT and kvmclock (kvm.VMState)
//	dev/uart, dev/i8042, dev/cmos, dev/debug   the legacy devices
//	virtio/NAME    each virtio transport with its device (mmio.State)
//
// and whatever the Layer above the machine writes (the probe host:
// "probe/host"). The header names the VMM's Version, the host profile and
// the machine's configuration fingerprint (snapshotConfig); a restore
// refuses a snapshot that differs in any of them, before it touches KVM.

// Section names of the machine's own state.
const (
	sectionMachine = "vmm"
	sectionVM      = "vm"
	sectionVCPU    = "vcpu/" // + vCPU index
	sectionUART    = "dev/uart"
	sectionI8042   = "dev/i8042"
	sectionCMOS    = "dev/cmos"
	sectionDebug   = "dev/debug"
	sectionVirtio  = "virtio/" // + VirtioDevice.Name
)

// Layer is state kept above the machine that a snapshot carries along and
// a restore puts back: the probe host (armed probes, their ids, its
// counters), which lives in a package the machine does not import. Its
// sections use names of its own (not the machine's above).
type Layer interface {
	// SaveState writes the layer's sections. Snapshot calls it with the
	// guest paused, after every device's state was taken (the probe
	// device's before the probe host's).
	SaveState(w *snapshot.Writer) error
	// LoadState reads every section of the layer from s and checks it,
	// changing nothing. New calls it, on a restore, before anything is
	// restored, and refuses the snapshot on its error.
	LoadState(s *snapshot.Snapshot) error
	// RestoreState applies what LoadState read. New calls it once the
	// devices are restored, paused: no device and no vCPU runs until Run.
	RestoreState() error
}

// section is one named piece of state for the snapshot's writer.
type section struct {
	name string
	v    any
}

// machineState is the VMM's own bookkeeping worth keeping.
type machineState struct {
	// Cmdline is the kernel command line the guest booted with.
	Cmdline string `json:"cmdline"`
	// ExitStatus is what init reported through the debug device, if it
	// did (the command's status, reported just before a poweroff).
	ExitStatus *int `json:"exit_status,omitempty"`
}

// snapshotConfig is the configuration fingerprint of a snapshot: what the
// guest saw of its machine, which a restore must reproduce exactly. Left
// out, so that a clone may differ there: each NIC's MAC and backend (tap
// or switch name), disk image paths, the API socket, the events file and
// diagnostics (per-clone identity and host plumbing), and the kernel,
// initrd and command line (a restored guest runs from its memory). The
// host profile is in the header beside it.
type snapshotConfig struct {
	CPUs     int    `json:"cpus"`
	MemBytes uint64 `json:"mem_bytes"`
	// Console is the guest's console: "serial" (ttyS0) or "virtio" (hvc0).
	Console string `json:"console"`
	// Devices are the virtio devices in slot order (the order gives each
	// its MMIO window and interrupt line).
	Devices []snapshotDevice `json:"devices"`
}

// snapshotDevice is one virtio device as the guest's driver found it.
type snapshotDevice struct {
	Name string `json:"name"`
	// Type is the virtio device ID (1 net, 2 block, 3 console, ...).
	Type uint32 `json:"type"`
	// Features are the device-specific feature bits offered (a read-only
	// disk offers VIRTIO_BLK_F_RO).
	Features uint64 `json:"features"`
	// Queues are the queues' maximum sizes.
	Queues []uint16 `json:"queues"`
}

// snapshotConfig returns the machine's fingerprint. It reads cfg only (the
// virtio console already in Virtio), so it is known before any KVM call.
func (m *Machine) snapshotConfig() snapshotConfig {
	c := snapshotConfig{CPUs: m.cfg.CPUs, MemBytes: m.cfg.MemBytes, Console: "serial", Devices: []snapshotDevice{}}
	if m.cfg.VirtioConsole {
		c.Console = "virtio"
	}
	for _, vd := range m.cfg.Virtio {
		c.Devices = append(c.Devices, snapshotDevice{
			Name: vd.Name, Type: vd.Device.DeviceID(), Features: vd.Device.Features(),
			Queues: append([]uint16{}, vd.Device.QueueMaxSizes()...),
		})
	}
	return c
}

// expect is what a restore on this machine requires of a snapshot.
func (m *Machine) expect() snapshot.Expect {
	return snapshot.Expect{VMMVersion: Version(), Profile: m.cfg.Profile.String(), Config: m.snapshotConfig()}
}

// Snapshot writes the running guest to dir (created if missing; a snapshot
// already there is replaced): it pauses the guest (Pause), takes every
// vCPU's, the VM's, each device's and the Layer's state and guest RAM, and
// then lets the guest run on, unless stayPaused or the guest was paused
// before the call (it stays paused then, whatever happens; Resume ends
// that). It fails with ErrNotStarted before Run, ErrEnded after it and
// ErrFenced on a fenced machine; one snapshot is taken at a time.
func (m *Machine) Snapshot(dir string, stayPaused bool) error {
	m.ctl.Lock()
	defer m.ctl.Unlock()
	wasPaused := m.pause.on.Load()
	start := time.Now()
	if err := m.pauseLocked(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	paused := time.Now()
	if !stayPaused && !wasPaused {
		defer m.resumeLocked()
	}
	if err := m.writeSnapshot(dir); err != nil {
		return err
	}
	m.logf("snapshot %s: guest paused in %v, written in %v", dir, paused.Sub(start), time.Since(paused))
	return nil
}

// writeSnapshot takes the paused guest's state and writes it to dir. The
// order of taking: vCPUs, VM, legacy devices, transports, then (inside
// Save) the Layer. The VM's irqchip is taken before the devices that drive
// its lines, so an edge raised in between (host input reaching the UART)
// is in the device's state and raised again by its restore, not lost.
func (m *Machine) writeSnapshot(dir string) error {
	vcpus := make([]*kvm.VCPUState, len(m.vcpus))
	for i, v := range m.vcpus {
		err := m.onVCPU(v, func() error {
			st, err := v.kvm.SaveState(m.sys)
			vcpus[i] = st
			return err
		})
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	vm, err := m.vm.SaveState()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	sections := []section{
		{sectionMachine, machineState{Cmdline: m.cmdline, ExitStatus: m.events.status()}},
		{sectionVM, vm},
	}
	for i, st := range vcpus {
		sections = append(sections, section{sectionVCPU + strconv.Itoa(i), st})
	}
	d := m.dev
	sections = append(sections, []section{
		{sectionUART, d.uart.State()},
		{sectionI8042, d.kbd.State()},
		{sectionCMOS, d.cmos.State()},
		{sectionDebug, d.debug.State()},
	}...)
	for i, t := range m.transports {
		st, err := t.State()
		if err != nil {
			return fmt.Errorf("snapshot: virtio device %s: %w", m.cfg.Virtio[i].Name, err)
		}
		sections = append(sections, section{sectionVirtio + m.cfg.Virtio[i].Name, st})
	}
	var ram []snapshot.RAM
	for _, r := range m.mem.Regions() {
		ram = append(ram, snapshot.RAM{GPA: r.GPA, Data: r.Host})
	}
	e := m.expect()
	h := snapshot.Header{VMMVersion: e.VMMVersion, Profile: e.Profile, Config: e.Config}
	return snapshot.Save(dir, h, ram, func(w *snapshot.Writer) error {
		for _, s := range sections {
			if err := w.Section(s.name, s.v); err != nil {
				return err
			}
		}
		if m.cfg.Layer != nil {
			return m.cfg.Layer.SaveState(w)
		}
		return nil
	})
}
