package mmio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestLinuxProbe replays drivers/virtio/virtio_mmio.c vm_probe and
// virtio.c virtio_dev_probe / vm_find_vqs / virtio_device_ready.
func TestLinuxProbe(t *testing.T) {
	h := newHarness(t)
	if got := h.r(VIRTIO_MMIO_MAGIC_VALUE); got != 0x74726976 {
		t.Fatalf("magic = %#x", got)
	}
	if got := h.r(VIRTIO_MMIO_VERSION); got != 2 {
		t.Fatalf("version = %d", got)
	}
	if got := h.r(VIRTIO_MMIO_DEVICE_ID); got != 2 {
		t.Fatalf("device id = %d", got)
	}
	if got := h.r(VIRTIO_MMIO_VENDOR_ID); got != VendorID {
		t.Fatalf("vendor id = %#x", got)
	}
	h.w(VIRTIO_MMIO_STATUS, 0)
	if h.status() != 0 {
		t.Fatalf("status after reset = %#x", h.status())
	}
	h.addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER)
	if h.status() != VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_DRIVER {
		t.Fatalf("status = %#x", h.status())
	}
	// vm_get_features: high window first, then low.
	h.w(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1)
	hi := h.r(VIRTIO_MMIO_DEVICE_FEATURES)
	h.w(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0)
	lo := h.r(VIRTIO_MMIO_DEVICE_FEATURES)
	offered := uint64(hi)<<32 | uint64(lo)
	if want := uint64(blkFeatures | 1<<28 | VIRTIO_F_VERSION_1); offered != want {
		t.Fatalf("offered %#x, want %#x", offered, want)
	}
	h.w(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2)
	if got := h.r(VIRTIO_MMIO_DEVICE_FEATURES); got != 0 {
		t.Fatalf("feature window 2 = %#x", got)
	}
	// The driver drops INDIRECT_DESC.
	accepted := uint64(VIRTIO_F_VERSION_1 | 1<<9)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, uint32(accepted>>32))
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, uint32(accepted))
	h.addStatus(VIRTIO_CONFIG_S_FEATURES_OK)
	if h.status()&VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		t.Fatalf("FEATURES_OK not kept: %#x", h.status())
	}
	// vm_setup_vq for queues 0 and 1, then probe a missing queue 2.
	want := []QueueConfig{
		{Size: 256, Ready: true, Desc: 0x1_0000_1000, Driver: 0x2000, Device: 0x3000},
		{Size: 32, Ready: true, Desc: 0x4000, Driver: 0x5000, Device: 0x2_0000_6000},
	}
	for i, q := range want {
		h.w(VIRTIO_MMIO_QUEUE_SEL, uint32(i))
		if h.r(VIRTIO_MMIO_QUEUE_READY) != 0 {
			t.Fatalf("queue %d ready before setup", i)
		}
		if got, max := h.r(VIRTIO_MMIO_QUEUE_NUM_MAX), h.dev.maxSizes[i]; got != uint32(max) {
			t.Fatalf("queue %d num max = %d, want %d", i, got, max)
		}
		h.setupQueue(uint32(i), uint32(q.Size), q.Desc, q.Driver, q.Device)
		if h.r(VIRTIO_MMIO_QUEUE_READY) != 1 {
			t.Fatalf("queue %d not ready", i)
		}
	}
	h.w(VIRTIO_MMIO_QUEUE_SEL, 2)
	if h.r(VIRTIO_MMIO_QUEUE_NUM_MAX) != 0 || h.r(VIRTIO_MMIO_QUEUE_READY) != 0 {
		t.Fatal("missing queue 2 looks present")
	}
	if len(h.dev.activations) != 0 {
		t.Fatal("activated before DRIVER_OK")
	}
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if got := h.status(); got != 0xf {
		t.Fatalf("status = %#x, want 0xf", got)
	}
	if len(h.dev.activations) != 1 {
		t.Fatalf("Activate called %d times", len(h.dev.activations))
	}
	ctx := h.dev.activations[0]
	if ctx.Features != accepted {
		t.Errorf("activated with features %#x, want %#x", ctx.Features, accepted)
	}
	if !reflect.DeepEqual(ctx.Queues, want) {
		t.Errorf("queues = %+v, want %+v", ctx.Queues, want)
	}
	if ctx.Mem != h.mem || ctx.Interrupt != Interrupt(h.tr) {
		t.Error("Activate got the wrong memory or interrupt handle")
	}
	if h.tr.Rejections() != 0 {
		t.Errorf("Linux sequence had %d rejected accesses: %v", h.tr.Rejections(), h.errs)
	}
	// Kick, then the device completes work.
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 1)
	if !reflect.DeepEqual(h.dev.notifies, []uint32{1}) {
		t.Errorf("notifies = %v", h.dev.notifies)
	}
}

