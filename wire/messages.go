package wire

import (
	"fmt"
	"syscall"
)

// Hello is sent once by the guest driver when it is ready, before it
// handles the boot commands (TVP_MSG_HELLO, struct tvp_hello). Decode does
// not check Version: the caller compares it with the Version it speaks.
type Hello struct {
	Version uint32
	Clock   Clock  // the clock of every guest_ns
	NCPUs   uint16 // the guest's CPUs
	GuestNS uint64 // the clock when sent
}

// Type implements Message.
func (Hello) Type() MsgType { return MsgHello }

func (h Hello) validate() error {
	if !h.Clock.Valid() {
		return fmt.Errorf("%w: hello: clock %d", ErrEnum, h.Clock)
	}
	return nil
}

// MarshalBinary implements Message. The header's seq is 0.
func (h Hello) MarshalBinary() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	b := newMsg(MsgHello, HelloSize, 0)
	le.PutUint32(b[offHelloVersion:], h.Version)
	le.PutUint16(b[offHelloClock:], uint16(h.Clock))
	le.PutUint16(b[offHelloNCPUs:], h.NCPUs)
	le.PutUint64(b[offHelloGuestNS:], h.GuestNS)
	return b, nil
}

// Reply answers an Attach, Detach or Inject (TVP_MSG_REPLY, struct
// tvp_reply): Seq is the command's, Status 0 or a negative Linux errno.
type Reply struct {
	Seq    uint32
	Status int32
	ID     uint32 // the probe id of an Attach or Detach; 0 for Inject
}

// Type implements Message.
func (Reply) Type() MsgType { return MsgReply }

// Err returns nil for status 0, else the errno (a syscall.Errno: the
// guest's errno values are Linux x86-64's, as the host's).
func (r Reply) Err() error {
	if r.Status == 0 {
		return nil
	}
	return syscall.Errno(-r.Status)
}

func (r Reply) validate() error {
	if r.Status > 0 {
		return fmt.Errorf("%w: reply: status %d is not 0 or a negative errno", ErrField, r.Status)
	}
	return nil
}

// MarshalBinary implements Message.
func (r Reply) MarshalBinary() ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b := newMsg(MsgReply, ReplySize, r.Seq)
	le.PutUint32(b[offReplyStatus:], uint32(r.Status))
	le.PutUint32(b[offReplyID:], r.ID)
	return b, nil
}

// Stat is one armed probe's counters (struct tvp_stat).
type Stat struct {
	ID        uint32
	Kind      Kind
	Class     Class
	Hits      uint64 // handler ran
	Delivered uint64 // events handed to the listener queue
	Filtered  uint64 // rejected by a filter
	Limited   uint64 // over the rate limit
	Dropped   uint64 // no buffer or queue space: lost
	Missed    uint64 // kprobe nmissed: another probe handler was running
}

// Stats answers a StatsRequest, in as many messages as it takes; the last
// has Last set (TVP_MSG_STATS, struct tvp_stats).
type Stats struct {
	Seq     uint32
	Last    bool
	Entries []Stat // at most StatsPerMsg
}

// Type implements Message.
func (Stats) Type() MsgType { return MsgStats }

func (s Stats) validate() error {
	if len(s.Entries) > StatsPerMsg {
		return fmt.Errorf("%w: stats: %d entries, at most %d", ErrCount, len(s.Entries), StatsPerMsg)
	}
	for i, e := range s.Entries {
		switch {
		case e.ID == 0:
			return fmt.Errorf("%w: stats entry %d: probe id 0", ErrField, i)
		case !e.Kind.Valid():
			return fmt.Errorf("%w: stats entry %d: kind %d", ErrEnum, i, e.Kind)
		case !e.Class.Valid():
			return fmt.Errorf("%w: stats entry %d: class %d", ErrEnum, i, e.Class)
		}
	}
	return nil
}

// MarshalBinary implements Message.
func (s Stats) MarshalBinary() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := newMsg(MsgStats, StatsSize, s.Seq)
	le.PutUint16(b[offStatsCount:], uint16(len(s.Entries)))
	if s.Last {
		le.PutUint16(b[offStatsLast:], 1)
	}
	for i, e := range s.Entries {
		o := b[offStatsStats+i*StatSize:]
		le.PutUint32(o[offStatID:], e.ID)
		le.PutUint16(o[offStatKind:], uint16(e.Kind))
		le.PutUint16(o[offStatClass:], uint16(e.Class))
		le.PutUint64(o[offStatHits:], e.Hits)
		le.PutUint64(o[offStatDelivered:], e.Delivered)
		le.PutUint64(o[offStatFiltered:], e.Filtered)
		le.PutUint64(o[offStatLimited:], e.Limited)
		le.PutUint64(o[offStatDropped:], e.Dropped)
		le.PutUint64(o[offStatMissed:], e.Missed)
	}
	return b, nil
}

func decodeStats(b []byte) (Stats, error) {
	s := Stats{Seq: seqOf(b)}
	count, last := int(le.Uint16(b[offStatsCount:])), le.Uint16(b[offStatsLast:])
	if count > StatsPerMsg {
		return s, fmt.Errorf("%w: stats: count %d, at most %d", ErrCount, count, StatsPerMsg)
	}
	if last > 1 {
		return s, fmt.Errorf("%w: stats: last is %d, not 0 or 1", ErrField, last)
	}
	s.Last = last == 1
	for i := 0; i < count; i++ {
		o := b[offStatsStats+i*StatSize:]
		s.Entries = append(s.Entries, Stat{
			ID: le.Uint32(o[offStatID:]), Kind: Kind(le.Uint16(o[offStatKind:])),
			Class: Class(le.Uint16(o[offStatClass:])), Hits: le.Uint64(o[offStatHits:]),
			Delivered: le.Uint64(o[offStatDelivered:]), Filtered: le.Uint64(o[offStatFiltered:]),
			Limited: le.Uint64(o[offStatLimited:]), Dropped: le.Uint64(o[offStatDropped:]),
			Missed: le.Uint64(o[offStatMissed:]),
		})
	}
	return s, nil
}
