package net

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// VIRTIO_ID_NET is the virtio device type of a network card.
const VIRTIO_ID_NET = 1

// Feature bits (spec 5.1.3); the ring bits are queue's.
const (
	VIRTIO_NET_F_MAC       = 5
	VIRTIO_NET_F_MRG_RXBUF = 15 // not offered
	VIRTIO_NET_F_STATUS    = 16
)

// VIRTIO_NET_S_LINK_UP is the link bit of the config status field.
const VIRTIO_NET_S_LINK_UP = 1

// HeaderLen is the length of struct virtio_net_hdr with VIRTIO_F_VERSION_1
// (num_buffers included), in front of every frame on both queues.
const HeaderLen = 12

// Queue indexes without VIRTIO_NET_F_MQ and VIRTIO_NET_F_CTRL_VQ.
const (
	receiveq  = 0 // host -> guest
	transmitq = 1 // guest -> host
)

// QueueSize is the maximum size of both queues.
const QueueSize = 256

// MaxHeld bounds the frames held while the guest has posted no receive
// buffer; beyond it frames are dropped (and counted), as a NIC would.
const MaxHeld = 256

// configLen is the size of the config space we expose: mac[6], status u16.
const configLen = 8

// Stats are the device's counters since New.
type Stats struct {
	TxFrames, TxBytes uint64 // frames handed to Backend.Send
	TxDropped         uint64 // empty or oversized (> MaxFrameLen) guest frames
	TxErrors          uint64 // Backend.Send failures
	RxFrames, RxBytes uint64 // frames delivered to the guest
	RxDropTooBig      uint64 // frame larger than the posted receive buffer
	RxDropNoBuffer    uint64 // MaxHeld frames already waiting for buffers
	RxDropInactive    uint64 // device not active (before DRIVER_OK, reset, broken)
	RxDropRestore     uint64 // held for the guest when the restored snapshot was taken
}

type counters struct {
	txFrames, txBytes, txDropped, txErrors                       atomic.Uint64
	rxFrames, rxBytes, rxDropTooBig, rxDropNoBuf, rxDropInactive atomic.Uint64
	rxDropRestore                                                atomic.Uint64
}

// Device is a virtio-net device with one receive and one transmit queue,
// attached to a Backend. Transmission runs on the vCPU thread that notifies
// the transmit queue; reception runs on a goroutine started by New that
// reads the backend.
//
// Locking: mu guards the queues, the held frames and the link state. The
// receive goroutine takes mu after Backend.Recv returns, never while
// blocked in it; Backend.Send is called without mu. Interrupts are raised
// with mu held (the transport's interrupt lock is a leaf).
type Device struct {
	mac  [6]byte
	be   Backend
	done chan struct{} // closed when the receive goroutine exits
	st   counters

	mu     sync.Mutex
	q      [2]*queue.Queue
	mem    *guestmem.Memory
	irq    mmio.Interrupt
	broken bool // bad guest input seen; wait for a reset
	closed bool
	paused bool // Pause: frames are held, none delivered or sent
	linkUp bool
	held   [][]byte // received frames waiting for receive buffers
	rxErr  error    // why the receive goroutine stopped
}

// New returns a device with MAC address mac on backend be and starts the
// goroutine reading be. Frames that arrive before the driver activates the
// device are dropped. Close stops it.
func New(mac [6]byte, be Backend) *Device {
	d := &Device{mac: mac, be: be, done: make(chan struct{}), linkUp: true}
	go d.rxLoop()
	return d
}

// RandomMAC returns a random locally administered unicast MAC address.
func RandomMAC() [6]byte {
	var m [6]byte
	rand.Read(m[:])
	m[0] = m[0]&^1 | 2
	return m
}

// MAC returns the device's MAC address.
func (d *Device) MAC() [6]byte { return d.mac }

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	return Stats{
		TxFrames: d.st.txFrames.Load(), TxBytes: d.st.txBytes.Load(),
		TxDropped: d.st.txDropped.Load(), TxErrors: d.st.txErrors.Load(),
		RxFrames: d.st.rxFrames.Load(), RxBytes: d.st.rxBytes.Load(),
		RxDropTooBig: d.st.rxDropTooBig.Load(), RxDropNoBuffer: d.st.rxDropNoBuf.Load(),
		RxDropInactive: d.st.rxDropInactive.Load(), RxDropRestore: d.st.rxDropRestore.Load(),
	}
}

