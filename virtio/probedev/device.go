// Package probedev is the transport half of tracevisor's probe channel: the
// virtio probe device (guest-kernel/probe/tracevisor_probe.h defines it).
// It moves whole messages and knows nothing of their contents: commands
// the host sends go into the buffers the guest's driver posts on the loader
// queue; messages the driver adds to the listener queue are handed to a
// Receiver, stamped with the host time the VMM took them.
//
// A guest's notification of the listener queue is the MMIO exit the VMM
// handles on the vCPU that notified (vmm.VirtioDevice.NotifyOnVCPU): a
// probe hit reaches the VMM with no daemon, socket or second process in
// between. The probe package (the action
// layer) speaks the message formats over this device, or over any other
// transport with the same two operations.
package probedev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
	"github.com/tracevisor/tracevisor/wire"
)

// QueueSize is the size of both queues: the guest driver's event pool is
// bounded by the listener's size.
const QueueSize = 256

// MaxPending bounds the commands held while the guest has posted no loader
// buffer (before its driver starts, or while it is busy).
const MaxPending = 1024

// Receiver takes each message the guest sends (at most wire.BufSize bytes,
// its own to keep), with the host wall-clock time (Unix nanoseconds) at
// which the VMM took it off the listener queue. It runs on the thread that
// handled the guest's notification, with the device locked so messages
// arrive in queue order: it must return quickly and must not call back
// into the Device.
type Receiver func(msg []byte, receivedNS int64)

// ErrTooLong is returned for a command longer than a loader buffer.
var ErrTooLong = fmt.Errorf("probedev: command longer than %d bytes", wire.BufSize)

// ErrMessageTooLong is the fault of a listener chain longer than
// wire.BufSize: the device needs a reset.
var ErrMessageTooLong = errors.New("probedev: guest message too long")

// ErrBacklog is returned when MaxPending commands already wait for the guest.
var ErrBacklog = errors.New("probedev: too many commands waiting for the guest driver")

// Device is the virtio probe device.
type Device struct {
	recv Receiver
	now  func() int64

	mu        sync.Mutex
	q         [2]*queue.Queue
	mem       *guestmem.Memory
	irq       mmio.Interrupt
	broken    bool
	paused    bool     // Pause: commands wait, no queue is touched
	pending   [][]byte // commands not yet in a loader buffer
	delivered uint64   // commands put into loader buffers, ever
	received  uint64   // messages taken off the listener queue, ever
}

// New returns a probe device that hands guest messages to recv.
func New(recv Receiver) *Device {
	return &Device{recv: recv, now: func() int64 { return time.Now().UnixNano() }}
}

// DeviceID implements mmio.Device.
func (d *Device) DeviceID() uint32 { return wire.DeviceID }

// Features implements mmio.Device: none beyond VERSION_1.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes implements mmio.Device.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ReadConfig implements mmio.Device: struct tvp_config, whose boot_cmds is
// the number of commands waiting now (the driver reads it while probing,
// before DRIVER_OK, and handles that many before it lets boot go on).
func (d *Device) ReadConfig(offset uint64, data []byte) {
	d.mu.Lock()
	var cfg [8]byte
	binary.LittleEndian.PutUint32(cfg[0:], wire.Version)
	binary.LittleEndian.PutUint32(cfg[4:], uint32(len(d.pending)))
	d.mu.Unlock()
	mmio.ReadConfigBytes(cfg[:], offset, data)
}

// WriteConfig implements mmio.Device: the config space is read-only.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements mmio.Device.
func (d *Device) Activate(ctx mmio.ActivateContext) error {
	opened, err := ctx.OpenQueues(QueueSize)
	if err != nil {
		return fmt.Errorf("probe device: %w", err)
	}
	var qs [2]*queue.Queue
	copy(qs[:], opened)
	d.mu.Lock()
	d.q, d.mem, d.irq, d.broken = qs, ctx.Mem, ctx.Interrupt, false
	d.fail(d.deliver())
	d.collect()
	d.mu.Unlock()
	return nil
}