func TestFeaturesNotOfferedRefused(t *testing.T) {
	h := newHarness(t)
	st := h.negotiate(VIRTIO_F_VERSION_1 | blkFeatures | 1<<0) // bit 0 not offered
	if st != VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_DRIVER {
		t.Fatalf("status = %#x, want FEATURES_OK dropped", st)
	}
	if !h.rejected(ErrFeaturesNotOffered) {
		t.Error("no ErrFeaturesNotOffered reported")
	}
	// The driver may not then go on to DRIVER_OK.
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if h.status()&VIRTIO_CONFIG_S_DRIVER_OK != 0 || len(h.dev.activations) != 0 {
		t.Fatal("DRIVER_OK accepted without FEATURES_OK")
	}
}

func TestMissingVersion1Refused(t *testing.T) {
	h := newHarness(t)
	if st := h.negotiate(blkFeatures); st&VIRTIO_CONFIG_S_FEATURES_OK != 0 {
		t.Fatalf("status = %#x, FEATURES_OK kept without VERSION_1", st)
	}
	if !h.rejected(ErrNoVersion1) {
		t.Error("no ErrNoVersion1 reported")
	}
	// Retrying with VERSION_1 in the same DRIVER state works.
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, 1)
	h.addStatus(VIRTIO_CONFIG_S_FEATURES_OK)
	if h.status()&VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		t.Fatal("FEATURES_OK refused with VERSION_1")
	}
}

func TestDriverFeaturesOnlyInDriverState(t *testing.T) {
	h := newHarness(t)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, 1) // status 0: ignored
	if !h.rejected(ErrFeatureState) {
		t.Fatal("feature write at status 0 not rejected")
	}
	h.negotiate(VIRTIO_F_VERSION_1)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, 1<<9) // after FEATURES_OK: ignored
	if !h.rejected(ErrFeatureState) {
		t.Fatal("feature write after FEATURES_OK not rejected")
	}
	h.setupQueue(0, 8, 0, 0, 0)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if got := h.dev.activations[0].Features; got != VIRTIO_F_VERSION_1 {
		t.Fatalf("features = %#x, late write leaked in", got)
	}
}

func TestIllegalStatusTransitions(t *testing.T) {
	cases := []struct {
		name string
		from []uint32 // written in order from reset
		to   uint32
	}{
		{"skip ACKNOWLEDGE", nil, VIRTIO_CONFIG_S_DRIVER},
		{"ACK+DRIVER at once", nil, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER},
		{"DRIVER_OK from 0", nil, VIRTIO_CONFIG_S_DRIVER_OK},
		{"drop ACKNOWLEDGE", []uint32{1, 3}, VIRTIO_CONFIG_S_DRIVER},
		{"skip FEATURES_OK", []uint32{1, 3}, 3 | VIRTIO_CONFIG_S_DRIVER_OK},
		{"FEATURES_OK before DRIVER", []uint32{1}, 1 | VIRTIO_CONFIG_S_FEATURES_OK},
		{"go back from DRIVER", []uint32{1, 3}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1) // so FEATURES_OK would pass
			for _, s := range c.from {
				h.w(VIRTIO_MMIO_STATUS, s)
				if s == 3 {
					h.w(VIRTIO_MMIO_DRIVER_FEATURES, 1)
				}
			}
			before := h.status()
			h.errs = nil
			h.w(VIRTIO_MMIO_STATUS, c.to)
			if got := h.status(); got != before {
				t.Errorf("status %#x -> %#x after writing %#x", before, got, c.to)
			}
			if !h.rejected(ErrIllegalStatus) {
				t.Error("no ErrIllegalStatus reported")
			}
			if len(h.dev.activations) != 0 {
				t.Error("device activated")
			}
		})
	}
}

