package queue

import "github.com/tracevisor/tracevisor/guestmem"

// NeedsNotify reports whether the driver wants a used-buffer notification
// (interrupt) for what AddUsed published since the last call. Call it after
// a batch of AddUsed and interrupt when it returns true.
//
// With EVENT_IDX it applies vring_need_event(used_event, new, old): notify
// when used_event lies in [old, new), where new is next_used and old is
// next_used at the previous call (it always returns true the first time, and
// after Reset/Activate/SetNextUsed); it records new as signalled, so the
// caller must notify when it returns true. Without EVENT_IDX it returns
// whether avail.flags lacks VIRTQ_AVAIL_F_NO_INTERRUPT.
func (q *Queue) NeedsNotify(mem *guestmem.Memory) (bool, error) {
	if !q.activated {
		return false, ErrNotActivated
	}
	// Order the used.idx store before reading used_event / avail.flags.
	q.fence()
	if !q.eventIdx {
		flags, err := mem.Read16(q.availAddr)
		if err != nil {
			return false, err
		}
		return flags&AvailFNoInterrupt == 0, nil
	}
	usedEvent, err := mem.Read16(q.availAddr + ringHeader + availElemSize*uint64(q.size))
	if err != nil {
		return false, err
	}
	newIdx, old, valid := q.nextUsed, q.signalledUsed, q.signalledValid
	q.signalledUsed, q.signalledValid = newIdx, true
	if !valid {
		return true, nil
	}
	return needEvent(usedEvent, newIdx, old), nil
}

// needEvent is the spec's vring_need_event: true when event_idx is in the
// half-open window [old, new) of indices, modulo 2^16.
func needEvent(eventIdx, newIdx, old uint16) bool {
	return newIdx-eventIdx-1 < newIdx-old
}

// SetAvailEvent writes avail_event = next_avail into the used ring, asking
// the driver (with EVENT_IDX) to notify once it publishes past what the
// device has consumed. It is a no-op without EVENT_IDX.
func (q *Queue) SetAvailEvent(mem *guestmem.Memory) error {
	if !q.activated {
		return ErrNotActivated
	}
	if !q.eventIdx {
		return nil
	}
	return mem.Write16(q.usedAddr+ringHeader+usedElemSize*uint64(q.size), q.nextAvail)
}

// EnableNotification asks the driver for available-buffer notifications:
// with EVENT_IDX it sets avail_event to next_avail, otherwise it clears
// VIRTQ_USED_F_NO_NOTIFY in used.flags. It then re-reads avail.idx and
// reports whether buffers are already pending, closing the race with a
// driver that published before seeing the request: on true the device
// should Pop again rather than wait.
func (q *Queue) EnableNotification(mem *guestmem.Memory) (bool, error) {
	if !q.activated {
		return false, ErrNotActivated
	}
	if q.eventIdx {
		if err := q.SetAvailEvent(mem); err != nil {
			return false, err
		}
	} else if err := q.setUsedFlags(mem, 0); err != nil {
		return false, err
	}
	q.fence()
	n, err := q.Pending(mem)
	return n != 0, err
}

// DisableNotification tells the driver the device does not need
// available-buffer notifications (it is polling): it sets
// VIRTQ_USED_F_NO_NOTIFY without EVENT_IDX; with EVENT_IDX it does nothing
// (the device simply does not advance avail_event).
func (q *Queue) DisableNotification(mem *guestmem.Memory) error {
	if !q.activated {
		return ErrNotActivated
	}
	if q.eventIdx {
		return nil
	}
	return q.setUsedFlags(mem, UsedFNoNotify)
}

func (q *Queue) setUsedFlags(mem *guestmem.Memory, f uint16) error {
	return mem.Write16(q.usedAddr, f)
}
