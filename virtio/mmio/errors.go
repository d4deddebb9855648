package mmio

import "errors"

// Errors describing the guest accesses a Transport ignores. They are
// passed, wrapped with details, to the hook set by SetRejectHook and are
// counted by Rejections; the guest sees only the ignored access.
var (
	// ErrAccessWidth: a register access that is not 4 bytes wide and
	// 4-byte aligned (spec 4.2.2.2: the driver MUST use 32-bit accesses).
	ErrAccessWidth = errors.New("virtio-mmio: register access not 32-bit aligned")
	// ErrUnknownRegister: a write to a read-only or unassigned offset.
	ErrUnknownRegister = errors.New("virtio-mmio: write to read-only or unknown register")
	// ErrIllegalStatus: a Status write that is not the next step of
	// ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, a reset or FAILED
	// (spec 2.1.1, 3.1.1).
	ErrIllegalStatus = errors.New("virtio-mmio: illegal device status transition")
	// ErrFeaturesNotOffered: FEATURES_OK with driver features outside the
	// offered set (spec 2.2.1); FEATURES_OK is not kept.
	ErrFeaturesNotOffered = errors.New("virtio-mmio: driver accepted features not offered")
	// ErrNoVersion1: FEATURES_OK without VIRTIO_F_VERSION_1; the legacy
	// interface is not implemented (spec 6.1); FEATURES_OK is not kept.
	ErrNoVersion1 = errors.New("virtio-mmio: driver did not accept VIRTIO_F_VERSION_1")
	// ErrFeatureState: a DriverFeatures write outside the DRIVER state,
	// i.e. before DRIVER or after FEATURES_OK (spec 3.1.1 step 5).
	ErrFeatureState = errors.New("virtio-mmio: driver features written outside negotiation")
	// ErrQueueState: a queue register write before FEATURES_OK or after
	// DRIVER_OK (spec 4.2.3.2), or to a queue that is ready.
	ErrQueueState = errors.New("virtio-mmio: queue register written in wrong state")
	// ErrNoQueue: a queue register write or notify for a queue index the
	// device does not have.
	ErrNoQueue = errors.New("virtio-mmio: no such queue")
	// ErrQueueSize: QueueReady set with a QueueNum that is zero, above
	// QueueNumMax, or (split rings) not a power of two (spec 2.7, 4.2.2.2).
	ErrQueueSize = errors.New("virtio-mmio: invalid queue size")
	// ErrNotActive: a queue notify while the device is not active.
	ErrNotActive = errors.New("virtio-mmio: notify while device not active")
	// ErrActivate wraps an error returned by Device.Activate.
	ErrActivate = errors.New("virtio-mmio: device activation failed")
	// ErrNeedsReset: the device met guest input it cannot go on from and
	// stopped until the driver resets it (SetNeedsReset); it wraps the
	// device's reason. Reported to the hook, not counted by Rejections.
	ErrNeedsReset = errors.New("virtio-mmio: device needs reset")
)
