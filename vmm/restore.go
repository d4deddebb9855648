package vmm

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/vmm/devices/debugport"
	"github.com/tracevisor/tracevisor/vmm/devices/i8042"
	"github.com/tracevisor/tracevisor/vmm/devices/legacy"
	"github.com/tracevisor/tracevisor/vmm/devices/uart"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// Restoring (Config.Restore) is never partial: New reads the snapshot and
// checks it whole before the first KVM call (the header's version,
// profile and configuration fingerprint, every section decoded, each
// device's state validated, the Layer's sections loaded, no section left
// over) and maps its memory; it then builds the same machine as a boot
// would, checks each transport's state against its device and the mapped
// memory, and only then restores, in the order the pieces depend on:
//
//  1. each vCPU (its LAPIC among it);
//  2. the VM: PICs, IOAPIC, PIT and kvmclock (after the vCPUs, as KVM
//     wants, and before any device drives an interrupt line);
//  3. the legacy devices (the UART raises its line again if it was up);
//  4. the virtio transports, paused (mmio.RestorePaused): their devices
//     run nothing yet;
//  5. the Layer (the probe host, after the probe device's state).
//
// Run then sets kvmclock once more to the saved value, just before the
// guest runs, so the guest does not see the time the restore took; resumes
// the transports; and starts the vCPUs without the boot set-up.

// restorePlan is a snapshot read and checked whole, nothing restored yet.
type restorePlan struct {
	machine machineState
	vm      *kvm.VMState
	vcpus   []*kvm.VCPUState
	uart    uart.State
	i8042   i8042.State
	cmos    legacy.CMOSState
	debug   debugport.State
	virtio  []mmio.State
}

// loadSnapshot reads and checks the snapshot at cfg.Restore and maps its
// memory as m.mem. It makes no KVM call.
func (m *Machine) loadSnapshot() (*restorePlan, error) {
	dir := m.cfg.Restore
	s, err := snapshot.Load(dir, m.expect())
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w", dir, err)
	}
	p := &restorePlan{
		vcpus:  make([]*kvm.VCPUState, m.cfg.CPUs),
		virtio: make([]mmio.State, len(m.cfg.Virtio)),
	}
	sections := []section{
		{sectionMachine, &p.machine},
		{sectionVM, &p.vm},
		{sectionUART, &p.uart},
		{sectionI8042, &p.i8042},
		{sectionCMOS, &p.cmos},
		{sectionDebug, &p.debug},
	}
	for i := range p.vcpus {
		sections = append(sections, section{sectionVCPU + strconv.Itoa(i), &p.vcpus[i]})
	}
	for i, vd := range m.cfg.Virtio {
		sections = append(sections, section{sectionVirtio + vd.Name, &p.virtio[i]})
	}
	for _, sec := range sections {
		if err := s.Section(sec.name, sec.v); err != nil {
			return nil, fmt.Errorf("restore from %s: %w", dir, err)
		}
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", dir, err)
	}
	if m.cfg.Layer != nil {
		if err := m.cfg.Layer.LoadState(s); err != nil {
			return nil, fmt.Errorf("restore from %s: %w", dir, err)
		}
	}
	if left := s.Unused(); len(left) > 0 {
		return nil, fmt.Errorf("restore from %s: the snapshot holds state this VMM would drop: %s (a device or layer this run does not have)",
			dir, strings.Join(left, ", "))
	}
	var total uint64
	for _, r := range s.Info.Memory {
		total += r.Size
	}
	if total != m.cfg.MemBytes {
		return nil, fmt.Errorf("restore from %s: its memory file holds %d MiB of guest RAM, the configuration %d MiB", dir, total>>20, m.cfg.MemBytes>>20)
	}
	if m.mem, err = mapSnapshotMemory(s, dir); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", dir, err)
	}
	return p, nil
}

