package mmio

import "sync"

// notifier takes queue notifications the transport accepted (under
// Transport.mu) to Device.Notify outside that lock, so a device doing I/O
// never holds up a vCPU touching the transport's registers.
//
// Two ways, chosen before the transport is shared: by default the goroutine
// that notified delivers (a vCPU on the MMIO exit path, or an ioeventfd
// reader) once it has dropped Transport.mu; after StartNotifyWorker a
// notification only marks its queue pending and wakes the transport's
// worker goroutine, which delivers each pending queue once however often it
// was notified meanwhile.
//
// deliverMu is held while Device.Notify runs and by reset around
// Device.Reset, so Notify calls never overlap one another or a Reset; reset
// also drops what is pending and bumps epoch, so no notification accepted
// before a reset reaches the device after it.
//
// While the transport is paused (Transport.Pause, for a snapshot) either
// way only marks the queue pending; Resume delivers what is pending.
//
// Lock order: Transport.mu, then deliverMu, then mu. Device.Notify runs
// with deliverMu held and may take irqMu (interrupts), never Transport.mu.
type notifier struct {
	deliverMu sync.Mutex

	mu       sync.Mutex
	epoch    uint64 // resets so far
	closed   bool   // Close ran: nothing is delivered any more
	paused   bool   // Transport.Pause: notifications wait in pending
	pending  []bool // per queue: with a worker, or held back by a pause
	npending int
	next     int           // round-robin cursor over pending
	wake     chan struct{} // capacity 1; nil without a worker
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the worker returns

	closeOnce sync.Once
}

// delivery is a notification accepted for delivery on the notifying
// goroutine: queue, as of reset epoch.
type delivery struct {
	ok    bool
	queue uint32
	epoch uint64
}

// StartNotifyWorker moves the device's Notify calls onto a goroutine of
// the transport's own: a notification marks its queue pending and returns
// at once, and the worker calls Device.Notify once per pending queue, so
// a burst of notifications for one queue costs one call. Call it once,
// before the transport is shared; Close stops the worker.
func (t *Transport) StartNotifyWorker() {
	n := &t.ntf
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wake != nil || n.closed {
		return
	}
	n.wake = make(chan struct{}, 1)
	n.stop = make(chan struct{})
	n.done = make(chan struct{})
	go t.notifyWorker()
}

// Close stops notification delivery: the worker, if any, finishes the
// Notify it is in and exits; a Notify running on a notifying goroutine is
// waited for; nothing is delivered afterwards. Call it before the guest
// memory the device uses goes away. It does not reset the device. Safe to
// call more than once.
func (t *Transport) Close() error {
	n := &t.ntf
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		worker := n.wake != nil
		n.mu.Unlock()
		if worker {
			close(n.stop)
			<-n.done
		}
		n.deliverMu.Lock() // a Notify in flight on a notifying goroutine
		n.deliverMu.Unlock()
	})
	return nil
}

// accept takes an accepted notification of queue: with a worker it marks
// the queue pending and wakes the worker (returning nothing to deliver);
// otherwise it returns the delivery for the caller to run once it has
// dropped Transport.mu. Called with Transport.mu held, which orders it
// against reset.
func (n *notifier) accept(queue uint32) delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wake == nil {
		return delivery{ok: !n.closed, queue: queue, epoch: n.epoch}
	}
	n.holdLocked(queue)
	select {
	case n.wake <- struct{}{}:
	default: // already awake or about to be
	}
	return delivery{}
}

// deliver runs d on the calling goroutine, unless a reset or Close came
// between accepting and delivering it. Called without Transport.mu.
func (t *Transport) deliver(d delivery) {
	if !d.ok {
		return
	}
	n := &t.ntf
	n.deliverMu.Lock()
	defer n.deliverMu.Unlock()
	n.mu.Lock()
	live := !n.closed && n.epoch == d.epoch
	if live && n.paused {
		n.holdLocked(d.queue)
		live = false
	}
	n.mu.Unlock()
	if live {
		t.dev.Notify(d.queue)
	}
}

// holdLocked marks queue pending, to be delivered later. Called with mu
// held.
func (n *notifier) holdLocked(queue uint32) {
	if !n.pending[queue] {
		n.pending[queue] = true
		n.npending++
	}
}

// dropForReset forgets notifications not yet delivered. Called by reset
// with deliverMu held, just before Device.Reset.
func (n *notifier) dropForReset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.epoch++
	clear(n.pending)
	n.npending = 0
}

// pause holds deliveries back (they wait in pending) and waits for a
// Notify in flight to return. Called by Transport.Pause with
// Transport.mu held.
func (n *notifier) pause() {
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
	n.deliverMu.Lock() // a Notify in flight, on any goroutine
	n.deliverMu.Unlock()
}

// resume ends a pause. With a worker it wakes the worker for what was held
// back; otherwise it returns the held deliveries, for the caller to run
// once it has dropped Transport.mu. Called with Transport.mu held.
func (n *notifier) resume() []delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused = false
	if n.npending == 0 {
		return nil
	}
	if n.wake != nil {
		select {
		case n.wake <- struct{}{}:
		default:
		}
		return nil
	}
	var ds []delivery
	for q, p := range n.pending {
		if p {
			ds = append(ds, delivery{ok: !n.closed, queue: uint32(q), epoch: n.epoch})
		}
	}
	clear(n.pending)
	n.npending = 0
	return ds
}

// notifyWorker delivers pending notifications until Close.
func (t *Transport) notifyWorker() {
	n := &t.ntf
	defer close(n.done)
	for {
		select {
		case <-n.wake:
		case <-n.stop:
			return
		}
		for t.deliverPending() {
		}
	}
}

// deliverPending delivers one pending queue, taken round-robin so a busy
// queue does not starve the others. It reports whether there may be more.
func (t *Transport) deliverPending() bool {
	n := &t.ntf
	n.deliverMu.Lock()
	defer n.deliverMu.Unlock()
	n.mu.Lock()
	if n.closed || n.paused || n.npending == 0 {
		n.mu.Unlock()
		return false
	}
	q := n.next
	for !n.pending[q] {
		q = (q + 1) % len(n.pending)
	}
	n.pending[q] = false
	n.npending--
	n.next = (q + 1) % len(n.pending)
	n.mu.Unlock()
	// A device that asked for a reset since gets nothing more, as a
	// notification would not have been accepted then.
	t.irqMu.Lock()
	live := t.active && !t.needsReset
	t.irqMu.Unlock()
	if live {
		t.dev.Notify(uint32(q))
	}
	return true
}
