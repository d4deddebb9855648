// Package mmio implements the virtio-mmio transport, version 2 ("modern"),
// as described in VIRTIO 1.2 section 4.2.
//
// A Transport is a bus.Device that decodes the virtio-mmio register window
// for one virtio Device: it runs the device-status state machine (spec 2.1,
// 3.1), negotiates feature bits (spec 2.2), collects each virtqueue's
// configuration (spec 4.2.3.2), raises and lowers a level-triggered
// interrupt line from InterruptStatus (spec 4.2.2, 4.2.3.4), and forwards
// the device-specific configuration space at offset 0x100 (spec 2.5).
//
// The transport never touches the rings: when the driver sets DRIVER_OK it
// hands the negotiated features, the []QueueConfig and the guest memory to
// Device.Activate, and the device (with the virtqueue package) does the
// rest. Queue notifications reach Device.Notify outside the transport's
// lock, on its notification worker (StartNotifyWorker) or on the goroutine
// that notified, so a device busy with I/O never stalls the vCPUs reading
// its registers. The legacy (version 1) interface is not implemented.
//
// For a snapshot (issue 12) a transport pauses (Pause), reports every
// register the driver can observe with its device's state and queue
// positions (State), and a new transport takes them back before the guest
// runs (Restore), re-activating the device through Restorer without the
// guest's negotiation.
//
// Linux guests find a transport through the kernel command line (see
// CmdlineParam) or a device-tree node; its driver is
// drivers/virtio/virtio_mmio.c.
package mmio
