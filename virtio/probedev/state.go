package probedev

import (
	"encoding/json"
	"fmt"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
	"github.com/tracevisor/tracevisor/wire"
)

// State is the probe device's own part of a snapshot (issue 12): the
// commands the host sent that no loader buffer has taken yet (the restored
// device delivers them as the original would have) and the counts of
// commands delivered and messages received. Messages are handed to the
// Receiver as they are taken off the listener queue, so none is held.
// What the probe host above keeps (armed probes, ids) is its own.
type State struct {
	// Pending holds the waiting commands, oldest first: at most
	// MaxPending, each at most wire.BufSize bytes.
	Pending   [][]byte `json:"pending"`
	Delivered uint64   `json:"delivered"`
	Received  uint64   `json:"received"`
	// Broken: the device met bad guest input and waits for a reset.
	Broken bool `json:"broken"`
}

// Pause implements mmio.Restorer: commands sent while paused wait, even
// with a loader buffer posted.
func (d *Device) Pause() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = true
}

// Resume implements mmio.Restorer: it delivers the commands that waited.
func (d *Device) Resume() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = false
	if !d.broken {
		d.fail(d.deliver())
	}
}

// SaveState implements mmio.Restorer.
func (d *Device) SaveState() (json.RawMessage, []*queue.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return mmio.SavedState(State{Pending: d.pending, Delivered: d.delivered, Received: d.received, Broken: d.broken}, d.q[:]...)
}

// CheckState implements mmio.StateChecker.
func (d *Device) CheckState(raw json.RawMessage) error {
	_, err := decodeState(raw)
	return err
}

// decodeState decodes and checks a saved state.
func decodeState(raw json.RawMessage) (State, error) {
	var s State
	if err := mmio.DecodeState(raw, &s); err != nil {
		return s, fmt.Errorf("probe device: %w", err)
	}
	if len(s.Pending) > MaxPending {
		return s, fmt.Errorf("probe device: %w: %d pending commands, at most %d", mmio.ErrBadState, len(s.Pending), MaxPending)
	}
	for i, c := range s.Pending {
		if len(c) > wire.BufSize {
			return s, fmt.Errorf("probe device: %w: pending command %d of %d bytes, at most %d", mmio.ErrBadState, i, len(c), wire.BufSize)
		}
	}
	return s, nil
}

// RestoreState implements mmio.Restorer.
func (d *Device) RestoreState(raw json.RawMessage) error {
	s, err := decodeState(raw)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.q != [2]*queue.Queue{} {
		return fmt.Errorf("probe device: %w", mmio.ErrNotFresh)
	}
	d.pending, d.delivered, d.received, d.broken = s.Pending, s.Delivered, s.Received, s.Broken
	return nil
}

// RestoreActive implements mmio.Restorer. The transport's notification of
// each queue then delivers and collects what waits.
func (d *Device) RestoreActive(ctx mmio.ActivateContext, qs []*queue.Queue) error {
	if len(qs) != 2 {
		return fmt.Errorf("probe device: %d queues restored, want 2", len(qs))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq = [2]*queue.Queue{qs[0], qs[1]}, ctx.Mem, ctx.Interrupt
	return nil
}

var (
	_ mmio.Restorer     = (*Device)(nil)
	_ mmio.StateChecker = (*Device)(nil)
)