// Reset implements mmio.Device. Commands not yet delivered stay pending for
// the next driver.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq, d.broken = [2]*queue.Queue{}, nil, nil, false
}

// Notify implements mmio.Device.
func (d *Device) Notify(q uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return
	}
	switch q {
	case wire.QueueListener:
		d.collect()
	case wire.QueueLoader:
		d.fail(d.deliver())
	}
}

// Send queues one command for the guest's driver; it is delivered as soon
// as the driver has a loader buffer posted.
func (d *Device) Send(cmd []byte) error {
	if len(cmd) > wire.BufSize {
		return ErrTooLong
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) >= MaxPending {
		return ErrBacklog
	}
	d.pending = append(d.pending, append([]byte(nil), cmd...))
	if !d.broken {
		d.fail(d.deliver())
	}
	return nil
}

// Counts reports how many commands went into loader buffers, how many wait,
// and how many guest messages were received.
func (d *Device) Counts() (delivered, pending, received uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delivered, uint64(len(d.pending)), d.received
}

// deliver moves pending commands into posted loader buffers, one each.
func (d *Device) deliver() error {
	q := d.q[wire.QueueLoader]
	if q == nil || d.paused || len(d.pending) == 0 {
		return nil
	}
	moved := false
	for len(d.pending) > 0 {
		c, err := q.Pop(d.mem)
		if err != nil {
			return err
		}
		if c == nil {
			break
		}
		cmd := d.pending[0]
		if c.WritableLen() < uint32(len(cmd)) {
			return fmt.Errorf("probedev: loader buffer of %d bytes, need %d", c.WritableLen(), len(cmd))
		}
		if _, err := c.WriteAt(d.mem, cmd, 0); err != nil {
			return err
		}
		if _, err := q.AddUsed(d.mem, c, uint32(len(cmd))); err != nil {
			return err
		}
		d.pending[0] = nil
		d.pending = d.pending[1:]
		d.delivered++
		moved = true
	}
	if !moved {
		return nil
	}
	return mmio.SignalUsed(q, d.mem, d.irq)
}

// collect takes the messages off the listener queue and hands each to the
// receiver as it is read: at most QueueSize of them, of at most
// wire.BufSize bytes each, per call (a driver that posts more while they
// are taken notifies again). A chain longer than wire.BufSize is malformed:
// the device needs a reset, and nothing of it is read. d.mu is held.
func (d *Device) collect() {
	q := d.q[wire.QueueListener]
	if q == nil || d.paused {
		return
	}
	at := d.now()
	taken := 0
	for ; taken < QueueSize && !d.broken; taken++ {
		c, err := q.Pop(d.mem)
		if err != nil {
			d.fail(err)
			break
		}
		if c == nil {
			break
		}
		msg, err := d.read(c)
		if err == nil {
			_, err = q.AddUsed(d.mem, c, 0)
		}
		if err != nil {
			d.fail(err)
			break
		}
		d.received++
		d.recv(msg, at)
	}
	if taken > 0 && !d.broken {
		d.fail(mmio.SignalUsed(q, d.mem, d.irq))
	}
}

// read copies one listener message out of guest memory; a chain longer
// than wire.BufSize is refused before anything is allocated.
func (d *Device) read(c *queue.Chain) ([]byte, error) {
	msg, err := c.ReadAllMax(d.mem, wire.BufSize)
	if errors.Is(err, queue.ErrReadableTooLong) {
		return nil, fmt.Errorf("%w: %w", ErrMessageTooLong, err)
	}
	return msg, err
}

// fail puts the device in DEVICE_NEEDS_RESET after bad guest input.
func (d *Device) fail(err error) {
	if err == nil || d.broken {
		return
	}
	d.broken = true
	mmio.NeedsReset(d.irq, err)
}
