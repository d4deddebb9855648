package mmio

import "fmt"

// SignalUsed sets VIRTIO_MMIO_INT_VRING and raises the interrupt line
// (spec 4.2.3.4). It is ignored unless the device is active (after a
// successful DRIVER_OK, before reset). Safe from any goroutine.
func (t *Transport) SignalUsed() {
	t.irqMu.Lock()
	defer t.irqMu.Unlock()
	if t.active {
		t.raiseLocked(VIRTIO_MMIO_INT_VRING)
	}
}

// SignalConfig reports a change of the device configuration space: it
// increments ConfigGeneration (spec 2.5.1, so a driver reading across the
// change retries) and, once DRIVER_OK is set, sets VIRTIO_MMIO_INT_CONFIG
// and raises the line (spec 4.2.3.4). Safe from any goroutine.
func (t *Transport) SignalConfig() {
	t.irqMu.Lock()
	defer t.irqMu.Unlock()
	t.generation++
	if t.driverOK {
		t.raiseLocked(VIRTIO_MMIO_INT_CONFIG)
	}
}

// SetNeedsReset is for a device that met guest input it cannot recover
// from (a malformed ring, say): it sets VIRTIO_CONFIG_S_NEEDS_RESET in
// Status and, if DRIVER_OK is set, sends a configuration interrupt (spec
// 2.1.2). Queue notifications stop being forwarded until the driver
// resets the device; the device should stop processing on its own. The
// rest of the VM is unaffected. The first call since the last reset
// reports why to the reject hook (ErrNeedsReset wrapping cause): a
// driver such as Linux's virtio-net never resets on it, so the device
// stays dead, and the VMM's log is where an operator learns why. Safe
// from any goroutine.
func (t *Transport) SetNeedsReset(cause error) {
	t.irqMu.Lock()
	first := !t.needsReset
	t.needsReset = true
	if t.driverOK {
		t.raiseLocked(VIRTIO_MMIO_INT_CONFIG)
	}
	t.irqMu.Unlock()
	if first {
		t.report(fmt.Errorf("%w: %v", ErrNeedsReset, cause))
	}
}

// ackInterrupt clears the causes written to VIRTIO_MMIO_INTERRUPT_ACK
// (spec 4.2.2) and lowers the line once none is left. Called with mu held.
func (t *Transport) ackInterrupt(v uint32) {
	t.irqMu.Lock()
	defer t.irqMu.Unlock()
	t.isr &^= v
	t.updateLineLocked()
}

// raiseLocked adds cause to InterruptStatus. Called with irqMu held.
func (t *Transport) raiseLocked(cause uint32) {
	t.isr |= cause
	t.updateLineLocked()
}

// updateLineLocked drives the line to InterruptStatus != 0, calling irq
// only on a change. Called with irqMu held.
func (t *Transport) updateLineLocked() {
	level := t.isr != 0
	if level != t.line {
		t.line = level
		t.irq(level)
	}
}

// InterruptLine reports the current level of the interrupt line.
func (t *Transport) InterruptLine() bool {
	t.irqMu.Lock()
	defer t.irqMu.Unlock()
	return t.line
}

var _ Interrupt = (*Transport)(nil)
