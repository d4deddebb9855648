package mmio_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

// seqDevice answers each buffer of its one queue with its sequence number
// (device state that must survive a restore) and counts what it is asked.
type seqDevice struct {
	mu          sync.Mutex
	q           *queue.Queue
	mem         *guestmem.Memory
	irq         mmio.Interrupt
	seq         uint32
	paused      bool
	activations int
	notifies    int
	pausedCalls int // Notify while paused: must stay 0
}

type seqState struct {
	Seq uint32 `json:"seq"`
}

const seqFeatures = 1<<queue.VIRTIO_RING_F_EVENT_IDX | 1<<queue.VIRTIO_RING_F_INDIRECT_DESC

func (d *seqDevice) DeviceID() uint32               { return 42 }
func (d *seqDevice) Features() uint64               { return seqFeatures }
func (d *seqDevice) QueueMaxSizes() []uint16        { return []uint16{16} }
func (d *seqDevice) ReadConfig(_ uint64, b []byte)  { clear(b) }
func (d *seqDevice) WriteConfig(_ uint64, _ []byte) {}
func (d *seqDevice) Reset()                         { d.mu.Lock(); d.q, d.mem, d.irq = nil, nil, nil; d.mu.Unlock() }
func (d *seqDevice) Pause()                         { d.mu.Lock(); d.paused = true; d.mu.Unlock() }
func (d *seqDevice) Resume()                        { d.mu.Lock(); d.paused = false; d.mu.Unlock() }
func (d *seqDevice) counts() (activations, notifies int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.activations, d.notifies
}

func (d *seqDevice) Activate(ctx mmio.ActivateContext) error {
	qs, err := ctx.OpenQueues(16)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.activations++
	d.q, d.mem, d.irq = qs[0], ctx.Mem, ctx.Interrupt
	return nil
}

func (d *seqDevice) Notify(uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notifies++
	if d.paused {
		d.pausedCalls++
		return
	}
	for {
		c, err := d.q.Pop(d.mem)
		if err != nil || c == nil {
			break
		}
		d.seq++
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], d.seq)
		c.WriteAt(d.mem, b[:], 0)
		d.q.AddUsed(d.mem, c, 4)
	}
	mmio.SignalUsed(d.q, d.mem, d.irq)
}

func (d *seqDevice) SaveState() (json.RawMessage, []*queue.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := json.Marshal(seqState{Seq: d.seq})
	if d.q == nil {
		return b, nil, err
	}
	return b, []*queue.Queue{d.q}, err
}

func (d *seqDevice) RestoreState(raw json.RawMessage) error {
	var s seqState
	if err := mmio.DecodeState(raw, &s); err != nil {
		return err
	}
	d.mu.Lock()
	d.seq = s.Seq
	d.mu.Unlock()
	return nil
}

// CheckState implements mmio.StateChecker: what RestoreState refuses.
func (d *seqDevice) CheckState(raw json.RawMessage) error {
	var s seqState
	return mmio.DecodeState(raw, &s)
}

func (d *seqDevice) RestoreActive(ctx mmio.ActivateContext, qs []*queue.Queue) error {
	if len(qs) != 1 || qs[0] == nil {
		return fmt.Errorf("seq device: queue not running")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.activations++
	d.q, d.mem, d.irq = qs[0], ctx.Mem, ctx.Interrupt
	return nil
}

// seqRig is a transport with a seqDevice, its guest memory, one ring and
// a recorded interrupt line.
type seqRig struct {
	dev  *seqDevice
	mem  *guestmem.Memory
	tr   *mmio.Transport
	ring *virtiotest.Ring
	mu   sync.Mutex
	line []bool
}

func newSeqRig(mem *guestmem.Memory) *seqRig {
	r := &seqRig{dev: &seqDevice{}, mem: mem}
	r.tr = mmio.New(r.dev, mem, func(l bool) { r.mu.Lock(); r.line = append(r.line, l); r.mu.Unlock() })
	r.ring = &virtiotest.Ring{Mem: mem, Desc: 0x1000, Avail: 0x2000, Used: 0x3000, Buf: 0x4000, Size: 16}
	return r
}

func (r *seqRig) lines() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.line...)
}

// request posts one 4-byte writable buffer and notifies the queue.
func (r *seqRig) request() {
	r.ring.Post(nil, 4, true)
	virtiotest.SetReg(r.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, 0)
}

