package mmio

import "fmt"

// driverSteps is the device-status transition table (spec 3.1.1): the
// status the driver may write next from each state, each step keeping the
// bits already set. FAILED (any time) and 0 (reset) are handled apart.
var driverSteps = map[uint32]uint32{
	0:                           VIRTIO_CONFIG_S_ACKNOWLEDGE,
	VIRTIO_CONFIG_S_ACKNOWLEDGE: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
	VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER: VIRTIO_CONFIG_S_ACKNOWLEDGE |
		VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
	VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK: VIRTIO_CONFIG_S_ACKNOWLEDGE |
		VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
}

// writeStatus applies a driver write to VIRTIO_MMIO_STATUS (spec 2.1,
// 3.1.1, 4.2.2.1):
//   - 0 resets the device;
//   - FAILED may be set at any time and is kept until reset;
//   - otherwise the value must equal the current status (a no-op) or be
//     the next step of driverSteps; anything else is ignored;
//   - NEEDS_RESET is device-owned: the driver's copy of it is ignored.
//
// Called with mu held.
func (t *Transport) writeStatus(v uint32) {
	if v == 0 {
		t.reset()
		return
	}
	want := v &^ (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)
	have := t.status &^ VIRTIO_CONFIG_S_FAILED
	if v&VIRTIO_CONFIG_S_FAILED != 0 {
		// Spec 2.1: the driver gave up. Keep the other bits as they are.
		t.status |= VIRTIO_CONFIG_S_FAILED
		if want != have {
			t.rejectf(ErrIllegalStatus, "%#x with FAILED from %#x", v, t.status)
		}
		return
	}
	if want == have && t.status&VIRTIO_CONFIG_S_FAILED == 0 {
		return
	}
	if t.status&VIRTIO_CONFIG_S_FAILED != 0 || driverSteps[have] != want || want == have {
		t.rejectf(ErrIllegalStatus, "%#x from %#x", v, t.status)
		return
	}
	switch want &^ have {
	case VIRTIO_CONFIG_S_FEATURES_OK:
		if err := t.checkFeatures(); err != nil {
			// Spec 2.2.2 / 3.1.1 step 6: FEATURES_OK is not kept; the
			// driver reads Status back and fails.
			t.rejectf(err, "driver features %#x, offered %#x", t.drvFeat, t.offered)
			return
		}
		t.status = want
	case VIRTIO_CONFIG_S_DRIVER_OK:
		t.status = want
		t.activate()
	default:
		t.status = want
	}
}

// checkFeatures validates the driver's accepted features at FEATURES_OK:
// a subset of those offered (spec 2.2.1) including VIRTIO_F_VERSION_1
// (spec 6.1; no legacy interface). Called with mu held.
func (t *Transport) checkFeatures() error {
	if extra := t.drvFeat &^ t.offered; extra != 0 {
		return fmt.Errorf("%w (%#x)", ErrFeaturesNotOffered, extra)
	}
	if t.drvFeat&VIRTIO_F_VERSION_1 == 0 {
		return ErrNoVersion1
	}
	return nil
}

// writeDriverFeatures stores a 32-bit window of the driver's accepted
// features. Spec 3.1.1 step 4-5: only after DRIVER and before FEATURES_OK.
// Windows beyond 64 bits must be written 0 and are otherwise ignored.
// Called with mu held.
func (t *Transport) writeDriverFeatures(v uint32) {
	if t.status != VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_DRIVER {
		t.rejectf(ErrFeatureState, "window %d = %#x with status %#x", t.drvFeatSel, v, t.status)
		return
	}
	switch t.drvFeatSel {
	case 0:
		t.drvFeat = setLow(t.drvFeat, v)
	case 1:
		t.drvFeat = setHigh(t.drvFeat, v)
	default:
		if v != 0 {
			t.rejectf(ErrFeaturesNotOffered, "window %d = %#x", t.drvFeatSel, v)
		}
	}
}

// activate runs when DRIVER_OK is set. If the device already asked for a
// reset it is not started; otherwise Device.Activate gets the negotiated
// state, and an error sets NEEDS_RESET. Either way, with DRIVER_OK and
// NEEDS_RESET both set the driver gets a configuration interrupt (spec
// 2.1.2). Called with mu held.
func (t *Transport) activate() {
	t.irqMu.Lock()
	t.driverOK = true
	if t.needsReset {
		t.raiseLocked(VIRTIO_MMIO_INT_CONFIG)
		t.irqMu.Unlock()
		return
	}
	// Active before Activate runs, so that interrupts the device raises
	// from goroutines it starts there are not lost.
	t.active = true
	t.irqMu.Unlock()

	err := t.dev.Activate(ActivateContext{
		Features:  t.drvFeat,
		Queues:    t.queueConfigs(),
		Mem:       t.mem,
		Interrupt: t,
	})
	if err != nil {
		t.rejectf(ErrActivate, "%v", err)
		t.irqMu.Lock()
		t.active = false
		t.needsReset = true
		t.raiseLocked(VIRTIO_MMIO_INT_CONFIG)
		t.irqMu.Unlock()
	}
}

// reset handles a write of 0 to Status (spec 2.4, 4.2.2.1): the device is
// stopped and every register returns to its initial value, except
// ConfigGeneration, which only ever grows. Called with mu held.
func (t *Transport) reset() {
	t.irqMu.Lock()
	t.active = false // drop interrupts racing with the device's Reset
	t.driverOK = false
	t.irqMu.Unlock()

	// Wait for a Notify in flight and drop notifications not delivered
	// yet: none reaches the device after its Reset.
	t.ntf.deliverMu.Lock()
	t.ntf.dropForReset()
	t.dev.Reset()
	t.ntf.deliverMu.Unlock()

	t.status = 0
	t.devFeatSel, t.drvFeatSel, t.drvFeat = 0, 0, 0
	t.queueSel, t.shmSel = 0, 0
	t.resetQueues()

	t.irqMu.Lock()
	t.needsReset = false
	t.isr = 0
	t.updateLineLocked()
	t.irqMu.Unlock()
}
