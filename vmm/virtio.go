package vmm

import (
	"fmt"
	"os"

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

// attachVirtio puts each configured device behind a transport on the MMIO
// bus, wired to its interrupt line.
func (m *Machine) attachVirtio() error {
	if len(m.cfg.Virtio) > MaxVirtioDevices {
		return fmt.Errorf("%d virtio devices: at most %d", len(m.cfg.Virtio), MaxVirtioDevices)
	}
	for i, vd := range m.cfg.Virtio {
		base, irq := virtioSlot(i)
		t := mmio.New(vd.Device, m.mem, func(level bool) {
			if err := m.vm.IRQLine(irq, level); err != nil {
				m.logf("%s: IRQ %d: %v", vd.Name, irq, err)
			}
		})
		if err := m.mmio.Register(vd.Name, base, virtioMMIOSize, t); err != nil {
			return err
		}
		m.notifyByEventfd(vd.Name, base, t)
	}
	return nil
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