// answer returns the sequence number the device wrote for used element i.
func (r *seqRig) answer(i uint16) uint32 {
	return binary.LittleEndian.Uint32(r.ring.UsedBuffer(i, 4))
}

// waitUsed waits (with a deadline) for used.idx to reach n, reading it
// under the device's lock (the device may be running on the worker).
func (r *seqRig) waitUsed(t *testing.T, n uint16) {
	t.Helper()
	idx := func() uint16 { r.dev.mu.Lock(); defer r.dev.mu.Unlock(); return r.ring.UsedIdx() }
	deadline := time.Now().Add(5 * time.Second)
	for idx() != n {
		if time.Now().After(deadline) {
			t.Fatalf("used idx %d, want %d", idx(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// registers reads every driver-readable register that state covers.
func registers(tr *mmio.Transport) map[string]uint32 {
	m := map[string]uint32{
		"status":     virtiotest.Reg(tr, mmio.VIRTIO_MMIO_STATUS),
		"isr":        virtiotest.Reg(tr, mmio.VIRTIO_MMIO_INTERRUPT_STATUS),
		"generation": virtiotest.Reg(tr, mmio.VIRTIO_MMIO_CONFIG_GENERATION),
		"features":   virtiotest.Reg(tr, mmio.VIRTIO_MMIO_DEVICE_FEATURES), // through DeviceFeaturesSel
		"num max":    virtiotest.Reg(tr, mmio.VIRTIO_MMIO_QUEUE_NUM_MAX),   // through QueueSel
		"ready":      virtiotest.Reg(tr, mmio.VIRTIO_MMIO_QUEUE_READY),
	}
	return m
}

// An active device, used for a few requests with one more notified while
// paused, is restored over a copy of memory into a new transport and
// device: registers read back the same, the line is up again, the held
// request is served exactly once, and the driver goes on with indices
// continuing; the device's own state (its sequence) came back. The
// original, resumed, serves the held request too.
func TestRestoreActiveContinues(t *testing.T) {
	for _, worker := range []bool{false, true} {
		t.Run(fmt.Sprintf("worker=%v", worker), func(t *testing.T) {
			testRestoreActive(t, worker)
		})
	}
}

func testRestoreActive(t *testing.T, worker bool) {
	a := newSeqRig(virtiotest.NewMemory(0x10000))
	defer a.tr.Close()
	virtiotest.Activate(t, a.tr, seqFeatures, a.ring)
	for i := 0; i < 3; i++ {
		a.request()
	}
	if a.ring.UsedIdx() != 3 || a.answer(2) != 3 {
		t.Fatalf("before snapshot: used idx %d, answer %d", a.ring.UsedIdx(), a.answer(2))
	}
	a.tr.SignalConfig() // generation 1, CONFIG pending alongside VRING
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1)

	a.tr.Pause()
	a.request() // held back: in flight at snapshot time
	if a.ring.UsedIdx() != 3 {
		t.Fatalf("paused transport delivered a notification")
	}
	s := virtiotest.SaveState(t, a.tr)
	if !s.Active || s.Queues[0].Ring == nil || s.Queues[0].Ring.NextAvail != 3 || s.ConfigGeneration != 1 {
		t.Fatalf("State = %+v", s)
	}
	want := registers(a.tr)

	b := newSeqRig(virtiotest.CloneMemory(a.mem))
	defer b.tr.Close()
	if worker {
		b.tr.StartNotifyWorker()
	}
	b.ring = a.ring.OnMemory(b.mem)
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	b.waitUsed(t, 4)
	if got := b.answer(3); got != 4 {
		t.Fatalf("held request answered %d, want 4 (device sequence not restored?)", got)
	}
	if got := registers(b.tr); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("registers after restore %v, want %v", got, want)
	}
	if l := b.lines(); len(l) == 0 || !l[0] || !b.tr.InterruptLine() {
		t.Fatalf("interrupt line after restore %v, want raised", l)
	}
	if act, _ := b.dev.counts(); act != 1 {
		t.Fatalf("device started %d times, want 1 (RestoreActive, not Activate)", act)
	}
	// The driver goes on: the next request is served once, in the next slot.
	b.request()
	b.waitUsed(t, 5)
	if got := b.answer(4); got != 5 {
		t.Fatalf("next request answered %d, want 5", got)
	}
	if b.ring.UsedIdx() != 5 {
		t.Fatalf("used idx %d, want 5: a buffer was served twice", b.ring.UsedIdx())
	}

	// The original resumes and serves the held request itself.
	a.tr.Resume()
	a.waitUsed(t, 4)
	if got := a.answer(3); got != 4 || a.dev.pausedCalls != 0 {
		t.Fatalf("original after Resume: answer %d, Notify while paused %d", got, a.dev.pausedCalls)
	}
}

// RestorePaused brings the transport back paused: the request held at
// snapshot time is not served, and the device not notified, until Resume,
// which serves it exactly once.
func TestRestorePausedHoldsUntilResume(t *testing.T) {
	for _, worker := range []bool{false, true} {
		t.Run(fmt.Sprintf("worker=%v", worker), func(t *testing.T) {
			a := newSeqRig(virtiotest.NewMemory(0x10000))
			defer a.tr.Close()
			virtiotest.Activate(t, a.tr, seqFeatures, a.ring)
			a.request()
			a.tr.Pause()
			a.request() // held: in flight at snapshot time
			s := virtiotest.SaveState(t, a.tr)

			b := newSeqRig(virtiotest.CloneMemory(a.mem))
			defer b.tr.Close()
			if worker {
				b.tr.StartNotifyWorker()
			}
			b.ring = a.ring.OnMemory(b.mem)
			if err := b.tr.RestorePaused(s); err != nil {
				t.Fatalf("RestorePaused: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // a worker would have run by now
			b.dev.mu.Lock()
			idx, notifies, paused := b.ring.UsedIdx(), b.dev.notifies, b.dev.paused
			b.dev.mu.Unlock()
			if idx != 1 || notifies != 0 || !paused {
				t.Fatalf("restored paused: used idx %d, %d notifies, device paused %v; want 1, 0, true", idx, notifies, paused)
			}
			b.tr.Resume()
			b.waitUsed(t, 2)
			if got := b.answer(1); got != 2 || b.dev.pausedCalls != 0 {
				t.Fatalf("after Resume: answer %d (want 2), %d notifies while paused", got, b.dev.pausedCalls)
			}
			b.request()
			b.waitUsed(t, 3)
		})
	}
}

// A transport saved in the middle of negotiation comes back there: the
// driver finishes it on the restored transport as if nothing happened, and
// the device is activated normally.
func TestRestoreMidNegotiation(t *testing.T) {
	a := newSeqRig(virtiotest.NewMemory(0x10000))
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_STATUS, mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE)
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_STATUS, mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE|mmio.VIRTIO_CONFIG_S_DRIVER)
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1)
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES, 1) // VERSION_1
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0)
	virtiotest.SetReg(a.tr, mmio.VIRTIO_MMIO_DRIVER_FEATURES, 1<<queue.VIRTIO_RING_F_EVENT_IDX)
	s := virtiotest.SaveState(t, a.tr)

	b := newSeqRig(virtiotest.NewMemory(0x10000))
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if act, _ := b.dev.counts(); act != 0 || b.tr.InterruptLine() {
		t.Fatalf("inactive restore started the device (%d) or raised the line", act)
	}
	add := func(bit uint32) {
		virtiotest.SetReg(b.tr, mmio.VIRTIO_MMIO_STATUS, virtiotest.Reg(b.tr, mmio.VIRTIO_MMIO_STATUS)|bit)
	}
	add(mmio.VIRTIO_CONFIG_S_FEATURES_OK)
	if st := virtiotest.Reg(b.tr, mmio.VIRTIO_MMIO_STATUS); st&mmio.VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		t.Fatalf("FEATURES_OK refused after restore (driver features lost?): status %#x", st)
	}
	virtiotest.SetReg(b.tr, mmio.VIRTIO_MMIO_QUEUE_SEL, 0)
	virtiotest.SetReg(b.tr, mmio.VIRTIO_MMIO_QUEUE_NUM, 16)
	for _, r := range [][2]uint64{{mmio.VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000}, {mmio.VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x2000}, {mmio.VIRTIO_MMIO_QUEUE_USED_LOW, 0x3000}} {
		virtiotest.SetReg(b.tr, r[0], uint32(r[1]))
	}
	virtiotest.SetReg(b.tr, mmio.VIRTIO_MMIO_QUEUE_READY, 1)
	add(mmio.VIRTIO_CONFIG_S_DRIVER_OK)
	b.request()
	if act, _ := b.dev.counts(); act != 1 || b.ring.UsedIdx() != 1 {
		t.Fatalf("after negotiation on the restored transport: %d activations, used idx %d", act, b.ring.UsedIdx())
	}
	if !b.dev.q.EventIdx() {
		t.Fatalf("EVENT_IDX written before the snapshot was lost")
	}
}

