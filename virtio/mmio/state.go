package mmio

// Snapshot and restore of a transport and its device (issue 12).
//
// Saving: Pause (no notification reaches the device, the device stops
// moving buffers), State, write the snapshot (guest memory too, while still
// paused), then Resume. Restoring: build the same Device and a New
// Transport over the restored memory, Check the saved state (a VMM checks
// every layer's state before it restores any), then Restore before any vCPU
// runs, or RestorePaused and Resume once every layer is restored.
// Restore re-activates an active device without the guest's negotiation
// (Restorer.RestoreActive gets its queues at their saved positions) and
// then notifies each of its ready queues once, as the driver would: a
// notification held back by the pause, or in flight when it began, is
// not lost, and a device with nothing to do does nothing.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/tracevisor/tracevisor/virtio/queue"
)

// Restorer is the part of the Device contract that snapshot and restore
// need; a Transport whose device lacks it cannot be saved or restored. The
// transport serialises these calls with the others (never two at once)
// and makes none of them while a Notify runs.
type Restorer interface {
	// Pause stops the device's own work on its queues: from its return
	// until Resume it pops and returns no buffer and raises no used-buffer
	// interrupt. Host input arriving meanwhile is held, within the
	// device's usual bounds, for Resume. The transport delivers no Notify
	// while paused.
	Pause()
	// Resume ends Pause and delivers what was held.
	Resume()
	// SaveState, called while paused, returns the device's own state as
	// one JSON value and, while the device is active, the queues it runs,
	// indexed like QueueMaxSizes (nil where it runs none; a nil slice when
	// not active). The transport takes each queue's State.
	SaveState() (state json.RawMessage, queues []*queue.Queue, err error)
	// RestoreState gives a new device, never activated, its own state
	// back. state is hostile input (a snapshot file): decode it with
	// DecodeState and check it as the device checks guest input.
	RestoreState(state json.RawMessage) error
	// RestoreActive starts a device that was active when saved, after
	// RestoreState: as Activate does, but with queues (rebuilt at their
	// saved positions and checked against guest memory; nil where the
	// device ran none) instead of ctx.OpenQueues, and without touching the
	// rings. ctx is what Activate got: the negotiated features, the queue
	// configurations, guest memory and the transport as Interrupt.
	RestoreActive(ctx ActivateContext, queues []*queue.Queue) error
}

// SavedState is what a device's SaveState returns for its own state v and
// the queues it runs (nil where it runs none): v as JSON, and the queues
// while the device is active (any of them non-nil), else a nil slice.
func SavedState(v any, queues ...*queue.Queue) (json.RawMessage, []*queue.Queue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	for _, q := range queues {
		if q != nil {
			return b, queues, nil
		}
	}
	return b, nil, nil
}

// StateChecker is implemented by a Restorer that can check its saved state
// without taking it: CheckState refuses exactly what RestoreState would
// refuse of the state itself (another configuration, a malformed or
// out-of-bounds state) and changes nothing. Transport.Check uses it.
type StateChecker interface {
	CheckState(state json.RawMessage) error
}

// Errors of State and Restore.
var (
	// ErrNotPaused: State without Pause first.
	ErrNotPaused = errors.New("virtio-mmio: transport not paused for a snapshot")
	// ErrNotRestorable: the device does not implement Restorer.
	ErrNotRestorable = errors.New("virtio-mmio: device cannot be snapshotted")
	// ErrNotFresh: Restore on a transport the driver has already used.
	ErrNotFresh = errors.New("virtio-mmio: restore into a transport already in use")
	// ErrStateMismatch: the saved state is of another device or another
	// configuration of it (device ID, offered features, queues).
	ErrStateMismatch = errors.New("virtio-mmio: saved state is of another device or configuration")
	// ErrBadState: the saved state is not one the transport or device can
	// be in (illegal status bits, a queue set up against the rules,
	// malformed device state).
	ErrBadState = errors.New("virtio-mmio: saved state is not a reachable device state")
)

