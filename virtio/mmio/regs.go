package mmio

// Register offsets of the virtio-mmio window (VIRTIO 1.2 section 4.2.2,
// table "MMIO Device Register Layout"), named as in Linux's
// include/uapi/linux/virtio_mmio.h. All registers below VIRTIO_MMIO_CONFIG
// are 32 bits wide and little-endian.
const (
	// VIRTIO_MMIO_MAGIC_VALUE reads 0x74726976 ("virt"). R.
	VIRTIO_MMIO_MAGIC_VALUE = 0x000
	// VIRTIO_MMIO_VERSION reads the interface version, 2 here. R.
	VIRTIO_MMIO_VERSION = 0x004
	// VIRTIO_MMIO_DEVICE_ID reads the virtio device type (spec 5). R.
	VIRTIO_MMIO_DEVICE_ID = 0x008
	// VIRTIO_MMIO_VENDOR_ID reads the subsystem vendor ID. R.
	VIRTIO_MMIO_VENDOR_ID = 0x00c
	// VIRTIO_MMIO_DEVICE_FEATURES reads the 32-bit window of the offered
	// features selected by VIRTIO_MMIO_DEVICE_FEATURES_SEL. R.
	VIRTIO_MMIO_DEVICE_FEATURES = 0x010
	// VIRTIO_MMIO_DEVICE_FEATURES_SEL selects the device feature window. W.
	VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014
	// VIRTIO_MMIO_DRIVER_FEATURES takes the 32-bit window of the accepted
	// features selected by VIRTIO_MMIO_DRIVER_FEATURES_SEL. W.
	VIRTIO_MMIO_DRIVER_FEATURES = 0x020
	// VIRTIO_MMIO_DRIVER_FEATURES_SEL selects the driver feature window. W.
	VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024
	// VIRTIO_MMIO_QUEUE_SEL selects the virtqueue the queue registers act
	// on. W.
	VIRTIO_MMIO_QUEUE_SEL = 0x030
	// VIRTIO_MMIO_QUEUE_NUM_MAX reads the selected queue's maximum size, 0
	// when the queue does not exist. R.
	VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034
	// VIRTIO_MMIO_QUEUE_NUM takes the selected queue's size. W.
	VIRTIO_MMIO_QUEUE_NUM = 0x038
	// VIRTIO_MMIO_QUEUE_READY enables (1) or disables (0) the selected
	// queue; reads return the last value accepted. RW.
	VIRTIO_MMIO_QUEUE_READY = 0x044
	// VIRTIO_MMIO_QUEUE_NOTIFY takes the index of a queue with new
	// buffers. W.
	VIRTIO_MMIO_QUEUE_NOTIFY = 0x050
	// VIRTIO_MMIO_INTERRUPT_STATUS reads the pending interrupt causes
	// (VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_CONFIG). R.
	VIRTIO_MMIO_INTERRUPT_STATUS = 0x060
	// VIRTIO_MMIO_INTERRUPT_ACK clears the interrupt causes written. W.
	VIRTIO_MMIO_INTERRUPT_ACK = 0x064
	// VIRTIO_MMIO_STATUS is the device status field (spec 2.1). RW.
	VIRTIO_MMIO_STATUS = 0x070
	// VIRTIO_MMIO_QUEUE_DESC_LOW is the low half of the selected queue's
	// descriptor area address (spec QueueDescLow). W.
	VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080
	// VIRTIO_MMIO_QUEUE_DESC_HIGH is the high half (spec QueueDescHigh). W.
	VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084
	// VIRTIO_MMIO_QUEUE_AVAIL_LOW is the low half of the driver area (avail
	// ring) address (spec QueueDriverLow). W.
	VIRTIO_MMIO_QUEUE_AVAIL_LOW = 0x090
	// VIRTIO_MMIO_QUEUE_AVAIL_HIGH is the high half (spec QueueDriverHigh). W.
	VIRTIO_MMIO_QUEUE_AVAIL_HIGH = 0x094
	// VIRTIO_MMIO_QUEUE_USED_LOW is the low half of the device area (used
	// ring) address (spec QueueDeviceLow). W.
	VIRTIO_MMIO_QUEUE_USED_LOW = 0x0a0
	// VIRTIO_MMIO_QUEUE_USED_HIGH is the high half (spec QueueDeviceHigh). W.
	VIRTIO_MMIO_QUEUE_USED_HIGH = 0x0a4
	// VIRTIO_MMIO_SHM_SEL selects a shared memory region (spec 2.10). W.
	VIRTIO_MMIO_SHM_SEL = 0x0ac
	// VIRTIO_MMIO_SHM_LEN_LOW reads the selected region's length, low half;
	// all ones (with the high half) means "no such region". R.
	VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0
	// VIRTIO_MMIO_SHM_LEN_HIGH reads the region length, high half. R.
	VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4
	// VIRTIO_MMIO_SHM_BASE_LOW reads the region base, low half. R.
	VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8
	// VIRTIO_MMIO_SHM_BASE_HIGH reads the region base, high half. R.
	VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc
	// VIRTIO_MMIO_QUEUE_RESET is the per-queue reset register of
	// VIRTIO_F_RING_RESET (spec 4.2.2); not offered, reads 0. RW.
	VIRTIO_MMIO_QUEUE_RESET = 0x0c0
	// VIRTIO_MMIO_CONFIG_GENERATION reads the configuration atomicity value
	// (spec 2.5.1, 4.2.2). R.
	VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc
	// VIRTIO_MMIO_CONFIG is where the device-specific configuration space
	// starts (spec 4.2.2); accesses at and above it go to the Device.
	VIRTIO_MMIO_CONFIG = 0x100
)

