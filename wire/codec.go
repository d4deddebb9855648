package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

var le = binary.LittleEndian

// Message is one probe-device message: a host command (Attach, Detach,
// StatsRequest, Inject) or a guest message (Hello, Reply, Stats, Event).
type Message interface {
	// Type is the message's hdr.type.
	Type() MsgType
	// MarshalBinary validates the message and returns its bytes, exactly
	// the C struct with hdr.len set to its size.
	MarshalBinary() ([]byte, error)
}

// newMsg returns a zeroed message of size bytes with its header filled.
func newMsg(t MsgType, size int, seq uint32) []byte {
	b := make([]byte, size)
	le.PutUint16(b[offHdrType:], uint16(t))
	le.PutUint16(b[offHdrLen:], uint16(size))
	le.PutUint32(b[offHdrSeq:], seq)
	return b
}

// strRule says how a char array holds its string.
type strRule int

const (
	nulRequired   strRule = iota // NUL-terminated: at most n-1 bytes
	nulUnlessFull                // NUL-terminated unless n bytes long
)

// checkString validates s for a char[n] field.
func checkString(field, s string, n int, rule strRule) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s %q", ErrStringNUL, field, s)
	}
	max := n
	if rule == nulRequired {
		max = n - 1
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrStringTooLong, field, len(s), max)
	}
	return nil
}

// putString writes s (already checked) into the char array at b[:n].
func putString(b []byte, s string) { copy(b, s) }

// getString reads the char array b under rule.
func getString(field string, b []byte, rule strRule) (string, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i]), nil
	}
	if rule == nulRequired {
		return "", fmt.Errorf("%w: %s", ErrNoNUL, field)
	}
	return string(b), nil
}

// Decode reads one message from b: a command or a guest message. hdr.len
// must be the size of the type's struct and at most len(b); bytes of b past
// hdr.len are ignored. The message is validated as MarshalBinary validates
// it, so Decode(m.MarshalBinary()) gives m back.
func Decode(b []byte) (Message, error) {
	if len(b) < HdrSize {
		return nil, fmt.Errorf("%w: %d bytes, a header is %d", ErrTruncated, len(b), HdrSize)
	}
	t := MsgType(le.Uint16(b[offHdrType:]))
	n := int(le.Uint16(b[offHdrLen:]))
	size, ok := sizeOf[t]
	if !ok {
		return nil, fmt.Errorf("%w: %#x", ErrUnknownType, uint16(t))
	}
	if n != size {
		return nil, fmt.Errorf("%w: %s with len %d, its size is %d", ErrLength, t, n, size)
	}
	if n > len(b) {
		return nil, fmt.Errorf("%w: %s of %d bytes in a buffer of %d", ErrTruncated, t, n, len(b))
	}
	b = b[:n]
	var m Message
	var err error
	switch t {
	case CmdAttach:
		m, err = decodeAttach(b)
	case CmdDetach:
		m = Detach{Seq: seqOf(b), ID: le.Uint32(b[offDetachID:])}
	case CmdStats:
		m = StatsRequest{Seq: seqOf(b)}
	case CmdInject:
		m, err = decodeInject(b)
	case MsgHello:
		m = Hello{Version: le.Uint32(b[offHelloVersion:]), Clock: Clock(le.Uint16(b[offHelloClock:])),
			NCPUs: le.Uint16(b[offHelloNCPUs:]), GuestNS: le.Uint64(b[offHelloGuestNS:])}
	case MsgReply:
		m = Reply{Seq: seqOf(b), Status: int32(le.Uint32(b[offReplyStatus:])), ID: le.Uint32(b[offReplyID:])}
	case MsgStats:
		m, err = decodeStats(b)
	case MsgEvent:
		m, err = decodeEvent(b)
	}
	if err != nil {
		return nil, err
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// sizeOf is each message type's struct size.
var sizeOf = map[MsgType]int{
	CmdAttach: AttachSize, CmdDetach: DetachSize, CmdStats: StatsRequestSize, CmdInject: InjectSize,
	MsgHello: HelloSize, MsgReply: ReplySize, MsgStats: StatsSize, MsgEvent: EventSize,
}

func seqOf(b []byte) uint32 { return le.Uint32(b[offHdrSeq:]) }

// validate runs m's own checks: the rules shared by Decode and MarshalBinary.
func validate(m Message) error {
	if v, ok := m.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}