func TestFailedAnyTime(t *testing.T) {
	h := newHarness(t)
	h.addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE)
	h.addStatus(VIRTIO_CONFIG_S_FAILED)
	if got := h.status(); got != VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_FAILED {
		t.Fatalf("status = %#x", got)
	}
	// FAILED sticks; no progress until reset.
	h.w(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_DRIVER)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER)
	if got := h.status(); got != VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_FAILED {
		t.Fatalf("status = %#x after writes past FAILED", got)
	}
	h.w(VIRTIO_MMIO_STATUS, 0)
	if h.status() != 0 {
		t.Fatal("reset did not clear FAILED")
	}
	// FAILED alone from 0 is fine, too.
	h.w(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_FAILED)
	if h.status() != VIRTIO_CONFIG_S_FAILED {
		t.Fatalf("status = %#x", h.status())
	}
}

func TestQueueWritesOutsideWindowIgnored(t *testing.T) {
	h := newHarness(t)
	// Before FEATURES_OK (status DRIVER).
	h.addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER)
	h.setupQueue(0, 16, 0x1000, 0x2000, 0x3000)
	if !h.rejected(ErrQueueState) {
		t.Fatal("queue writes before FEATURES_OK not rejected")
	}
	h.w(VIRTIO_MMIO_QUEUE_SEL, 0)
	if h.r(VIRTIO_MMIO_QUEUE_READY) != 0 {
		t.Fatal("queue made ready before FEATURES_OK")
	}
	h.activate()
	// After DRIVER_OK: writes to queue 1 are ignored.
	h.setupQueue(1, 8, 0x7000, 0x8000, 0x9000)
	h.w(VIRTIO_MMIO_QUEUE_READY, 0)
	if !h.rejected(ErrQueueState) {
		t.Fatal("queue writes after DRIVER_OK not rejected")
	}
	if h.r(VIRTIO_MMIO_QUEUE_READY) != 1 {
		t.Fatal("queue disabled after DRIVER_OK")
	}
	// Re-activating after a reset must see the original programming gone.
	h.w(VIRTIO_MMIO_STATUS, 0)
	h.negotiate(VIRTIO_F_VERSION_1)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	got := h.dev.activations[1].Queues
	want := []QueueConfig{{Size: 256}, {Size: 128}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("queues after reset = %+v, want %+v", got, want)
	}
}

func TestQueueNumValidation(t *testing.T) {
	h := newHarness(t)
	h.negotiate(VIRTIO_F_VERSION_1)
	for _, num := range []uint32{0, 3, 100, 512, 0x10000 + 16} {
		h.w(VIRTIO_MMIO_QUEUE_SEL, 0)
		h.w(VIRTIO_MMIO_QUEUE_NUM, num)
		h.w(VIRTIO_MMIO_QUEUE_READY, 1)
		if h.r(VIRTIO_MMIO_QUEUE_READY) != 0 {
			t.Errorf("queue ready with QueueNum %d", num)
		}
		if !h.rejected(ErrQueueSize) {
			t.Errorf("QueueNum %d not reported", num)
		}
	}
	h.w(VIRTIO_MMIO_QUEUE_NUM, 1)
	h.w(VIRTIO_MMIO_QUEUE_READY, 1)
	if h.r(VIRTIO_MMIO_QUEUE_READY) != 1 {
		t.Fatal("size 1 refused")
	}
	// While ready, the queue's registers are frozen.
	h.w(VIRTIO_MMIO_QUEUE_NUM, 4)
	if !h.rejected(ErrQueueState) {
		t.Fatal("QueueNum write to a ready queue not rejected")
	}
	// Missing queue.
	h.w(VIRTIO_MMIO_QUEUE_SEL, 5)
	h.w(VIRTIO_MMIO_QUEUE_NUM, 4)
	if !h.rejected(ErrNoQueue) {
		t.Fatal("write to missing queue not rejected")
	}
}

