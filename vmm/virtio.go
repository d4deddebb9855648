package vmm

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/tracevisor/tracevisor/internal/ratelog"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// The virtio-mmio window: one 4 KiB page per device after the debug page,
// each with its own ISA interrupt line (the MP table routes IRQ n to IOAPIC
// pin n). Lines 0-4 and 8 belong to the timer, keyboard, cascade, COM2,
// COM1 and RTC; 13 to the FPU.
const (
	virtioMMIOBase = 0xd000_1000
	virtioMMIOSize = 0x1000
)

var virtioIRQs = []uint32{5, 6, 7, 9, 10, 11, 12, 14, 15}

// MaxVirtioDevices is how many virtio devices a machine can have.
var MaxVirtioDevices = len(virtioIRQs)

// VirtioDevice is a device the machine offers to the guest over
// virtio-mmio.
type VirtioDevice struct {
	// Name labels the device in errors and bus listings ("disk0").
	Name string
	// Device is the virtio device behind the transport.
	Device mmio.Device
	// NotifyOnVCPU keeps the guest's queue notifications on the MMIO exit
	// path: the vCPU that notified runs the device's Notify (outside the
	// transport's lock) before it runs on, so the device has the buffers
	// before the guest can do anything else (the probe device: an event is
	// in the VMM before the guest can power off). Otherwise notifications
	// go through ioeventfd where KVM offers it, and the device's Notify
	// runs on its transport's worker goroutine, never on a vCPU.
	NotifyOnVCPU bool
}

// virtioSlot is where device i of the machine lives.
func virtioSlot(i int) (base uint64, irq uint32) {
	return virtioMMIOBase + uint64(i)*virtioMMIOSize, virtioIRQs[i]
}

// virtioCmdline announces the devices to Linux (virtio_mmio.device=).
func virtioCmdline(n int) []string {
	var params []string
	for i := 0; i < n; i++ {
		base, irq := virtioSlot(i)
		params = append(params, mmio.CmdlineParam(virtioMMIOSize, base, irq))
	}
	return params
}

// attachVirtio puts each configured device (at most MaxVirtioDevices, as
// build checked) behind a transport on the MMIO bus, wired to its
// interrupt line. Transports are closed first when the machine closes:
// their workers stop before the interrupt and notification eventfds and
// guest RAM go away.
func (m *Machine) attachVirtio() error {
	// What the guest's drivers get wrong is theirs to repeat: one bucket
	// for all the transports.
	rl := ratelog.Default(m.cfg.Log)
	for i, vd := range m.cfg.Virtio {
		base, irq := virtioSlot(i)
		t := mmio.New(vd.Device, m.mem, m.virtioInterrupt(vd.Name, irq))
		t.SetRejectHook(func(err error) { rl.Printf("vmm: %s: %v", vd.Name, err) })
		if !vd.NotifyOnVCPU {
			t.StartNotifyWorker()
		}
		m.closers = slices.Insert(m.closers, 0, io.Closer(t))
		m.transports = append(m.transports, t)
		if err := m.mmio.Register(vd.Name, base, virtioMMIOSize, t); err != nil {
			return err
		}
		if !vd.NotifyOnVCPU {
			m.notifyByEventfd(vd.Name, base, t)
		}
	}
	return nil
}

// virtioInterrupt returns the interrupt-line callback of a transport on
// ISA line irq. The MP table routes ISA lines as edge-triggered (the bus's
// conforming default), so the line's rising edge is the interrupt: where
// KVM offers irqfd, a write to it makes KVM pulse the line with no ioctl
// from the VMM; otherwise KVM_IRQ_LINE follows the level.
func (m *Machine) virtioInterrupt(name string, irq uint32) func(level bool) {
	line := func(level bool) {
		if err := m.vm.IRQLine(irq, level); err != nil {
			m.logf("%s: IRQ %d: %v", name, irq, err)
		}
	}
	if m.sys.CheckExtension(kvm.KVM_CAP_IRQFD) == 0 {
		return line
	}
	fd, err := m.vm.IRQFD(irq)
	if err != nil {
		m.logf("%s: interrupts stay on KVM_IRQ_LINE: %v", name, err)
		return line
	}
	f := os.NewFile(uintptr(fd), name+"-irqfd")
	m.closers = append(m.closers, f)
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	return func(level bool) {
		if !level {
			return // KVM lowered the line after the pulse
		}
		if _, err := f.Write(one); err != nil {
			m.logf("%s: irqfd: %v", name, err)
		}
	}
}

// notifyByEventfd lets KVM take the guest's QueueNotify writes itself: one
// ioeventfd per queue (datamatch = queue index), read by a goroutine that
// forwards to the transport, so a notification costs no exit to the VMM.
// Where KVM offers no ioeventfd, or refuses one, the write exits as MMIO
// and the transport handles it there.
func (m *Machine) notifyByEventfd(name string, base uint64, t *mmio.Transport) {
	if m.sys.CheckExtension(kvm.KVM_CAP_IOEVENTFD) == 0 {
		return
	}
	for q := 0; q < t.QueueCount(); q++ {
		fd, err := m.vm.IOEventFD(base+mmio.NotifyOffset, 4, uint64(q))
		if err != nil {
			m.logf("%s: queue %d notifications stay on the MMIO exit path: %v", name, q, err)
			continue
		}
		f := os.NewFile(uintptr(fd), fmt.Sprintf("%s-notify%d", name, q))
		m.closers = append(m.closers, f)
		go func(q uint32) {
			var buf [8]byte
			for {
				if _, err := f.Read(buf[:]); err != nil {
					return // closed with the machine
				}
				m.eventfdNotifies.Add(1)
				t.NotifyQueue(q)
			}
		}(uint32(q))
	}
}
