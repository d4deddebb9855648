package mmio

import "math/bits"

// selectedQueue returns the queue chosen by QueueSel, nil if the device
// has no such queue. Called with mu held.
func (t *Transport) selectedQueue() *queueState {
	if uint64(t.queueSel) >= uint64(len(t.queues)) {
		return nil
	}
	return &t.queues[t.queueSel]
}

// resetQueues returns every queue to its reset state (spec 2.4: queues
// not ready, addresses 0) with QueueNum preset to the maximum, as
// Firecracker and the PCI transport do. Called with mu held or before the
// Transport is shared.
func (t *Transport) resetQueues() {
	for i := range t.queues {
		t.queues[i].cfg = QueueConfig{Size: t.queues[i].max}
	}
}

// queueConfigs returns a copy of the programmed queue configurations.
// Called with mu held.
func (t *Transport) queueConfigs() []QueueConfig {
	out := make([]QueueConfig, len(t.queues))
	for i, q := range t.queues {
		out[i] = q.cfg
	}
	return out
}

// writeQueue handles the queue configuration registers. Spec 4.2.3.2: the
// driver programs queues after FEATURES_OK and before DRIVER_OK, and only
// while the queue is not ready; other writes are ignored. Called with mu
// held.
func (t *Transport) writeQueue(offset uint64, v uint32) {
	if t.status&(VIRTIO_CONFIG_S_FEATURES_OK|VIRTIO_CONFIG_S_DRIVER_OK) != VIRTIO_CONFIG_S_FEATURES_OK {
		t.rejectf(ErrQueueState, "write %#x to %#x with status %#x", v, offset, t.status)
		return
	}
	q := t.selectedQueue()
	if q == nil {
		t.rejectf(ErrNoQueue, "write %#x to %#x for queue %d", v, offset, t.queueSel)
		return
	}
	if offset == VIRTIO_MMIO_QUEUE_READY {
		t.writeQueueReady(q, v)
		return
	}
	if q.cfg.Ready {
		t.rejectf(ErrQueueState, "write %#x to %#x while queue %d is ready", v, offset, t.queueSel)
		return
	}
	c := &q.cfg
	switch offset {
	case VIRTIO_MMIO_QUEUE_NUM:
		// Stored as written and checked when the queue is made ready, so
		// a bad size can never leave an earlier, valid one in place.
		// Sizes above 0xffff become 0, which QueueReady refuses.
		if v > 0xffff {
			v = 0
		}
		c.Size = uint16(v)
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		c.Desc = setLow(c.Desc, v)
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		c.Desc = setHigh(c.Desc, v)
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		c.Driver = setLow(c.Driver, v)
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		c.Driver = setHigh(c.Driver, v)
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		c.Device = setLow(c.Device, v)
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		c.Device = setHigh(c.Device, v)
	}
}

// writeQueueReady enables (1) or disables (0) the selected queue. Enabling
// requires a size in 1..QueueNumMax that, for split rings, is a power of
// two (spec 2.7: "Queue Size value is always a power of 2"; packed rings,
// spec 2.8, lift that). Called with mu held.
func (t *Transport) writeQueueReady(q *queueState, v uint32) {
	switch v {
	case 0:
		q.cfg.Ready = false
	case 1:
		size := q.cfg.Size
		packed := t.drvFeat&VIRTIO_F_RING_PACKED != 0
		if size == 0 || size > q.max || (!packed && bits.OnesCount16(size) != 1) {
			t.rejectf(ErrQueueSize, "queue %d ready with size %d, max %d", t.queueSel, size, q.max)
			return
		}
		q.cfg.Ready = true
	default:
		t.rejectf(ErrQueueState, "QueueReady value %#x", v)
	}
}

// notify accepts a QueueNotify write for an active device. Without
// VIRTIO_F_NOTIFICATION_DATA the value is the queue index (spec 4.2.2).
// The device is not called here: the returned delivery (empty with a
// notification worker, which gets the queue instead) is for the caller to
// run once it has dropped mu. Called with mu held.
func (t *Transport) notify(v uint32) delivery {
	t.irqMu.Lock()
	ok := t.active && !t.needsReset
	t.irqMu.Unlock()
	if !ok {
		t.rejectf(ErrNotActive, "notify queue %d", v)
		return delivery{}
	}
	if uint64(v) >= uint64(len(t.queues)) {
		t.rejectf(ErrNoQueue, "notify queue %d", v)
		return delivery{}
	}
	return t.ntf.accept(v)
}

func setLow(x uint64, v uint32) uint64  { return x&^0xffffffff | uint64(v) }
func setHigh(x uint64, v uint32) uint64 { return x&0xffffffff | uint64(v)<<32 }

// NotifyQueue does what a driver's write of queue to VIRTIO_MMIO_QUEUE_NOTIFY
// does, for a VMM that receives those writes through an ioeventfd instead of
// an MMIO exit. Safe from any goroutine.
func (t *Transport) NotifyQueue(queue uint32) {
	t.mu.Lock()
	d := t.notify(queue)
	t.mu.Unlock()
	t.deliver(d)
}

// QueueCount returns how many queues the device has.
func (t *Transport) QueueCount() int { return len(t.queues) }