func TestPackedRingAllowsOddSize(t *testing.T) {
	h := newHarness(t)
	h.dev.features |= VIRTIO_F_RING_PACKED
	h.tr = New(h.dev, h.mem, nil)
	h.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_PACKED)
	h.w(VIRTIO_MMIO_QUEUE_NUM, 100)
	h.w(VIRTIO_MMIO_QUEUE_READY, 1)
	if h.r(VIRTIO_MMIO_QUEUE_READY) != 1 {
		t.Fatal("packed queue of size 100 refused")
	}
}

func TestResetClearsEverything(t *testing.T) {
	h := newHarness(t)
	h.activate()
	h.tr.SignalUsed()
	h.tr.SetNeedsReset(errors.New("bad ring"))
	h.w(VIRTIO_MMIO_QUEUE_SEL, 1)
	h.w(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1)
	resets := h.dev.resets
	h.w(VIRTIO_MMIO_STATUS, 0)
	if h.dev.resets != resets+1 {
		t.Fatal("Device.Reset not called")
	}
	if h.status() != 0 || h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 || h.tr.InterruptLine() {
		t.Fatalf("after reset: status %#x isr %#x line %v",
			h.status(), h.r(VIRTIO_MMIO_INTERRUPT_STATUS), h.tr.InterruptLine())
	}
	if h.levels[len(h.levels)-1] != false {
		t.Fatal("line not lowered by reset")
	}
	// Selectors are back to 0 (queue 0, low feature window).
	if h.r(VIRTIO_MMIO_QUEUE_NUM_MAX) != 256 || h.r(VIRTIO_MMIO_QUEUE_READY) != 0 {
		t.Fatal("queue state survived reset")
	}
	if h.r(VIRTIO_MMIO_DEVICE_FEATURES) != uint32(h.tr.OfferedFeatures()) {
		t.Fatal("feature selector survived reset")
	}
	// Interrupts from a device goroutine after reset are dropped, and
	// notifies are no longer forwarded.
	h.tr.SignalUsed()
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 0)
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 || len(h.dev.notifies) != 0 {
		t.Fatal("device still live after reset")
	}
	if !h.rejected(ErrNotActive) {
		t.Fatal("notify after reset not reported")
	}
}

func TestInterruptStatusAckAndLine(t *testing.T) {
	h := newHarness(t)
	h.tr.SignalUsed() // not active yet: dropped
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 || len(h.levels) != 0 {
		t.Fatal("interrupt raised before DRIVER_OK")
	}
	h.activate()
	h.tr.SignalUsed()
	h.tr.SignalUsed() // no second edge
	if got := h.r(VIRTIO_MMIO_INTERRUPT_STATUS); got != VIRTIO_MMIO_INT_VRING {
		t.Fatalf("isr = %#x", got)
	}
	h.tr.SignalConfig()
	if got := h.r(VIRTIO_MMIO_INTERRUPT_STATUS); got != VIRTIO_MMIO_INT_VRING|VIRTIO_MMIO_INT_CONFIG {
		t.Fatalf("isr = %#x", got)
	}
	if !reflect.DeepEqual(h.levels, []bool{true}) {
		t.Fatalf("levels = %v, want one rising edge", h.levels)
	}
	h.w(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING)
	if got := h.r(VIRTIO_MMIO_INTERRUPT_STATUS); got != VIRTIO_MMIO_INT_CONFIG || !h.tr.InterruptLine() {
		t.Fatalf("isr = %#x line %v after partial ack", got, h.tr.InterruptLine())
	}
	h.w(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG)
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 || h.tr.InterruptLine() {
		t.Fatal("line still high after full ack")
	}
	h.tr.SignalUsed()
	if !reflect.DeepEqual(h.levels, []bool{true, false, true}) {
		t.Fatalf("levels = %v", h.levels)
	}
}

func TestConfigGeneration(t *testing.T) {
	h := newHarness(t)
	g0 := h.r(VIRTIO_MMIO_CONFIG_GENERATION)
	h.tr.SignalConfig() // before DRIVER_OK: generation only, no interrupt
	if h.r(VIRTIO_MMIO_CONFIG_GENERATION) != g0+1 || h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 {
		t.Fatal("config change before DRIVER_OK mishandled")
	}
	h.activate()
	h.tr.SignalConfig()
	if h.r(VIRTIO_MMIO_CONFIG_GENERATION) != g0+2 {
		t.Fatal("generation not incremented")
	}
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != VIRTIO_MMIO_INT_CONFIG || !h.tr.InterruptLine() {
		t.Fatal("config interrupt not raised")
	}
}

