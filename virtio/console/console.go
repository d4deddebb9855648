// Package console is the virtio console device (VIRTIO 1.2 section 5.3)
// with a single port: what the guest writes to hvc0 goes to a host writer,
// host input arrives on the guest's hvc0.
package console

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// VIRTIO_ID_CONSOLE is the virtio device type of a console.
const VIRTIO_ID_CONSOLE = 3

// Queue indexes of port 0 without VIRTIO_CONSOLE_F_MULTIPORT (spec 5.3.2).
const (
	receiveq  = 0 // host -> guest
	transmitq = 1 // guest -> host
)

// QueueSize is the size of both queues.
const QueueSize = 64

// maxPending bounds host input held while the guest has posted no receive
// buffer; ReadFrom waits for room beyond it, so no byte is dropped.
const maxPending = 4096

// txChunk is how many bytes of guest output go to the host writer at a
// time. Output holds no buffer beyond this one chunk: the writer takes
// each chunk before the next is copied (a slow writer slows the device,
// not the guest's vCPUs, since Notify runs on the transport's worker).
const txChunk = 4096

// Device is a one-port virtio console.
type Device struct {
	out io.Writer

	mu      sync.Mutex
	room    sync.Cond // signalled when pending shrinks or the device resets
	q       [2]*queue.Queue
	mem     *guestmem.Memory
	irq     mmio.Interrupt
	broken  bool
	paused  bool   // Pause: input is held, nothing delivered
	pending []byte // host input not yet delivered
	txBuf   [txChunk]byte

	txDropped atomic.Uint64 // guest output bytes the writer refused
}

// New returns a console that writes guest output to out.
func New(out io.Writer) *Device {
	d := &Device{out: out}
	d.room.L = &d.mu
	return d
}

// DeviceID implements mmio.Device.
func (d *Device) DeviceID() uint32 { return VIRTIO_ID_CONSOLE }

// Features implements mmio.Device: none beyond VERSION_1.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes implements mmio.Device.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ReadConfig implements mmio.Device: no feature gives the config space a
// meaning, so it reads as zero.
func (d *Device) ReadConfig(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
}

// WriteConfig implements mmio.Device.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements mmio.Device.
func (d *Device) Activate(ctx mmio.ActivateContext) error {
	opened, err := ctx.OpenQueues(QueueSize)
	if err != nil {
		return fmt.Errorf("virtio-console: %w", err)
	}
	var qs [2]*queue.Queue
	copy(qs[:], opened)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq, d.broken = qs, ctx.Mem, ctx.Interrupt, false
	d.deliver()
	return nil
}

// Reset implements mmio.Device.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq, d.broken = [2]*queue.Queue{}, nil, nil, false
	d.room.Broadcast()
}

// Notify implements mmio.Device.
func (d *Device) Notify(q uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return
	}
	switch q {
	case transmitq:
		d.fail(d.transmit())
	case receiveq:
		d.deliver()
	}
}

// fail puts the device in DEVICE_NEEDS_RESET after bad guest input.
func (d *Device) fail(err error) {
	if err == nil {
		return
	}
	d.broken = true
	mmio.NeedsReset(d.irq, err)
}

// transmit writes every buffer the guest queued for output to out.
func (d *Device) transmit() error {
	q := d.q[transmitq]
	if q == nil {
		return nil
	}
	for {
		c, err := q.Pop(d.mem)
		if err != nil {
			return err
		}
		if c == nil {
			break
		}
		if err := d.write(c); err != nil {
			return err
		}
		if _, err := q.AddUsed(d.mem, c, 0); err != nil {
			return err
		}
	}
	return mmio.SignalUsed(q, d.mem, d.irq)
}

// write copies a chain's readable bytes to out, txChunk at a time through
// txBuf: nothing is allocated per chain, however long the guest makes it
// (descriptors may alias, so a small guest can post a chain of 4 GiB).
// When out fails, the rest of the chain is dropped and counted. Called
// with mu held.
func (d *Device) write(c *queue.Chain) error {
	var sent uint64
	for _, b := range c.Readable() {
		for off := uint64(0); off < uint64(b.Len); {
			k := min(uint64(b.Len)-off, txChunk)
			if err := d.mem.ReadAt(d.txBuf[:k], b.Addr+off); err != nil {
				return err
			}
			n, err := d.out.Write(d.txBuf[:k])
			sent += uint64(n)
			if err != nil {
				d.txDropped.Add(uint64(c.ReadableLen()) - sent)
				return nil
			}
			off += k
		}
	}
	return nil
}

// TxDropped returns how many bytes of guest output the host writer
// refused (each failed write drops the rest of its chain).
func (d *Device) TxDropped() uint64 { return d.txDropped.Load() }

// deliver moves pending host input into the receive buffers the guest has
// posted.
func (d *Device) deliver() {
	q := d.q[receiveq]
	if q == nil || d.broken || d.paused || len(d.pending) == 0 {
		return
	}
	for len(d.pending) > 0 {
		c, err := q.Pop(d.mem)
		if err != nil {
			d.fail(err)
			return
		}
		if c == nil {
			break
		}
		n := min(uint32(len(d.pending)), c.WritableLen())
		if _, err := c.WriteAt(d.mem, d.pending[:n], 0); err != nil {
			d.fail(err)
			return
		}
		if _, err := q.AddUsed(d.mem, c, n); err != nil {
			d.fail(err)
			return
		}
		d.pending = d.pending[n:]
	}
	d.room.Broadcast()
	d.fail(mmio.SignalUsed(q, d.mem, d.irq))
}

// ReadFrom feeds r to the guest as console input until r ends. It holds at
// most maxPending bytes the guest has not taken, waiting for it to post
// receive buffers; run it on its own goroutine.
func (d *Device) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 512)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			d.mu.Lock()
			for len(d.pending)+n > maxPending {
				d.room.Wait()
			}
			d.pending = append(d.pending, buf[:n]...)
			d.deliver()
			d.mu.Unlock()
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