func TestStateNeedsPauseAndRestorer(t *testing.T) {
	a := newSeqRig(virtiotest.NewMemory(0x10000))
	if _, err := a.tr.State(); !errors.Is(err, mmio.ErrNotPaused) {
		t.Fatalf("State without Pause = %v, want ErrNotPaused", err)
	}
	plain := mmio.New(plainDevice{}, a.mem, nil)
	plain.Pause()
	if _, err := plain.State(); !errors.Is(err, mmio.ErrNotRestorable) {
		t.Fatalf("State of a device without Restorer = %v, want ErrNotRestorable", err)
	}
	if err := plain.Restore(mmio.State{}); !errors.Is(err, mmio.ErrNotRestorable) {
		t.Fatalf("Restore of a device without Restorer = %v, want ErrNotRestorable", err)
	}
}

// plainDevice implements mmio.Device only.
type plainDevice struct{}

func (plainDevice) DeviceID() uint32                        { return 42 }
func (plainDevice) Features() uint64                        { return 0 }
func (plainDevice) QueueMaxSizes() []uint16                 { return []uint16{16} }
func (plainDevice) ReadConfig(uint64, []byte)               {}
func (plainDevice) WriteConfig(uint64, []byte)              {}
func (plainDevice) Activate(ctx mmio.ActivateContext) error { return nil }
func (plainDevice) Reset()                                  {}
func (plainDevice) Notify(uint32)                           {}