// State is everything of a transport the driver can observe, plus, for an
// active device, the positions of its queues and the device's own state. It
// is a plain JSON value.
type State struct {
	// DeviceID and OfferedFeatures identify the device and configuration
	// it was saved from; Restore refuses any other.
	DeviceID        uint32 `json:"device_id"`
	OfferedFeatures uint64 `json:"offered_features"`
	// Status is the driver-written status (FAILED included, NEEDS_RESET
	// apart).
	Status     uint32 `json:"status"`
	NeedsReset bool   `json:"needs_reset"`
	// DriverOK: DRIVER_OK was set (interrupts may be raised). Active: the
	// device was activated and not reset since.
	DriverOK bool `json:"driver_ok"`
	Active   bool `json:"active"`

	DeviceFeaturesSel uint32 `json:"device_features_sel"`
	DriverFeaturesSel uint32 `json:"driver_features_sel"`
	DriverFeatures    uint64 `json:"driver_features"`
	QueueSel          uint32 `json:"queue_sel"`
	ShmSel            uint32 `json:"shm_sel"`

	InterruptStatus  uint32 `json:"interrupt_status"`
	ConfigGeneration uint32 `json:"config_generation"`

	// Queues holds one entry per device queue.
	Queues []QueueState `json:"queues"`
	// Device is the device's own state (Restorer.SaveState).
	Device json.RawMessage `json:"device"`
}

// QueueState is one queue's registers and, where the active device runs
// the queue, its position.
type QueueState struct {
	Max    uint16 `json:"max"`
	Size   uint16 `json:"size"`
	Ready  bool   `json:"ready"`
	Desc   uint64 `json:"desc"`
	Driver uint64 `json:"driver"`
	Device uint64 `json:"device"`
	// Ring is the device's position in the queue, for an active device.
	Ring *queue.State `json:"ring,omitempty"`
}

// DecodeState decodes a device's saved state into v: exactly one JSON
// value, not null, with no field v lacks (the snapshot reader's rule for
// the sections around it). Errors wrap ErrBadState.
func DecodeState(raw json.RawMessage, v any) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return fmt.Errorf("%w: no device state", ErrBadState)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: device state: %v", ErrBadState, err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return fmt.Errorf("%w: device state: data after the value", ErrBadState)
	}
	return nil
}

// Pause stops the transport for a snapshot: it waits for a Notify in
// flight, holds back notifications from then on (the vCPUs should be
// paused already, but a device's worker may still have some) and pauses
// the device (Restorer.Pause). Resume undoes it. Safe to call twice.
func (t *Transport) Pause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pauseLocked()
}

// pauseLocked is Pause with mu held.
func (t *Transport) pauseLocked() {
	if t.paused {
		return
	}
	t.paused = true
	t.ntf.pause()
	if r, ok := t.dev.(Restorer); ok {
		r.Pause()
	}
}

// Resume ends Pause: the device resumes and gets the notifications held
// back meanwhile, each queue's once.
func (t *Transport) Resume() {
	t.mu.Lock()
	ds := t.resumeLocked()
	t.mu.Unlock()
	for _, d := range ds {
		t.deliver(d)
	}
}

// resumeLocked ends a pause with mu held and returns the deliveries to
// run once mu is dropped.
func (t *Transport) resumeLocked() []delivery {
	if !t.paused {
		return nil
	}
	t.paused = false
	if r, ok := t.dev.(Restorer); ok {
		r.Resume()
	}
	return t.ntf.resume()
}

// State returns the transport's and its device's state. The transport must
// be paused (ErrNotPaused) and its device a Restorer (ErrNotRestorable).
func (t *Transport) State() (State, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.paused {
		return State{}, ErrNotPaused
	}
	r, ok := t.dev.(Restorer)
	if !ok {
		return State{}, fmt.Errorf("%w: %T", ErrNotRestorable, t.dev)
	}
	s := State{
		DeviceID: t.dev.DeviceID(), OfferedFeatures: t.offered,
		Status:            t.status,
		DeviceFeaturesSel: t.devFeatSel, DriverFeaturesSel: t.drvFeatSel,
		DriverFeatures: t.drvFeat, QueueSel: t.queueSel, ShmSel: t.shmSel,
	}
	t.irqMu.Lock()
	s.NeedsReset, s.DriverOK, s.Active = t.needsReset, t.driverOK, t.active
	s.InterruptStatus, s.ConfigGeneration = t.isr, t.generation
	t.irqMu.Unlock()

	dev, qs, err := r.SaveState()
	if err != nil {
		return State{}, fmt.Errorf("virtio-mmio: saving device state: %w", err)
	}
	if len(qs) != 0 && (!s.Active || len(qs) != len(t.queues)) {
		return State{}, fmt.Errorf("virtio-mmio: device reports %d queues of %d, active %v", len(qs), len(t.queues), s.Active)
	}
	s.Device = dev
	for i, q := range t.queues {
		qs0 := QueueState{Max: q.max, Size: q.cfg.Size, Ready: q.cfg.Ready,
			Desc: q.cfg.Desc, Driver: q.cfg.Driver, Device: q.cfg.Device}
		if len(qs) != 0 && qs[i] != nil {
			rs, err := qs[i].State()
			if err != nil {
				return State{}, fmt.Errorf("virtio-mmio: queue %d: %w", i, err)
			}
			qs0.Ring = &rs
		}
		s.Queues = append(s.Queues, qs0)
	}
	return s, nil
}

