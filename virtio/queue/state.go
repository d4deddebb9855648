package queue

import (
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// State is the restorable position of an activated queue (issue 12): its
// configuration, the negotiated ring features and the device's cursors. It
// is a plain JSON value; the rings themselves live in guest memory, which a
// snapshot saves apart.
//
// Chains popped and not yet returned are not part of it: a device saves
// its queues only when none is in flight (see mmio.Restorer), or accepts
// that they are lost.
type State struct {
	// MaxSize is the device's maximum size for the queue.
	MaxSize uint16 `json:"max_size"`
	// Size, DescAddr, AvailAddr and UsedAddr are the driver's set-up.
	Size      uint16 `json:"size"`
	DescAddr  uint64 `json:"desc_addr"`
	AvailAddr uint64 `json:"avail_addr"`
	UsedAddr  uint64 `json:"used_addr"`
	// EventIdx and Indirect are VIRTIO_F_EVENT_IDX and
	// VIRTIO_F_INDIRECT_DESC as negotiated.
	EventIdx bool `json:"event_idx"`
	Indirect bool `json:"indirect"`
	// NextAvail is last_avail_idx: the next available-ring entry to read.
	NextAvail uint16 `json:"next_avail"`
	// NextUsed is the used.idx the device last published.
	NextUsed uint16 `json:"next_used"`
	// SignalledUsed and SignalledValid are the EVENT_IDX interrupt
	// bookkeeping: next_used as of the last NeedsNotify, if any since
	// activation.
	SignalledUsed  uint16 `json:"signalled_used"`
	SignalledValid bool   `json:"signalled_valid"`
}

// ErrStateCursors: a State whose device has more chains popped and not
// returned (next_avail - next_used) than the queue holds: no device in a
// consistent state got there.
var ErrStateCursors = errors.New("virtqueue: restored cursors have more chains in flight than the queue size")

// ErrStateMaxSize: a State whose maximum size is not a power of two in
// [1, MaxSize].
var ErrStateMaxSize = errors.New("virtqueue: restored maximum size is not a power of two in range")

// State returns q's restorable position. It fails with ErrNotActivated
// for a queue that is not activated: only a running queue has a position
// worth keeping.
func (q *Queue) State() (State, error) {
	if !q.activated {
		return State{}, ErrNotActivated
	}
	return State{
		MaxSize: q.maxSize, Size: q.size,
		DescAddr: q.descAddr, AvailAddr: q.availAddr, UsedAddr: q.usedAddr,
		EventIdx: q.eventIdx, Indirect: q.indirect,
		NextAvail: q.nextAvail, NextUsed: q.nextUsed,
		SignalledUsed: q.signalledUsed, SignalledValid: q.signalledValid,
	}, nil
}

// FromState rebuilds an activated queue from s over mem. s is hostile
// input (a snapshot file): it is checked as Activate checks a driver's
// set-up (size, alignment, rings inside mem, no overlap), and its cursors
// may not have more than Size chains in flight. Nothing in guest memory is
// read or written.
func FromState(mem *guestmem.Memory, s State) (*Queue, error) {
	if s.MaxSize == 0 || s.MaxSize > MaxSize || s.MaxSize&(s.MaxSize-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrStateMaxSize, s.MaxSize)
	}
	q := New(s.MaxSize)
	q.SetSize(s.Size)
	q.SetDescAddr(s.DescAddr)
	q.SetAvailAddr(s.AvailAddr)
	q.SetUsedAddr(s.UsedAddr)
	q.SetEventIdx(s.EventIdx)
	q.SetIndirect(s.Indirect)
	q.SetReady(true)
	if err := q.Activate(mem); err != nil {
		return nil, err
	}
	if inFlight := s.NextAvail - s.NextUsed; inFlight > s.Size {
		return nil, fmt.Errorf("%w: next_avail %d, next_used %d, size %d", ErrStateCursors, s.NextAvail, s.NextUsed, s.Size)
	}
	q.nextAvail, q.nextUsed = s.NextAvail, s.NextUsed
	q.signalledUsed, q.signalledValid = s.SignalledUsed, s.SignalledValid
	return q, nil
}
