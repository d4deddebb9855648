package wire

import "fmt"

// Event is one probe hit (TVP_MSG_EVENT, struct tvp_event). Which task is
// the subject and what the class fields (Sig, OtherPID, OtherComm, Value,
// Text) hold depends on Class; fields a class does not use are zero. The
// header's seq is 0 in events: MarshalBinary writes 0, Decode ignores it.
type Event struct {
	Probe     uint32 // the probe's id
	Class     Class
	CPU       uint16
	GuestNS   uint64 // when the handler ran, on Hello's clock
	PID       uint32 // subject's tgid
	TID       uint32 // subject's pid (thread)
	Comm      string // subject's comm, at most CommLen bytes
	Dropped   uint32 // events of this probe lost since the previous delivered one
	Flags     uint32 // EvReturn, EvClockMono
	Args      []uint64
	Sig       uint32
	OtherPID  uint32
	OtherComm string // at most CommLen bytes
	Value     uint64
	Text      string // at most TextLen bytes
}

// Type implements Message.
func (Event) Type() MsgType { return MsgEvent }

func (e Event) validate() error {
	switch {
	case !e.Class.Valid():
		return fmt.Errorf("%w: event: class %d", ErrEnum, e.Class)
	case e.Flags&^evKnown != 0:
		return fmt.Errorf("%w: event: flags %#x", ErrEnum, e.Flags)
	case len(e.Args) > MaxArgs:
		return fmt.Errorf("%w: event: %d args, at most %d", ErrCount, len(e.Args), MaxArgs)
	}
	if err := checkString("event comm", e.Comm, CommLen, nulUnlessFull); err != nil {
		return err
	}
	if err := checkString("event other_comm", e.OtherComm, CommLen, nulUnlessFull); err != nil {
		return err
	}
	return checkString("event text", e.Text, TextLen, nulUnlessFull)
}

// MarshalBinary implements Message. Args shorter than MaxArgs (nil
// included) are written padded with zeros; Decode always returns MaxArgs.
func (e Event) MarshalBinary() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b := newMsg(MsgEvent, EventSize, 0)
	le.PutUint32(b[offEventProbe:], e.Probe)
	le.PutUint16(b[offEventClass:], uint16(e.Class))
	le.PutUint16(b[offEventCPU:], e.CPU)
	le.PutUint64(b[offEventGuestNS:], e.GuestNS)
	le.PutUint32(b[offEventPID:], e.PID)
	le.PutUint32(b[offEventTID:], e.TID)
	putString(b[offEventComm:offEventComm+CommLen], e.Comm)
	le.PutUint32(b[offEventDropped:], e.Dropped)
	le.PutUint32(b[offEventFlags:], e.Flags)
	for i, a := range e.Args {
		le.PutUint64(b[offEventArgs+8*i:], a)
	}
	le.PutUint32(b[offEventSig:], e.Sig)
	le.PutUint32(b[offEventOtherPID:], e.OtherPID)
	putString(b[offEventOtherComm:offEventOtherComm+CommLen], e.OtherComm)
	le.PutUint64(b[offEventValue:], e.Value)
	putString(b[offEventText:offEventText+TextLen], e.Text)
	return b, nil
}

func decodeEvent(b []byte) (Event, error) {
	e := Event{
		Probe:    le.Uint32(b[offEventProbe:]),
		Class:    Class(le.Uint16(b[offEventClass:])),
		CPU:      le.Uint16(b[offEventCPU:]),
		GuestNS:  le.Uint64(b[offEventGuestNS:]),
		PID:      le.Uint32(b[offEventPID:]),
		TID:      le.Uint32(b[offEventTID:]),
		Dropped:  le.Uint32(b[offEventDropped:]),
		Flags:    le.Uint32(b[offEventFlags:]),
		Args:     make([]uint64, MaxArgs),
		Sig:      le.Uint32(b[offEventSig:]),
		OtherPID: le.Uint32(b[offEventOtherPID:]),
		Value:    le.Uint64(b[offEventValue:]),
	}
	for i := range e.Args {
		e.Args[i] = le.Uint64(b[offEventArgs+8*i:])
	}
	var err error
	if e.Comm, err = getString("event comm", b[offEventComm:offEventComm+CommLen], nulUnlessFull); err != nil {
		return e, err
	}
	if e.OtherComm, err = getString("event other_comm", b[offEventOtherComm:offEventOtherComm+CommLen], nulUnlessFull); err != nil {
		return e, err
	}
	e.Text, err = getString("event text", b[offEventText:offEventText+TextLen], nulUnlessFull)
	return e, err
}