// Restore puts a new transport (and its new device, built with the same
// configuration) in state s, checking all of s first: another device or
// configuration is ErrStateMismatch, a state no driver could have reached
// (status bits out of sequence, a ready queue of a bad size, a ring outside
// guest memory, ...) ErrBadState or the queue package's error, a transport
// already in use ErrNotFresh. The interrupt line is driven to the saved
// InterruptStatus (an edge the guest may have had already: a driver reads
// InterruptStatus and copes; a lost one would stall it). An active device
// is re-activated through Restorer.RestoreActive and then each queue it
// runs is notified once. If the device refuses its state, the transport and
// device are left reset, and the error returned.
func (t *Transport) Restore(s State) error {
	return t.restore(s, false)
}

// RestorePaused is Restore into a paused transport: the device is paused
// (Restorer.Pause) before it is re-activated, and the one notification of
// each queue it runs is held, as Pause holds notifications, until Resume.
// A VMM restoring several layers restores each one paused and resumes them
// together once all are in place, so no device runs on a half-restored
// machine. A refused state leaves the transport reset and not paused.
func (t *Transport) RestorePaused(s State) error {
	return t.restore(s, true)
}

func (t *Transport) restore(s State, paused bool) error {
	t.mu.Lock()
	ds, err := t.restoreLocked(s, paused)
	t.mu.Unlock()
	for _, d := range ds {
		t.deliver(d)
	}
	return err
}

// Check reports whether Restore would accept s on this transport, and
// changes nothing: the transport's checks (device, configuration, status,
// queue registers), each running queue's ring against guest memory, and
// the device's own state where the device is a StateChecker. It does not
// check that the transport is fresh.
func (t *Transport) Check(s State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.checkAll(s)
	return err
}

// checkAll checks s whole and returns the queues rebuilt at their saved
// positions (nil where the device runs none). Called with mu held.
func (t *Transport) checkAll(s State) ([]*queue.Queue, error) {
	if _, ok := t.dev.(Restorer); !ok {
		return nil, fmt.Errorf("%w: %T", ErrNotRestorable, t.dev)
	}
	if err := t.checkState(s); err != nil {
		return nil, err
	}
	rings := make([]*queue.Queue, len(t.queues))
	for i, qs := range s.Queues {
		if qs.Ring == nil {
			continue
		}
		q, err := t.restoreRing(s, qs)
		if err != nil {
			return nil, fmt.Errorf("virtio-mmio: queue %d: %w", i, err)
		}
		rings[i] = q
	}
	if c, ok := t.dev.(StateChecker); ok {
		if err := c.CheckState(s.Device); err != nil {
			return nil, err
		}
	}
	return rings, nil
}

func (t *Transport) restoreLocked(s State, paused bool) ([]delivery, error) {
	r, ok := t.dev.(Restorer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrNotRestorable, t.dev)
	}
	t.irqMu.Lock()
	fresh := t.status == 0 && !t.driverOK && !t.active && !t.needsReset && !t.paused
	t.irqMu.Unlock()
	if !fresh {
		return nil, ErrNotFresh
	}
	rings, err := t.checkAll(s)
	if err != nil {
		return nil, err
	}
	if err := r.RestoreState(s.Device); err != nil {
		t.reset()
		return nil, err
	}
	if paused {
		t.pauseLocked()
	}

	t.status = s.Status
	t.devFeatSel, t.drvFeatSel, t.drvFeat = s.DeviceFeaturesSel, s.DriverFeaturesSel, s.DriverFeatures
	t.queueSel, t.shmSel = s.QueueSel, s.ShmSel
	for i, qs := range s.Queues {
		t.queues[i].cfg = QueueConfig{Size: qs.Size, Ready: qs.Ready, Desc: qs.Desc, Driver: qs.Driver, Device: qs.Device}
	}
	t.irqMu.Lock()
	t.needsReset, t.driverOK, t.active = s.NeedsReset, s.DriverOK, s.Active
	t.isr, t.generation = s.InterruptStatus, s.ConfigGeneration
	t.updateLineLocked()
	t.irqMu.Unlock()
	if !s.Active {
		return nil, nil
	}
	// As activate: active before the device starts, so that interrupts
	// from goroutines it starts are not lost.
	err = r.RestoreActive(ActivateContext{
		Features:  t.drvFeat,
		Queues:    t.queueConfigs(),
		Mem:       t.mem,
		Interrupt: t,
	}, rings)
	if err != nil {
		t.reset()
		t.resumeLocked() // nothing is pending after the reset
		return nil, fmt.Errorf("virtio-mmio: restoring the active device: %w", err)
	}
	if s.NeedsReset {
		return nil, nil
	}
	var ds []delivery
	for i, q := range rings {
		if q != nil {
			ds = append(ds, t.ntf.accept(uint32(i)))
		}
	}
	return ds, nil
}