// A snapshot is hostile input. Each state below is one no transport could
// be in, or one of another device; Restore refuses it and leaves the new
// transport and device untouched (never half-restored).
func TestRestoreRefusesHostileStates(t *testing.T) {
	a := newSeqRig(virtiotest.NewMemory(0x10000))
	virtiotest.Activate(t, a.tr, seqFeatures, a.ring)
	a.request()
	good := virtiotest.SaveState(t, a.tr)

	const (
		ack = mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE
		drv = mmio.VIRTIO_CONFIG_S_DRIVER
		fok = mmio.VIRTIO_CONFIG_S_FEATURES_OK
		dok = mmio.VIRTIO_CONFIG_S_DRIVER_OK
	)
	ring := func(s *mmio.State) *queue.State { r := *s.Queues[0].Ring; s.Queues[0].Ring = &r; return &r }
	cases := []struct {
		name string
		mod  func(s *mmio.State)
		want error
	}{
		{"another device", func(s *mmio.State) { s.DeviceID = 2 }, mmio.ErrStateMismatch},
		{"other features offered", func(s *mmio.State) { s.OfferedFeatures |= 1 }, mmio.ErrStateMismatch},
		{"queue missing", func(s *mmio.State) { s.Queues = nil }, mmio.ErrStateMismatch},
		{"other queue max", func(s *mmio.State) { s.Queues[0].Max = 32 }, mmio.ErrStateMismatch},
		{"DRIVER_OK skipping FEATURES_OK", func(s *mmio.State) { s.Status = ack | drv | dok }, mmio.ErrBadState},
		{"DRIVER without ACKNOWLEDGE", func(s *mmio.State) { s.Status = drv | fok | dok }, mmio.ErrBadState},
		{"NEEDS_RESET in status", func(s *mmio.State) { s.Status |= mmio.VIRTIO_CONFIG_S_NEEDS_RESET }, mmio.ErrBadState},
		{"unknown status bit", func(s *mmio.State) { s.Status |= 0x10 }, mmio.ErrBadState},
		{"driver_ok without DRIVER_OK", func(s *mmio.State) { s.Status = ack | drv | fok }, mmio.ErrBadState},
		{"DRIVER_OK, inactive, no reset", func(s *mmio.State) { s.Active = false; s.Queues[0].Ring = nil }, mmio.ErrBadState},
		{"unknown interrupt cause", func(s *mmio.State) { s.InterruptStatus = 4 }, mmio.ErrBadState},
		{"features not offered", func(s *mmio.State) { s.DriverFeatures |= 1 << 3 }, mmio.ErrBadState},
		{"features without VERSION_1", func(s *mmio.State) { s.DriverFeatures &^= mmio.VIRTIO_F_VERSION_1 }, mmio.ErrBadState},
		{"ready queue size not a power of two", func(s *mmio.State) { s.Queues[0].Size = 12; ring(s).Size = 12 }, mmio.ErrBadState},
		{"ready queue above max", func(s *mmio.State) { s.Queues[0].Size = 32; ring(s).Size = 32 }, mmio.ErrBadState},
		{"ring disagrees with registers", func(s *mmio.State) { ring(s).UsedAddr = 0x5000 }, mmio.ErrBadState},
		{"ring without EVENT_IDX negotiated", func(s *mmio.State) { ring(s).EventIdx = false }, mmio.ErrBadState},
		{"ring of a disabled queue", func(s *mmio.State) { s.Queues[0].Ready = false }, mmio.ErrBadState},
		{"ring outside guest memory", func(s *mmio.State) { s.Queues[0].Desc = 1 << 40; ring(s).DescAddr = 1 << 40 }, queue.ErrRingOutsideRAM},
		{"ring max not a power of two", func(s *mmio.State) { ring(s).MaxSize = 15 }, mmio.ErrBadState},
		{"device state missing", func(s *mmio.State) { s.Device = nil }, mmio.ErrBadState},
		{"device state of another layout", func(s *mmio.State) { s.Device = json.RawMessage(`{"seq":1,"extra":2}`) }, mmio.ErrBadState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			s.Queues = append([]mmio.QueueState(nil), good.Queues...)
			tc.mod(&s)
			b := newSeqRig(virtiotest.NewMemory(0x10000))
			if err := b.tr.Check(s); !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v (what Restore refuses)", err, tc.want)
			}
			err := b.tr.Restore(s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Restore = %v, want %v", err, tc.want)
			}
			if st := virtiotest.Reg(b.tr, mmio.VIRTIO_MMIO_STATUS); st != 0 || b.tr.InterruptLine() {
				t.Fatalf("refused restore left status %#x, line %v", st, b.tr.InterruptLine())
			}
			if act, _ := b.dev.counts(); act != 0 || b.dev.seq != 0 {
				t.Fatalf("refused restore reached the device: %d activations, seq %d", act, b.dev.seq)
			}
		})
	}

	// Check accepts the good state and changes nothing.
	b := newSeqRig(virtiotest.NewMemory(0x10000))
	if err := b.tr.Check(good); err != nil {
		t.Fatalf("Check(good) = %v", err)
	}
	if act, _ := b.dev.counts(); act != 0 || virtiotest.Reg(b.tr, mmio.VIRTIO_MMIO_STATUS) != 0 {
		t.Fatalf("Check changed the transport or device")
	}
	if err := b.tr.Restore(good); err != nil {
		t.Fatalf("Restore after Check: %v", err)
	}

	// And a transport the driver has touched is not restored into.
	b = newSeqRig(virtiotest.NewMemory(0x10000))
	virtiotest.SetReg(b.tr, mmio.VIRTIO_MMIO_STATUS, ack)
	if err := b.tr.Restore(good); !errors.Is(err, mmio.ErrNotFresh) {
		t.Fatalf("Restore into a used transport = %v, want ErrNotFresh", err)
	}
}

// FuzzRestore: whatever a snapshot's transport section holds, Restore
// never panics, and a state it takes can be saved again.
func FuzzRestore(f *testing.F) {
	a := newSeqRig(virtiotest.NewMemory(0x10000))
	virtiotest.Activate(f, a.tr, seqFeatures, a.ring)
	a.request()
	good, _ := json.Marshal(virtiotest.SaveState(f, a.tr))
	f.Add(good)
	f.Add([]byte(`{"device_id":42,"offered_features":5100273664,"queues":[{"max":16}],"device":{"seq":7}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s mmio.State
		if json.Unmarshal(b, &s) != nil {
			return
		}
		r := newSeqRig(virtiotest.NewMemory(0x10000))
		defer r.tr.Close()
		if err := r.tr.Restore(s); err != nil {
			return
		}
		r.tr.Pause()
		if _, err := r.tr.State(); err != nil {
			t.Fatalf("restored state %s cannot be saved again: %v", b, err)
		}
	})
}
