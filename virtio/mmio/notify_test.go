package mmio

import (
	"sync"
	"testing"
	"time"
)

// gatedDevice is a fakeDevice whose Notify reports that it started and
// then waits for the gate, as a device stuck in slow I/O would. It checks
// that Notify never overlaps another Notify or a Reset.
type gatedDevice struct {
	*fakeDevice
	entered chan uint32   // one send per Notify, as it starts
	gate    chan struct{} // Notify returns once this is closed
	open    sync.Once

	mu       sync.Mutex
	inNotify bool
	overlaps int
	calls    int
}

// newGated puts a gatedDevice behind h's transport. Cleanup opens the gate
// and then closes the transport, so a failing test does not hang on a
// worker stuck in Notify.
func newGated(h *harness) *gatedDevice {
	g := &gatedDevice{fakeDevice: h.dev, entered: make(chan uint32, 100), gate: make(chan struct{})}
	h.tr = New(g, h.mem, func(bool) {})
	h.tr.SetRejectHook(func(err error) { h.errs = append(h.errs, err) })
	tr := h.tr
	h.t.Cleanup(func() { tr.Close() })
	h.t.Cleanup(g.release)
	return g
}

// release opens the gate: Notify calls return.
func (g *gatedDevice) release() { g.open.Do(func() { close(g.gate) }) }

func (g *gatedDevice) Notify(q uint32) {
	g.mu.Lock()
	if g.inNotify {
		g.overlaps++
	}
	g.inNotify = true
	g.calls++
	g.mu.Unlock()
	g.entered <- q
	<-g.gate
	g.mu.Lock()
	g.inNotify = false
	g.mu.Unlock()
}

func (g *gatedDevice) Reset() {
	g.mu.Lock()
	if g.inNotify {
		g.overlaps++
	}
	g.mu.Unlock()
	g.fakeDevice.Reset()
}

func (g *gatedDevice) counts() (calls, overlaps int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls, g.overlaps
}

// within runs f on a goroutine and fails the test unless it returns within
// the deadline.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still blocked after 5 s", what)
	}
}

func waitEntered(t *testing.T, g *gatedDevice, want uint32) {
	t.Helper()
	select {
	case q := <-g.entered:
		if q != want {
			t.Fatalf("Notify(%d), want Notify(%d)", q, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Notify(%d) not called within 5 s", want)
	}
}

// TestWorkerKeepsDeviceOffVCPU: with the worker, a QueueNotify write
// returns while the device is still busy, and other register accesses go
// on meanwhile; repeated notifications of the busy queue are coalesced
// into one more call.
func TestWorkerKeepsDeviceOffVCPU(t *testing.T) {
	h := newHarness(t)
	g := newGated(h)
	h.tr.StartNotifyWorker()
	h.activate()

	within(t, "QueueNotify write while the device is idle", func() { h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 0) })
	waitEntered(t, g, 0)
	// The device is stuck in Notify(0). vCPUs keep going.
	within(t, "QueueNotify writes while the device is busy", func() {
		for range 50 {
			h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 0)
		}
	})
	within(t, "register read while the device is busy", func() {
		if st := h.status(); st != 0xf {
			t.Errorf("status %#x", st)
		}
	})
	g.release()
	waitEntered(t, g, 0) // the 50 coalesced into one
	h.tr.Close()         // waits for the worker, which has nothing more
	if calls, overlaps := g.counts(); calls != 2 || overlaps != 0 {
		t.Fatalf("%d Notify calls (want 2: one, then the coalesced 50), %d overlaps", calls, overlaps)
	}
	// After Close nothing is delivered.
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 1)
	if calls, _ := g.counts(); calls != 2 {
		t.Fatal("Notify after Close")
	}
}

// TestInlineNotifyOutsideLock: without the worker (the probe device's
// on-vCPU delivery) the notifying vCPU runs Notify itself, but without the
// transport's lock: another vCPU's register accesses do not wait for it.
func TestInlineNotifyOutsideLock(t *testing.T) {
	h := newHarness(t)
	g := newGated(h)
	h.activate()

	notified := make(chan struct{})
	go func() { h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 1); close(notified) }()
	waitEntered(t, g, 1)
	select {
	case <-notified:
		t.Fatal("inline QueueNotify returned before the device's Notify did")
	default:
	}
	within(t, "register read while a vCPU is in Notify", func() {
		if st := h.status(); st != 0xf {
			t.Errorf("status %#x", st)
		}
	})
	g.release()
	within(t, "the notifying vCPU after Notify returned", func() { <-notified })
}

// TestResetWaitsForNotify: a reset written while the worker is in Notify
// waits for it, Device.Reset never overlaps Notify, and a notification
// still pending at the reset is never delivered after it.
func TestResetWaitsForNotify(t *testing.T) {
	h := newHarness(t)
	g := newGated(h)
	h.tr.StartNotifyWorker()
	h.activate()

	g.fakeDevice.mu.Lock()
	resetsBefore := g.fakeDevice.resets
	g.fakeDevice.mu.Unlock()
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 0)
	waitEntered(t, g, 0)
	h.w(VIRTIO_MMIO_QUEUE_NOTIFY, 1) // pending behind the busy Notify(0)
	reset := make(chan struct{})
	go func() { h.w(VIRTIO_MMIO_STATUS, 0); close(reset) }()
	// Give the reset time to block on the busy device; it must not finish.
	select {
	case <-reset:
		t.Fatal("reset finished while the device was still in Notify")
	case <-time.After(50 * time.Millisecond):
	}
	g.release()
	within(t, "reset after Notify returned", func() { <-reset })
	callsAtReset, _ := g.counts()
	h.tr.Close() // the worker has delivered all it ever will
	calls, overlaps := g.counts()
	if overlaps != 0 {
		t.Fatalf("Notify overlapped Notify or Reset %d times", overlaps)
	}
	if calls != callsAtReset || calls > 2 {
		t.Fatalf("%d Notify calls at the reset, %d after Close", callsAtReset, calls)
	}
	g.fakeDevice.mu.Lock()
	resets := g.fakeDevice.resets
	g.fakeDevice.mu.Unlock()
	if resets != resetsBefore+1 {
		t.Fatalf("Device.Reset called %d times for one reset", resets-resetsBefore)
	}
}