func TestConfigSpaceForwarding(t *testing.T) {
	h := newHarness(t)
	for i := range h.dev.config {
		h.dev.config[i] = byte(0x10 + i)
	}
	for _, c := range []struct {
		off  uint64
		want []byte
	}{
		{0x100, []byte{0x10}},
		{0x103, []byte{0x13, 0x14}},
		{0x104, []byte{0x14, 0x15, 0x16, 0x17}},
		{0x108, []byte{0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}},
		{0x10f, []byte{0x1f, 0}},
	} {
		got := make([]byte, len(c.want))
		h.tr.Read(c.off, got)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("read %d at %#x = %x, want %x", len(got), c.off, got, c.want)
		}
	}
	h.tr.Write(0x102, []byte{0xaa, 0xbb})
	if h.dev.config[2] != 0xaa || h.dev.config[3] != 0xbb || h.dev.config[1] != 0x11 {
		t.Fatalf("config write landed wrong: %x", h.dev.config)
	}
}

func TestRegisterWidths(t *testing.T) {
	h := newHarness(t)
	for _, n := range []int{1, 2, 8} {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		h.tr.Read(VIRTIO_MMIO_MAGIC_VALUE, b)
		for _, x := range b {
			if x != 0 {
				t.Fatalf("%d-byte magic read = %x, want zeros", n, b)
			}
		}
		h.tr.Write(VIRTIO_MMIO_STATUS, append(make([]byte, n-1), 0)[:n])
		h.tr.Write(VIRTIO_MMIO_STATUS, []byte{1, 0, 0, 0, 0, 0, 0, 0}[:n])
	}
	if h.status() != 0 {
		t.Fatalf("narrow/wide status write took effect: %#x", h.status())
	}
	var b [4]byte
	h.tr.Read(VIRTIO_MMIO_MAGIC_VALUE+2, b[:]) // misaligned
	if b != [4]byte{} {
		t.Fatalf("misaligned read = %x", b)
	}
	if !h.rejected(ErrAccessWidth) {
		t.Fatal("bad widths not reported")
	}
	// Unknown and read-only registers.
	h.w(VIRTIO_MMIO_MAGIC_VALUE, 0)
	if !h.rejected(ErrUnknownRegister) || h.r(VIRTIO_MMIO_MAGIC_VALUE) != MagicValue {
		t.Fatal("write to MagicValue not ignored")
	}
	if h.r(0x0f0) != 0 || h.r(VIRTIO_MMIO_QUEUE_NUM) != 0 {
		t.Fatal("reserved / write-only register reads non-zero")
	}
	// No shared memory regions: length reads all ones.
	if h.r(VIRTIO_MMIO_SHM_LEN_LOW) != 0xffffffff || h.r(VIRTIO_MMIO_SHM_LEN_HIGH) != 0xffffffff {
		t.Fatal("shared memory region reported")
	}
}

func TestSetNeedsReset(t *testing.T) {
	h := newHarness(t)
	h.activate()
	cause := errors.New("descriptor 7 out of range")
	h.tr.SetNeedsReset(cause)
	h.tr.SetNeedsReset(errors.New("a second reason"))
	if got := h.status(); got != 0xf|VIRTIO_CONFIG_S_NEEDS_RESET {
		t.Fatalf("status = %#x", got)
	}
	// The hook hears why, once: the VMM's log is where an operator learns
	// that a device died.
	var told []error
	for _, err := range h.errs {
		if errors.Is(err, ErrNeedsReset) {
			told = append(told, err)
		}
	}
	if len(told) != 1 || !strings.Contains(told[0].Error(), cause.Error()) {
		t.Fatalf("reject hook told %v, want one ErrNeedsReset with %q", told, cause)
	}
	if h.tr.Rejections() != 0 {
		t.Errorf("Rejections = %d: NEEDS_RESET is not an ignored access", h.tr.Rejections())
	}
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS)&VIRTIO_MMIO_INT_CONFIG == 0 || !h.tr.InterruptLine() {
		t.Fatal("no config interrupt for NEEDS_RESET")
	}
	// Linux-style read-modify-write keeps NEEDS_RESET device-owned.
	h.addStatus(VIRTIO_CONFIG_S_FAILED)
	if got := h.status(); got != 0xf|VIRTIO_CONFIG_S_NEEDS_RESET|VIRTIO_CONFIG_S_FAILED {
		t.Fatalf("status = %#x", got)
	}
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 0)
	if len(h.dev.notifies) != 0 || !h.rejected(ErrNotActive) {
		t.Fatal("notify forwarded to a device needing reset")
	}
	h.w(VIRTIO_MMIO_STATUS, 0)
	if h.status() != 0 {
		t.Fatal("NEEDS_RESET survived reset")
	}
	// The driver cannot set NEEDS_RESET itself.
	h.w(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_NEEDS_RESET)
	if h.status() != VIRTIO_CONFIG_S_ACKNOWLEDGE {
		t.Fatalf("status = %#x", h.status())
	}
}

