package mmio

import "github.com/tracevisor/tracevisor/guestmem"

// QueueConfig is what the driver programmed for one virtqueue through the
// queue registers (spec 4.2.3.2). The transport checks only Size against
// the device's maximum (spec 4.2.2.2); alignment and RAM checks of the
// addresses belong to the virtqueue implementation.
type QueueConfig struct {
	// Size is the queue size written to VIRTIO_MMIO_QUEUE_NUM.
	Size uint16
	// Ready is the value of VIRTIO_MMIO_QUEUE_READY: the driver enabled
	// the queue. Queues with Ready false must be left alone.
	Ready bool
	// Desc is the guest-physical address of the descriptor area.
	Desc uint64
	// Driver is the guest-physical address of the driver area (avail ring).
	Driver uint64
	// Device is the guest-physical address of the device area (used ring).
	Device uint64
}

// Interrupt is how an activated device tells the driver about work done.
// Its methods are safe to call from any goroutine.
type Interrupt interface {
	// SignalUsed reports used buffers (VIRTIO_MMIO_INT_VRING).
	SignalUsed()
	// SignalConfig reports a configuration-space change
	// (VIRTIO_MMIO_INT_CONFIG, spec 2.5).
	SignalConfig()
}

// ActivateContext is everything a device needs to start processing its
// queues once the driver sets DRIVER_OK (spec 3.1.1 step 8).
type ActivateContext struct {
	// Features are the negotiated feature bits (driver-accepted subset of
	// the offered ones, VIRTIO_F_VERSION_1 included).
	Features uint64
	// Queues holds one QueueConfig per queue, indexed like
	// Device.QueueMaxSizes. The slice is the device's to keep.
	Queues []QueueConfig
	// Mem is the guest memory the rings and buffers live in.
	Mem *guestmem.Memory
	// Interrupt signals the driver; it is the Transport.
	Interrupt Interrupt
}

// Device is a virtio device behind a Transport. The transport serialises
// its calls to the methods below (never two at once), except that Notify
// may run alongside ReadConfig and WriteConfig; they must not call back
// into the Transport's Read, Write or Close. They may call the Interrupt
// methods and SetNeedsReset from any goroutine. A device that can be
// snapshotted also implements Restorer.
type Device interface {
	// DeviceID is the virtio device type (spec 5, e.g. 2 for block). Zero
	// is reserved and makes Linux skip the device.
	DeviceID() uint32
	// Features returns the device-specific feature bits offered. The
	// transport adds VIRTIO_F_VERSION_1 (spec 6.1). It is read once, by New.
	Features() uint64
	// QueueMaxSizes returns each queue's maximum size (QueueNumMax), one
	// entry per queue. It is read once, by New.
	QueueMaxSizes() []uint16
	// ReadConfig fills data from the device configuration space at offset
	// (relative to VIRTIO_MMIO_CONFIG). Any width; out-of-range bytes
	// should read as zero.
	ReadConfig(offset uint64, data []byte)
	// WriteConfig stores data into the configuration space at offset.
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device when the driver sets DRIVER_OK. A non-nil
	// error sets VIRTIO_CONFIG_S_NEEDS_RESET in the status, raises a
	// configuration interrupt (spec 2.1.2) and leaves the device
	// inactive until the driver resets it.
	Activate(ctx ActivateContext) error
	// Reset stops the device (its goroutines included) and forgets the
	// queues; it is called whenever the driver writes 0 to Status (spec
	// 2.1, 4.2.2.1), also on a device never activated. Once it returns
	// the device must not signal interrupts any more.
	Reset()
	// Notify reports a write of queue to VIRTIO_MMIO_QUEUE_NOTIFY while
	// the device is active. It runs without the transport's lock: on the
	// transport's worker (StartNotifyWorker), which coalesces repeated
	// notifications of a queue, or else on the goroutine that notified
	// (a vCPU thread: keep it short). Notify calls never overlap one
	// another, Activate or Reset, and a notification accepted before a
	// reset is not delivered after it; a device's own goroutines and
	// ReadConfig may still run alongside, so it locks its own state.
	Notify(queue uint32)
}