// Interrupt causes in VIRTIO_MMIO_INTERRUPT_STATUS (spec 4.2.2), named as in
// linux/virtio_mmio.h.
const (
	// VIRTIO_MMIO_INT_VRING: the device used a buffer in some virtqueue.
	VIRTIO_MMIO_INT_VRING = 1 << 0
	// VIRTIO_MMIO_INT_CONFIG: the device configuration (or the status's
	// NEEDS_RESET bit, spec 2.1.2) changed.
	VIRTIO_MMIO_INT_CONFIG = 1 << 1
)

// Device status bits (spec 2.1), named as in linux/virtio_config.h.
const (
	// VIRTIO_CONFIG_S_ACKNOWLEDGE: the guest noticed the device.
	VIRTIO_CONFIG_S_ACKNOWLEDGE = 1
	// VIRTIO_CONFIG_S_DRIVER: the guest has a driver for the device.
	VIRTIO_CONFIG_S_DRIVER = 2
	// VIRTIO_CONFIG_S_DRIVER_OK: the driver is set up; the device is live.
	VIRTIO_CONFIG_S_DRIVER_OK = 4
	// VIRTIO_CONFIG_S_FEATURES_OK: feature negotiation is complete.
	VIRTIO_CONFIG_S_FEATURES_OK = 8
	// VIRTIO_CONFIG_S_NEEDS_RESET: the device hit an error it cannot
	// recover from without a reset. Set by the device only.
	VIRTIO_CONFIG_S_NEEDS_RESET = 0x40
	// VIRTIO_CONFIG_S_FAILED: the driver gave up on the device.
	VIRTIO_CONFIG_S_FAILED = 0x80
)

// Reserved feature bits the transport itself cares about (spec 6).
const (
	// VIRTIO_F_VERSION_1 (bit 32) marks a VIRTIO 1.x device. The transport
	// always offers it and requires the driver to accept it (spec 6.1).
	VIRTIO_F_VERSION_1 = 1 << 32
	// VIRTIO_F_RING_PACKED (bit 34): packed virtqueues, whose size need
	// not be a power of two (spec 2.8). Offered only if the Device offers
	// it.
	VIRTIO_F_RING_PACKED = 1 << 34
)

// Fixed identification values.
const (
	// MagicValue is the little-endian "virt" every virtio-mmio device
	// reports at VIRTIO_MMIO_MAGIC_VALUE (spec 4.2.2).
	MagicValue = 0x74726976
	// Version is the virtio-mmio interface version implemented: 2, the
	// non-legacy interface (spec 4.2.2). Linux accepts 1 and 2.
	Version = 2
	// VendorID is tracevisor's subsystem vendor ID, the little-endian
	// bytes "TRCV". It identifies the VMM only; Linux drivers do not match
	// on it. (QEMU uses "QEMU", 0x554D4551.)
	VendorID = 0x56435254
)

// NotifyOffset is the offset of the queue notification register, for a VMM
// that registers an ioeventfd on it.
const NotifyOffset = VIRTIO_MMIO_QUEUE_NOTIFY
