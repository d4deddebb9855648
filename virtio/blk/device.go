package blk

import (
	"fmt"
	"sync"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// VIRTIO_ID_BLOCK is the virtio device type of a block device.
const VIRTIO_ID_BLOCK = 2

// QueueSize is the size of the request queue.
const QueueSize = 256

// Device is a virtio-blk device (one request queue) serving a Disk. Requests
// are executed synchronously in Notify, which the transport calls from its
// notification worker, not on the vCPU that notified.
type Device struct {
	disk *Disk

	mu     sync.Mutex
	q      *queue.Queue
	mem    *guestmem.Memory
	irq    mmio.Interrupt
	broken bool // bad guest input seen; wait for a reset
}

// NewDevice wraps disk as a virtio device for an mmio.Transport.
func NewDevice(disk *Disk) *Device { return &Device{disk: disk} }

// DeviceID implements mmio.Device.
func (d *Device) DeviceID() uint32 { return VIRTIO_ID_BLOCK }

// Features implements mmio.Device.
func (d *Device) Features() uint64 {
	return d.disk.Features() | 1<<queue.VIRTIO_RING_F_INDIRECT_DESC | 1<<queue.VIRTIO_RING_F_EVENT_IDX
}

// QueueMaxSizes implements mmio.Device.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig implements mmio.Device: struct virtio_blk_config.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	mmio.ReadConfigBytes(d.disk.Config(), offset, data)
}

// WriteConfig implements mmio.Device: the block config space is read-only
// without VIRTIO_BLK_F_CONFIG_WCE.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements mmio.Device.
func (d *Device) Activate(ctx mmio.ActivateContext) error {
	if len(ctx.Queues) != 1 || !ctx.Queues[0].Ready {
		return fmt.Errorf("virtio-blk: request queue not enabled")
	}
	qs, err := ctx.OpenQueues(QueueSize)
	if err != nil {
		return fmt.Errorf("virtio-blk: %w", err)
	}
	q := qs[0]
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq, d.broken = q, ctx.Mem, ctx.Interrupt, false
	return nil
}

// Reset implements mmio.Device.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq, d.broken = nil, nil, nil, false
}

// Notify implements mmio.Device: it drains the request queue.
func (d *Device) Notify(uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.q == nil || d.broken {
		return
	}
	if err := d.drain(); err != nil {
		d.broken = true
		mmio.NeedsReset(d.irq, err)
	}
}

// drain executes every available request, then re-enables notifications
// and drains again if the driver published meanwhile; it interrupts once
// if the driver wants to hear of the used buffers.
func (d *Device) drain() error {
	for {
		for {
			c, err := d.q.Pop(d.mem)
			if err != nil {
				return err
			}
			if c == nil {
				break
			}
			n, err := d.disk.Handle(d.mem, c)
			if err != nil {
				return err
			}
			if _, err := d.q.AddUsed(d.mem, c, n); err != nil {
				return err
			}
		}
		more, err := d.q.EnableNotification(d.mem)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	return mmio.SignalUsed(d.q, d.mem, d.irq)
}
