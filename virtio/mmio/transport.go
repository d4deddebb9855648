package mmio

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/guestmem"
)

// queueState is one queue's driver-programmed configuration and the
// device's maximum size.
type queueState struct {
	max uint16
	cfg QueueConfig
}

// Transport is the virtio-mmio (version 2) register window of one Device.
// It implements bus.Device; Read and Write may be called from several vCPU
// threads at once.
//
// Locking: mu guards the driver-visible register state and serialises the
// calls into the Device other than Notify; Notify runs outside mu, on the
// notifying goroutine or the transport's worker (see notifier, whose locks
// come after mu). irqMu guards the interrupt state the device's own
// goroutines touch (InterruptStatus, ConfigGeneration, NEEDS_RESET, the
// line). mu may be held when taking irqMu, never the other way round.
type Transport struct {
	dev     Device
	mem     *guestmem.Memory
	offered uint64 // Device.Features() | VIRTIO_F_VERSION_1

	mu         sync.Mutex
	status     uint32 // driver-owned status bits (all but NEEDS_RESET)
	devFeatSel uint32
	drvFeatSel uint32
	drvFeat    uint64
	queueSel   uint32
	shmSel     uint32
	queues     []queueState

	irqMu      sync.Mutex
	irq        func(level bool)
	isr        uint32 // VIRTIO_MMIO_INTERRUPT_STATUS
	line       bool   // last level passed to irq
	generation uint32 // VIRTIO_MMIO_CONFIG_GENERATION
	needsReset bool   // VIRTIO_CONFIG_S_NEEDS_RESET
	driverOK   bool   // DRIVER_OK is set: interrupts may be raised
	active     bool   // Activate succeeded (or is running) since the last reset

	paused bool // Pause: notifications held back, the device paused (mu)

	ntf notifier

	reject     atomic.Pointer[func(error)] // SetRejectHook's fn
	rejections atomic.Uint64
}

// New returns the transport for dev. mem is passed to dev.Activate. irq
// drives the device's level-triggered interrupt line: it is called with
// true when InterruptStatus becomes non-zero and with false when it
// returns to zero, only on changes, while an internal lock is held (so
// calls arrive in order); it must not call back into the Transport. A nil
// irq is allowed (no interrupt line).
func New(dev Device, mem *guestmem.Memory, irq func(level bool)) *Transport {
	if irq == nil {
		irq = func(bool) {}
	}
	t := &Transport{
		dev:     dev,
		mem:     mem,
		offered: dev.Features() | VIRTIO_F_VERSION_1,
		irq:     irq,
	}
	for _, m := range dev.QueueMaxSizes() {
		t.queues = append(t.queues, queueState{max: m})
	}
	t.ntf.pending = make([]bool, len(t.queues))
	t.resetQueues()
	return t
}

// OfferedFeatures returns the feature bits the transport offers: the
// device's plus VIRTIO_F_VERSION_1.
func (t *Transport) OfferedFeatures() uint64 { return t.offered }

// SetRejectHook installs fn to be told about every guest access the
// transport ignores (an error wrapping one of the Err* values), and about
// the device entering DEVICE_NEEDS_RESET (ErrNeedsReset, wrapping the
// device's reason). fn runs on the vCPU thread or a device's goroutine,
// possibly with the transport locked: it may log, not call back. The
// number of calls is the guest's to choose: rate-limit what fn writes.
func (t *Transport) SetRejectHook(fn func(error)) {
	t.reject.Store(&fn)
}

// report passes err to the reject hook, if one is installed.
func (t *Transport) report(err error) {
	if fn := t.reject.Load(); fn != nil && *fn != nil {
		(*fn)(err)
	}
}

// Rejections returns how many guest accesses were ignored so far.
func (t *Transport) Rejections() uint64 { return t.rejections.Load() }

// rejectf counts and reports an ignored access. Called with mu held.
func (t *Transport) rejectf(err error, format string, args ...any) {
	t.rejections.Add(1)
	t.report(fmt.Errorf("%w: "+format, append([]any{err}, args...)...))
}

// Read implements bus.Device. Registers below VIRTIO_MMIO_CONFIG must be
// read 32 bits wide and aligned (spec 4.2.2.2); other reads return zeros.
// Configuration-space reads of any width go to Device.ReadConfig.
func (t *Transport) Read(offset uint64, data []byte) {
	if offset >= VIRTIO_MMIO_CONFIG {
		t.mu.Lock()
		t.dev.ReadConfig(offset-VIRTIO_MMIO_CONFIG, data)
		t.mu.Unlock()
		return
	}
	clear(data)
	if len(data) != 4 || offset%4 != 0 {
		t.mu.Lock()
		t.rejectf(ErrAccessWidth, "%d-byte read at %#x", len(data), offset)
		t.mu.Unlock()
		return
	}
	t.mu.Lock()
	v := t.readReg(offset)
	t.mu.Unlock()
	binary.LittleEndian.PutUint32(data, v)
}