// check validates every piece of the plan that can be checked without
// the machine: each vCPU's state present and its own, the VM's present,
// each legacy device's state one it can be in.
func (p *restorePlan) check() error {
	for i, st := range p.vcpus {
		if st == nil || st.ID != i {
			return fmt.Errorf("snapshot section %s%d is not vCPU %d's state", sectionVCPU, i, i)
		}
	}
	if p.vm == nil {
		return fmt.Errorf("snapshot section %s is empty", sectionVM)
	}
	for _, v := range []interface{ Validate() error }{p.uart, p.i8042, p.cmos, p.debug} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// mapSnapshotMemory maps the snapshot's memory file copy-on-write as guest
// RAM; closing the Memory unmaps it.
func mapSnapshotMemory(s *snapshot.Snapshot, dir string) (*guestmem.Memory, error) {
	mapping, err := s.MapMemory(dir)
	if err != nil {
		return nil, err
	}
	var regions []guestmem.Region
	for _, r := range mapping.Regions() {
		regions = append(regions, guestmem.Region{GPA: r.GPA, Host: r.Host})
	}
	mem, err := guestmem.FromMappings(regions, mapping.Close)
	if err != nil {
		mapping.Close()
		return nil, err
	}
	return mem, nil
}

// restore puts the checked plan into the built machine (see the order
// above). Every transport's state is checked against its device and the
// mapped memory first; after that a failure is the host's (an ioctl it
// refuses), and New closes the machine: no half-restored guest ever runs.
func (m *Machine) restore(p *restorePlan) error {
	for i, t := range m.transports {
		if err := t.Check(p.virtio[i]); err != nil {
			return fmt.Errorf("restore from %s: virtio device %s: %w", m.cfg.Restore, m.cfg.Virtio[i].Name, err)
		}
	}
	// One thread for the vCPU ioctls: none has run KVM_RUN yet, so none
	// is tied to a thread of its own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i, v := range m.vcpus {
		if err := v.kvm.RestoreState(p.vcpus[i]); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := m.vm.RestoreState(p.vm); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m.restoreClock = p.vm.Clock
	d := m.dev
	for _, err := range []error{d.uart.Restore(p.uart), d.kbd.Restore(p.i8042), d.cmos.Restore(p.cmos), d.debug.Restore(p.debug)} {
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if s := p.machine.ExitStatus; s != nil {
		m.events.recordStatus(*s)
	}
	for i, t := range m.transports {
		if err := t.RestorePaused(p.virtio[i]); err != nil {
			return fmt.Errorf("restore: virtio device %s: %w", m.cfg.Virtio[i].Name, err)
		}
	}
	if m.cfg.Layer != nil {
		if err := m.cfg.Layer.RestoreState(); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	m.restored = true
	return nil
}

// resumeRestored lets a restored machine's devices run, kvmclock set last
// to its saved value; Run calls it before it starts the vCPUs. It does
// nothing for a booted machine.
func (m *Machine) resumeRestored() error {
	if !m.restored {
		return nil
	}
	if c := m.restoreClock; c != nil {
		if err := m.vm.RestoreState(&kvm.VMState{Clock: c}); err != nil {
			return err
		}
	}
	for _, t := range m.transports {
		t.Resume()
	}
	return nil
}

// Restored reports whether the machine was built from a snapshot.
func (m *Machine) Restored() bool { return m.restored }

// SavedVirtioState returns the transport state, device state included,
// that the snapshot at dir holds for the virtio device name, with the
// file checked but not its fit to any machine: for a caller that must
// configure a device as the snapshot had it before New (the MAC of a NIC,
// which a restored guest keeps). ErrNoSection (snapshot) if it has none.
func SavedVirtioState(dir, name string) (mmio.State, error) {
	var st mmio.State
	f, err := os.Open(filepath.Join(dir, snapshot.StateFile))
	if err != nil {
		return st, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	s, err := snapshot.Inspect(f)
	if err != nil {
		return st, err
	}
	err = s.Section(sectionVirtio+name, &st)
	return st, err
}
