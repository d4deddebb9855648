package mmio

import (
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// OpenQueues turns every queue the driver enabled into a checked
// virtqueue of at most max entries, with the negotiated ring features:
// the one place a device's Activate gets its queues from. Queues the
// driver left disabled are nil.
func (ctx ActivateContext) OpenQueues(max uint16) ([]*queue.Queue, error) {
	qs := make([]*queue.Queue, len(ctx.Queues))
	for i, c := range ctx.Queues {
		if !c.Ready {
			continue
		}
		q, err := queue.Open(ctx.Mem, queue.Config{Max: max, Size: c.Size,
			Desc: c.Desc, Avail: c.Driver, Used: c.Device, Features: ctx.Features})
		if err != nil {
			return nil, fmt.Errorf("queue %d: %w", i, err)
		}
		qs[i] = q
	}
	return qs, nil
}

// ReadConfigBytes fills data from a device's configuration space cfg at
// offset; bytes beyond cfg read as zero (spec 4.2.2: any width, any offset).
func ReadConfigBytes(cfg []byte, offset uint64, data []byte) {
	for i := range data {
		data[i] = 0
		if o := offset + uint64(i); o < uint64(len(cfg)) {
			data[i] = cfg[o]
		}
	}
}

// SignalUsed interrupts the driver through irq if it wants to hear of the
// used buffers just added to q (spec 2.7.7 and 2.7.10: the NO_INTERRUPT
// flag, or used_event under EVENT_IDX): the one place devices decide on a
// used-buffer interrupt.
func SignalUsed(q *queue.Queue, mem *guestmem.Memory, irq Interrupt) error {
	notify, err := q.NeedsNotify(mem)
	if err != nil {
		return err
	}
	if notify {
		irq.SignalUsed()
	}
	return nil
}

// NeedsReset puts the device behind irq in DEVICE_NEEDS_RESET after guest
// input it cannot recover from (cause), when irq can (a Transport can; a
// test's bare Interrupt may not).
func NeedsReset(irq Interrupt, cause error) {
	if r, ok := irq.(interface{ SetNeedsReset(error) }); ok {
		r.SetNeedsReset(cause)
	}
}