// legalStatus holds every driver status the state machine can reach,
// FAILED aside (driverSteps' states).
func legalStatus(st uint32) bool {
	base := st &^ VIRTIO_CONFIG_S_FAILED
	if _, ok := driverSteps[base]; ok {
		return true
	}
	return base == VIRTIO_CONFIG_S_ACKNOWLEDGE|VIRTIO_CONFIG_S_DRIVER|
		VIRTIO_CONFIG_S_FEATURES_OK|VIRTIO_CONFIG_S_DRIVER_OK
}

// checkState checks s against this transport's device and the rules the
// register interface enforces. Called with mu held.
func (t *Transport) checkState(s State) error {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrStateMismatch}, args...)...)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadState}, args...)...)
	}
	if id := t.dev.DeviceID(); s.DeviceID != id {
		return mismatch("device ID %d, this device is %d", s.DeviceID, id)
	}
	if s.OfferedFeatures != t.offered {
		return mismatch("offered features %#x, this device offers %#x", s.OfferedFeatures, t.offered)
	}
	if len(s.Queues) != len(t.queues) {
		return mismatch("%d queues, this device has %d", len(s.Queues), len(t.queues))
	}
	for i, q := range s.Queues {
		if q.Max != t.queues[i].max {
			return mismatch("queue %d maximum %d, this device's is %d", i, q.Max, t.queues[i].max)
		}
	}

	st := s.Status
	switch {
	case !legalStatus(st):
		return bad("status %#x", st)
	case s.DriverOK != (st&VIRTIO_CONFIG_S_DRIVER_OK != 0):
		return bad("driver_ok %v with status %#x", s.DriverOK, st)
	case s.Active && !s.DriverOK:
		return bad("active before DRIVER_OK")
	case s.DriverOK && !s.Active && !s.NeedsReset:
		// DRIVER_OK either activated the device or set NEEDS_RESET.
		return bad("DRIVER_OK, neither active nor needing a reset")
	case s.InterruptStatus&^(VIRTIO_MMIO_INT_VRING|VIRTIO_MMIO_INT_CONFIG) != 0:
		return bad("interrupt status %#x", s.InterruptStatus)
	case s.InterruptStatus != 0 && !s.DriverOK:
		return bad("interrupt status %#x before DRIVER_OK", s.InterruptStatus)
	}
	featuresOK := st&VIRTIO_CONFIG_S_FEATURES_OK != 0
	if featuresOK {
		if extra := s.DriverFeatures &^ t.offered; extra != 0 {
			return bad("driver features %#x not offered", extra)
		}
		if s.DriverFeatures&VIRTIO_F_VERSION_1 == 0 {
			return bad("FEATURES_OK without VIRTIO_F_VERSION_1")
		}
	}
	packed := s.DriverFeatures&VIRTIO_F_RING_PACKED != 0
	for i, q := range s.Queues {
		if q.Ready {
			if !featuresOK {
				return bad("queue %d ready before FEATURES_OK", i)
			}
			if q.Size == 0 || q.Size > q.Max || (!packed && bits.OnesCount16(q.Size) != 1) {
				return bad("queue %d ready with size %d, max %d", i, q.Size, q.Max)
			}
		}
		if q.Ring != nil && (!s.Active || !q.Ready) {
			return bad("queue %d has a ring position but is not running", i)
		}
	}
	return nil
}

// restoreRing rebuilds an active device's queue from its saved position,
// which must agree with the queue's registers and the negotiated ring
// features. Called with mu held.
func (t *Transport) restoreRing(s State, qs QueueState) (*queue.Queue, error) {
	rs := *qs.Ring
	eventIdx := s.DriverFeatures&(1<<queue.VIRTIO_RING_F_EVENT_IDX) != 0
	indirect := s.DriverFeatures&(1<<queue.VIRTIO_RING_F_INDIRECT_DESC) != 0
	if rs.MaxSize != qs.Max || rs.Size != qs.Size || rs.DescAddr != qs.Desc ||
		rs.AvailAddr != qs.Driver || rs.UsedAddr != qs.Device ||
		rs.EventIdx != eventIdx || rs.Indirect != indirect {
		return nil, fmt.Errorf("%w: ring %+v disagrees with the registers %+v and features %#x",
			ErrBadState, rs, qs, s.DriverFeatures)
	}
	return queue.FromState(t.mem, rs)
}