// Err returns the error that stopped the receive goroutine, or nil while
// it runs.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rxErr
}

// Close closes the backend, waits for the receive goroutine and leaves the
// device inert: it signals no more interrupts and ignores notifications.
func (d *Device) Close() error {
	d.mu.Lock()
	d.closed = true
	d.dropHeldLocked()
	d.q, d.mem, d.irq = [2]*queue.Queue{}, nil, nil
	d.mu.Unlock()
	err := d.be.Close()
	<-d.done
	return err
}

// SetLink changes the link status the guest sees and raises a
// configuration interrupt.
func (d *Device) SetLink(up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.linkUp == up {
		return
	}
	d.linkUp = up
	if d.irq != nil {
		d.irq.SignalConfig()
	}
}

// DeviceID implements mmio.Device.
func (d *Device) DeviceID() uint32 { return VIRTIO_ID_NET }

// Features implements mmio.Device.
func (d *Device) Features() uint64 {
	return 1<<VIRTIO_NET_F_MAC | 1<<VIRTIO_NET_F_STATUS |
		1<<queue.VIRTIO_RING_F_INDIRECT_DESC | 1<<queue.VIRTIO_RING_F_EVENT_IDX
}

// QueueMaxSizes implements mmio.Device.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ReadConfig implements mmio.Device: struct virtio_net_config up to status
// (mac[6], le16 status); the rest reads as zero.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	var cfg [configLen]byte
	copy(cfg[:6], d.mac[:])
	d.mu.Lock()
	if d.linkUp {
		binary.LittleEndian.PutUint16(cfg[6:], VIRTIO_NET_S_LINK_UP)
	}
	d.mu.Unlock()
	mmio.ReadConfigBytes(cfg[:configLen], offset, data)
}

// WriteConfig implements mmio.Device: with VERSION_1 the config space is
// read-only for the driver (spec 5.1.4.2), so writes are ignored.
func (d *Device) WriteConfig(uint64, []byte) {}

// Activate implements mmio.Device. Queues the driver did not enable are
// left alone (no reception, or no transmission).
func (d *Device) Activate(ctx mmio.ActivateContext) error {
	opened, err := ctx.OpenQueues(QueueSize)
	if err != nil {
		return fmt.Errorf("virtio-net: %w", err)
	}
	var qs [2]*queue.Queue
	copy(qs[:], opened)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("virtio-net: device closed")
	}
	d.q, d.mem, d.irq, d.broken = qs, ctx.Mem, ctx.Interrupt, false
	return nil
}

// Reset implements mmio.Device: it forgets the queues and drops held
// frames; the receive goroutine keeps reading the backend but discards
// until the device is activated again.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropHeldLocked()
	d.q, d.mem, d.irq, d.broken = [2]*queue.Queue{}, nil, nil, false
}

func (d *Device) dropHeldLocked() {
	d.st.rxDropInactive.Add(uint64(len(d.held)))
	d.held = nil
}

// Notify implements mmio.Device.
func (d *Device) Notify(q uint32) {
	switch q {
	case transmitq:
		d.transmit()
	case receiveq:
		d.mu.Lock()
		d.deliverLocked()
		d.mu.Unlock()
	}
}

// fail puts the device in DEVICE_NEEDS_RESET after bad guest input. Called
// with mu held.
func (d *Device) fail(err error) {
	if err == nil || d.broken {
		return
	}
	d.broken = true
	d.dropHeldLocked()
	mmio.NeedsReset(d.irq, err)
}

// transmit sends every frame the guest queued, in batches of at most
// QueueSize: each batch is copied out and returned to the guest under mu,
// then sent without it.
func (d *Device) transmit() {
	for {
		frames, more := d.popTx()
		for _, f := range frames {
			if err := d.be.Send(f); err != nil {
				d.st.txErrors.Add(1)
				continue
			}
			d.st.txFrames.Add(1)
			d.st.txBytes.Add(uint64(len(f)))
		}
		if !more {
			return
		}
	}
}

