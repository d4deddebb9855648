package wire

import "errors"

// Errors of Decode and MarshalBinary; returned wrapped with the message and
// field they concern, so test them with errors.Is.
var (
	// ErrTruncated: the buffer is shorter than a header, or than the
	// header's len.
	ErrTruncated = errors.New("wire: message truncated")
	// ErrLength: hdr.len is not the size of the message type's struct.
	ErrLength = errors.New("wire: hdr.len is not the message's size")
	// ErrUnknownType: hdr.type is no TVP_CMD_* or TVP_MSG_*.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrNoNUL: a string field that must be NUL-terminated has no NUL.
	ErrNoNUL = errors.New("wire: string not NUL-terminated")
	// ErrStringTooLong: a string does not fit its field (with its NUL
	// where one is required).
	ErrStringTooLong = errors.New("wire: string too long for its field")
	// ErrStringNUL: a string holds a NUL byte, which the C side would
	// read as its end.
	ErrStringNUL = errors.New("wire: string contains a NUL byte")
	// ErrCount: a count (nargs, npreds, stats count) is over its bound.
	ErrCount = errors.New("wire: count over its bound")
	// ErrEnum: a kind, class, register, operator, clock or flag is not
	// one the header defines.
	ErrEnum = errors.New("wire: value not defined by the header")
	// ErrField: a field breaks a rule the header states (a zero probe id,
	// a kretprobe offset, a positive reply status, ...).
	ErrField = errors.New("wire: field breaks the header's rules")
)