func TestNeedsResetBeforeDriverOK(t *testing.T) {
	h := newHarness(t)
	h.negotiate(VIRTIO_F_VERSION_1)
	h.tr.SetNeedsReset(errors.New("bad ring"))
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != 0 {
		t.Fatal("config interrupt before DRIVER_OK")
	}
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if len(h.dev.activations) != 0 {
		t.Fatal("device needing reset was activated")
	}
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != VIRTIO_MMIO_INT_CONFIG {
		t.Fatal("no config interrupt at DRIVER_OK with NEEDS_RESET (spec 2.1.2)")
	}
}

func TestActivateErrorNeedsReset(t *testing.T) {
	h := newHarness(t)
	h.dev.activateErr = errors.New("bad ring address")
	h.negotiate(VIRTIO_F_VERSION_1)
	h.setupQueue(0, 8, 0x1000, 0x2000, 0x3000)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if got := h.status(); got != 0xf|VIRTIO_CONFIG_S_NEEDS_RESET {
		t.Fatalf("status = %#x", got)
	}
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS) != VIRTIO_MMIO_INT_CONFIG || !h.tr.InterruptLine() {
		t.Fatal("no config interrupt after failed activation")
	}
	if !h.rejected(ErrActivate) {
		t.Fatal("activation error not reported")
	}
	h.tr.SignalUsed()
	if h.r(VIRTIO_MMIO_INTERRUPT_STATUS)&VIRTIO_MMIO_INT_VRING != 0 {
		t.Fatal("inactive device raised a used-buffer interrupt")
	}
	// Reset and retry succeeds.
	h.dev.activateErr = nil
	h.activateAgain(t)
}

func (h *harness) activateAgain(t *testing.T) {
	h.w(VIRTIO_MMIO_STATUS, 0)
	h.negotiate(VIRTIO_F_VERSION_1)
	h.setupQueue(0, 8, 0x1000, 0x2000, 0x3000)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if h.status() != 0xf {
		t.Fatalf("status after retry = %#x", h.status())
	}
}

func TestNotifyMissingQueue(t *testing.T) {
	h := newHarness(t)
	h.activate()
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 7)
	if len(h.dev.notifies) != 0 || !h.rejected(ErrNoQueue) {
		t.Fatal("notify for missing queue forwarded")
	}
}

func TestCmdlineParam(t *testing.T) {
	for _, c := range []struct {
		size, base uint64
		irq        uint32
		want       string
	}{
		{0x1000, 0xd0001000, 5, "virtio_mmio.device=4K@0xd0001000:5"},
		{0x200, 0xd0000000, 12, "virtio_mmio.device=512@0xd0000000:12"},
		{2 << 20, 0x1_0000_0000, 40, "virtio_mmio.device=2M@0x100000000:40"},
		{1 << 30, 0xc0000000, 1, "virtio_mmio.device=1G@0xc0000000:1"},
	} {
		if got := CmdlineParam(c.size, c.base, c.irq); got != c.want {
			t.Errorf("CmdlineParam(%#x, %#x, %d) = %q, want %q", c.size, c.base, c.irq, got, c.want)
		}
	}
}
