package vmm

import (
	"fmt"

	"github.com/tracevisor/tracevisor/virtio/mmio"
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
	}
	return nil
}
