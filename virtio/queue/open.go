package queue

import "github.com/tracevisor/tracevisor/guestmem"

// Ring feature bits (VIRTIO 1.2 section 6), negotiated per device; they
// decide how the queue reads descriptors and suppresses notifications.
const (
	VIRTIO_RING_F_INDIRECT_DESC = 28
	VIRTIO_RING_F_EVENT_IDX     = 29
)

// Config is what a driver programmed for one queue, as a transport reports
// it, plus the negotiated feature bits.
type Config struct {
	// Max is the device's maximum size for the queue (a power of two).
	Max uint16
	// Size, Desc, Avail and Used are the driver's queue registers.
	Size              uint16
	Desc, Avail, Used uint64
	// Features are the negotiated device features; only the ring bits
	// matter here.
	Features uint64
}

// Open builds a queue from cfg and activates it: the one place where a
// device turns a driver's queue set-up into a validated queue.
func Open(mem *guestmem.Memory, cfg Config) (*Queue, error) {
	q := New(cfg.Max)
	q.SetSize(cfg.Size)
	q.SetDescAddr(cfg.Desc)
	q.SetAvailAddr(cfg.Avail)
	q.SetUsedAddr(cfg.Used)
	q.SetEventIdx(cfg.Features&(1<<VIRTIO_RING_F_EVENT_IDX) != 0)
	q.SetIndirect(cfg.Features&(1<<VIRTIO_RING_F_INDIRECT_DESC) != 0)
	q.SetReady(true)
	if err := q.Activate(mem); err != nil {
		return nil, err
	}
	return q, nil
}