// Write implements bus.Device. Register writes must be 32 bits wide and
// aligned (spec 4.2.2.2); others are ignored. Configuration-space writes
// of any width go to Device.WriteConfig.
func (t *Transport) Write(offset uint64, data []byte) {
	t.mu.Lock()
	if offset >= VIRTIO_MMIO_CONFIG {
		t.dev.WriteConfig(offset-VIRTIO_MMIO_CONFIG, data)
		t.mu.Unlock()
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		t.rejectf(ErrAccessWidth, "%d-byte write at %#x", len(data), offset)
		t.mu.Unlock()
		return
	}
	v := binary.LittleEndian.Uint32(data)
	if offset == VIRTIO_MMIO_QUEUE_NOTIFY {
		// The device's work happens outside mu (see notifier).
		d := t.notify(v)
		t.mu.Unlock()
		t.deliver(d)
		return
	}
	t.writeReg(offset, v)
	t.mu.Unlock()
}

// readReg returns the 32-bit register at offset. Called with mu held.
func (t *Transport) readReg(offset uint64) uint32 {
	switch offset {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return MagicValue
	case VIRTIO_MMIO_VERSION:
		return Version
	case VIRTIO_MMIO_DEVICE_ID:
		return t.dev.DeviceID()
	case VIRTIO_MMIO_VENDOR_ID:
		return VendorID
	case VIRTIO_MMIO_DEVICE_FEATURES:
		// Spec 4.2.2: 32-bit window selected by DeviceFeaturesSel;
		// windows beyond the 64 bits read 0.
		switch t.devFeatSel {
		case 0:
			return uint32(t.offered)
		case 1:
			return uint32(t.offered >> 32)
		}
		return 0
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		// Spec 4.2.2: 0 means the queue is not available.
		if q := t.selectedQueue(); q != nil {
			return uint32(q.max)
		}
		return 0
	case VIRTIO_MMIO_QUEUE_READY:
		if q := t.selectedQueue(); q != nil && q.cfg.Ready {
			return 1
		}
		return 0
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		t.irqMu.Lock()
		defer t.irqMu.Unlock()
		return t.isr
	case VIRTIO_MMIO_STATUS:
		t.irqMu.Lock()
		defer t.irqMu.Unlock()
		if t.needsReset {
			return t.status | VIRTIO_CONFIG_S_NEEDS_RESET
		}
		return t.status
	case VIRTIO_MMIO_SHM_LEN_LOW, VIRTIO_MMIO_SHM_LEN_HIGH,
		VIRTIO_MMIO_SHM_BASE_LOW, VIRTIO_MMIO_SHM_BASE_HIGH:
		// Spec 4.2.2: a non-existent shared memory region reads as
		// length and base all ones. No region exists.
		return 0xffffffff
	case VIRTIO_MMIO_CONFIG_GENERATION:
		t.irqMu.Lock()
		defer t.irqMu.Unlock()
		return t.generation
	}
	// Write-only and reserved registers read 0.
	return 0
}

// writeReg stores v into the 32-bit register at offset; Write handles
// QueueNotify itself. Called with mu held.
func (t *Transport) writeReg(offset uint64, v uint32) {
	switch offset {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t.devFeatSel = v
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t.drvFeatSel = v
	case VIRTIO_MMIO_DRIVER_FEATURES:
		t.writeDriverFeatures(v)
	case VIRTIO_MMIO_QUEUE_SEL:
		// A selector only: harmless in any state, and reads of
		// QueueNumMax/QueueReady depend on it.
		t.queueSel = v
	case VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_READY,
		VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH,
		VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
		VIRTIO_MMIO_QUEUE_USED_LOW, VIRTIO_MMIO_QUEUE_USED_HIGH:
		t.writeQueue(offset, v)
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t.ackInterrupt(v)
	case VIRTIO_MMIO_STATUS:
		t.writeStatus(v)
	case VIRTIO_MMIO_SHM_SEL:
		t.shmSel = v
	default:
		t.rejectf(ErrUnknownRegister, "write %#x to %#x", v, offset)
	}
}
