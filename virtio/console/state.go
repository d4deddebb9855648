package console

import (
	"encoding/json"
	"fmt"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// State is the console's own part of a snapshot (issue 12): the host input
// the guest has not taken yet (at most maxPending bytes; the restored
// console delivers it as the original would have). Guest output is never
// buffered beyond the chain being written, and that runs inside Notify,
// which the transport holds back while paused. TxDropped is a host-side
// counter and starts again from zero.
type State struct {
	Pending []byte `json:"pending"`
	Broken  bool   `json:"broken"`
}

// Pause implements mmio.Restorer: host input that arrives while paused is
// held (ReadFrom still waits beyond maxPending), not delivered.
func (d *Device) Pause() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = true
}

// Resume implements mmio.Restorer: it delivers the input held meanwhile.
func (d *Device) Resume() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = false
	d.deliver()
}

// SaveState implements mmio.Restorer.
func (d *Device) SaveState() (json.RawMessage, []*queue.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return mmio.SavedState(State{Pending: d.pending, Broken: d.broken}, d.q[:]...)
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
		return s, fmt.Errorf("virtio-console: %w", err)
	}
	if len(s.Pending) > maxPending {
		return s, fmt.Errorf("virtio-console: %w: %d bytes of pending input, at most %d", mmio.ErrBadState, len(s.Pending), maxPending)
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
		return fmt.Errorf("virtio-console: %w", mmio.ErrNotFresh)
	}
	d.pending, d.broken = s.Pending, s.Broken
	d.room.Broadcast()
	return nil
}

// RestoreActive implements mmio.Restorer.
func (d *Device) RestoreActive(ctx mmio.ActivateContext, qs []*queue.Queue) error {
	if len(qs) != 2 {
		return fmt.Errorf("virtio-console: %d queues restored, want 2", len(qs))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq = [2]*queue.Queue{qs[0], qs[1]}, ctx.Mem, ctx.Interrupt
	return nil // the transport's notification of each queue delivers
}

var (
	_ mmio.Restorer     = (*Device)(nil)
	_ mmio.StateChecker = (*Device)(nil)
)
