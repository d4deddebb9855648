package blk

import (
	"encoding/json"
	"fmt"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// State is the device's own part of a snapshot (issue 12). Beyond its one
// queue (saved by the transport) a block device keeps almost nothing:
// requests run to completion inside Notify, so none is in flight while the
// transport is paused. The backing file is not saved: the restoring VMM
// reopens it from its configuration, and Capacity checks that it is the
// same size. Whatever keeps the image consistent with the guest memory
// saved alongside (a copy taken while paused) is the VMM's.
type State struct {
	// Capacity is the disk's size in sectors, as the guest's driver read
	// it; restore refuses a disk of another size.
	Capacity uint64 `json:"capacity"`
	// Broken: the device met bad guest input and waits for a reset.
	Broken bool `json:"broken"`
}

// Pause implements mmio.Restorer. A block device works only in Notify,
// which the transport holds back while paused, so there is nothing to stop.
func (d *Device) Pause() {}

// Resume implements mmio.Restorer.
func (d *Device) Resume() {}

// SaveState implements mmio.Restorer.
func (d *Device) SaveState() (json.RawMessage, []*queue.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return mmio.SavedState(State{Capacity: d.disk.Capacity(), Broken: d.broken}, d.q)
}

// CheckState implements mmio.StateChecker.
func (d *Device) CheckState(raw json.RawMessage) error {
	_, err := d.checkState(raw)
	return err
}

// checkState decodes and checks a saved state against this device's disk.
func (d *Device) checkState(raw json.RawMessage) (State, error) {
	var s State
	if err := mmio.DecodeState(raw, &s); err != nil {
		return s, fmt.Errorf("virtio-blk: %w", err)
	}
	if c := d.disk.Capacity(); s.Capacity != c {
		return s, fmt.Errorf("virtio-blk: %w: disk of %d sectors, this one has %d", mmio.ErrStateMismatch, s.Capacity, c)
	}
	return s, nil
}

// RestoreState implements mmio.Restorer.
func (d *Device) RestoreState(raw json.RawMessage) error {
	s, err := d.checkState(raw)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.q != nil {
		return fmt.Errorf("virtio-blk: %w", mmio.ErrNotFresh)
	}
	d.broken = s.Broken
	return nil
}

// RestoreActive implements mmio.Restorer.
func (d *Device) RestoreActive(ctx mmio.ActivateContext, qs []*queue.Queue) error {
	if len(qs) != 1 || qs[0] == nil {
		return fmt.Errorf("virtio-blk: request queue not running")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q, d.mem, d.irq = qs[0], ctx.Mem, ctx.Interrupt
	return nil
}

var (
	_ mmio.Restorer     = (*Device)(nil)
	_ mmio.StateChecker = (*Device)(nil)
)
