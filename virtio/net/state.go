package net

import (
	"encoding/json"
	"fmt"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// State is the network device's own part of a snapshot (issue 12).
//
// Frames held for the guest (received while it had posted no buffer) are
// not saved: a network may drop frames, and the peer's protocols resend.
// The restored device counts them in Stats.RxDropRestore; the original
// delivers them on Resume. Transmission runs to completion inside Notify,
// which the transport holds back while paused, so no guest frame is in
// flight. The counters are host-side and start again from zero.
type State struct {
	// MAC is the address the guest's driver read from the config space;
	// restore refuses a device configured with another (the guest keeps
	// using the one it read: virtio-net cannot tell it of a new one).
	MAC [6]byte `json:"mac"`
	// LinkUp is the link status the guest sees.
	LinkUp bool `json:"link_up"`
	// Broken: the device met bad guest input and waits for a reset.
	Broken bool `json:"broken"`
	// Held is how many received frames waited for receive buffers; they
	// are dropped by the restore (at most MaxHeld).
	Held int `json:"held"`
}

// Pause implements mmio.Restorer: received frames are held (up to
// MaxHeld, then dropped and counted as usual), none is delivered, and no
// transmit chain is taken. A device paused before it is active (a VMM
// pauses a device it is about to restore as it creates it) holds the
// frames that arrive meanwhile for its restored queues: the host's first
// ARP request to a restored guest is not lost.
func (d *Device) Pause() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = true
}

// Resume implements mmio.Restorer: it delivers the frames held meanwhile,
// or drops them (counted as inactive) if the device has no queues.
func (d *Device) Resume() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = false
	if d.q[receiveq] == nil {
		d.st.rxDropInactive.Add(uint64(len(d.held)))
		d.held = nil
		return
	}
	d.deliverLocked()
}

// SaveState implements mmio.Restorer.
func (d *Device) SaveState() (json.RawMessage, []*queue.Queue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return mmio.SavedState(State{MAC: d.mac, LinkUp: d.linkUp, Broken: d.broken, Held: len(d.held)}, d.q[:]...)
}

// CheckState implements mmio.StateChecker.
func (d *Device) CheckState(raw json.RawMessage) error {
	_, err := d.checkState(raw)
	return err
}

// checkState decodes and checks a saved state against this device: the
// one place of State's rules.
func (d *Device) checkState(raw json.RawMessage) (State, error) {
	var s State
	if err := mmio.DecodeState(raw, &s); err != nil {
		return s, fmt.Errorf("virtio-net: %w", err)
	}
	if s.MAC != d.mac {
		return s, fmt.Errorf("virtio-net: %w: MAC %x, this device has %x", mmio.ErrStateMismatch, s.MAC, d.mac)
	}
	if s.Held < 0 || s.Held > MaxHeld {
		return s, fmt.Errorf("virtio-net: %w: %d held frames, at most %d", mmio.ErrBadState, s.Held, MaxHeld)
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
	if d.q != [2]*queue.Queue{} || d.closed {
		return fmt.Errorf("virtio-net: %w", mmio.ErrNotFresh)
	}
	d.linkUp, d.broken = s.LinkUp, s.Broken
	d.st.rxDropRestore.Add(uint64(s.Held))
	return nil
}

// RestoreActive implements mmio.Restorer.
func (d *Device) RestoreActive(ctx mmio.ActivateContext, qs []*queue.Queue) error {
	if len(qs) != 2 {
		return fmt.Errorf("virtio-net: %d queues restored, want 2", len(qs))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("virtio-net: device closed")
	}
	d.q, d.mem, d.irq = [2]*queue.Queue{qs[0], qs[1]}, ctx.Mem, ctx.Interrupt
	return nil
}

var (
	_ mmio.Restorer     = (*Device)(nil)
	_ mmio.StateChecker = (*Device)(nil)
)