// popTx copies out up to QueueSize frames from the transmit queue and
// returns their chains. more reports that the batch filled up (so the
// queue may hold more).
func (d *Device) popTx() (frames [][]byte, more bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.q[transmitq]
	if q == nil || d.broken || d.closed || d.paused {
		return nil, false
	}
	var used bool
	for len(frames) < QueueSize {
		c, err := q.Pop(d.mem)
		if err != nil {
			d.fail(err)
			return frames, false
		}
		if c == nil {
			pending, err := q.EnableNotification(d.mem)
			if err != nil {
				d.fail(err)
				return frames, false
			}
			if !pending {
				break
			}
			continue
		}
		n := c.ReadableLen()
		if n < HeaderLen {
			d.fail(fmt.Errorf("virtio-net: transmit chain of %d bytes, shorter than the header", n))
			return frames, false
		}
		switch n -= HeaderLen; {
		case n == 0 || n > MaxFrameLen:
			d.st.txDropped.Add(1)
		default:
			f := make([]byte, n)
			if _, err := c.ReadAt(d.mem, f, HeaderLen); err != nil {
				d.fail(err)
				return frames, false
			}
			frames = append(frames, f)
		}
		if _, err := q.AddUsed(d.mem, c, 0); err != nil {
			d.fail(err)
			return frames, false
		}
		used = true
	}
	if used {
		if err := mmio.SignalUsed(q, d.mem, d.irq); err != nil {
			d.fail(err)
			return frames, false
		}
	}
	return frames, len(frames) == QueueSize
}

// rxLoop reads frames from the backend until it fails or is closed.
func (d *Device) rxLoop() {
	defer close(d.done)
	buf := make([]byte, MaxFrameLen)
	for {
		n, err := d.be.Recv(buf)
		if err != nil {
			d.mu.Lock()
			d.rxErr = err
			d.mu.Unlock()
			return
		}
		d.receive(buf[:n])
	}
}

// receive queues one frame from the backend for the guest and delivers
// what it can.
func (d *Device) receive(frame []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Paused and not active yet is a restore in progress: the frame waits
	// for the restored queues (Resume).
	if (d.q[receiveq] == nil && !d.paused) || d.broken || d.closed {
		d.st.rxDropInactive.Add(1)
		return
	}
	if len(d.held) >= MaxHeld {
		d.st.rxDropNoBuf.Add(1)
		return
	}
	d.held = append(d.held, bytes.Clone(frame))
	d.deliverLocked() // a no-op while paused: the frame waits
}

// deliverLocked moves held frames into the receive buffers the guest has
// posted, each chain getting a header and one whole frame. A frame that
// does not fit its chain is dropped and the chain returned empty (the
// driver recycles it). Called with mu held.
func (d *Device) deliverLocked() {
	q := d.q[receiveq]
	if q == nil || d.broken || d.closed || d.paused || len(d.held) == 0 {
		return
	}
	var hdr [HeaderLen]byte
	binary.LittleEndian.PutUint16(hdr[10:], 1) // num_buffers
	used := false
	for len(d.held) > 0 {
		c, err := q.Pop(d.mem)
		if err != nil {
			d.fail(err)
			return
		}
		if c == nil {
			pending, err := q.EnableNotification(d.mem)
			if err != nil {
				d.fail(err)
				return
			}
			if !pending {
				break
			}
			continue
		}
		f := d.held[0]
		d.held[0] = nil
		d.held = d.held[1:]
		var n uint32
		if need := HeaderLen + len(f); uint64(c.WritableLen()) < uint64(need) {
			d.st.rxDropTooBig.Add(1)
		} else {
			if _, err := c.WriteAt(d.mem, hdr[:], 0); err != nil {
				d.fail(err)
				return
			}
			if _, err := c.WriteAt(d.mem, f, HeaderLen); err != nil {
				d.fail(err)
				return
			}
			n = uint32(need)
			d.st.rxFrames.Add(1)
			d.st.rxBytes.Add(uint64(len(f)))
		}
		if _, err := q.AddUsed(d.mem, c, n); err != nil {
			d.fail(err)
			return
		}
		used = true
	}
	if len(d.held) == 0 {
		d.held = nil // let the backing array go
	}
	if used {
		d.fail(mmio.SignalUsed(q, d.mem, d.irq))
	}
}

var _ mmio.Device = (*Device)(nil)
