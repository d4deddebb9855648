package snapshot

import (
	"errors"
	"fmt"
)

// Errors of this package; returned wrapped with what they concern (the
// record, the section, both sides of a mismatch), so test them with
// errors.Is.
var (
	// ErrFormat: the bytes are not a well-formed state file (magic,
	// record kind or encoding, a name, reserved bytes, the header's JSON
	// or memory layout, the end record's count, bytes after the end).
	ErrFormat = errors.New("not a well-formed snapshot")
	// ErrVersion: the file's format version is not FormatVersion.
	ErrVersion = errors.New("unsupported snapshot format version")
	// ErrChecksum: a record's CRC32C, the end record's file CRC32C, the
	// configuration's SHA-256 or a memory region's CRC32C does not match.
	ErrChecksum = errors.New("snapshot checksum mismatch")
	// ErrTruncated: the file ends inside a record or before its end record.
	ErrTruncated = errors.New("snapshot truncated")
	// ErrTooLarge: a length or count is over its bound (MaxHeaderSize,
	// MaxSectionSize, MaxSections, MaxStateSize, MaxRegions).
	ErrTooLarge = errors.New("snapshot length over its bound")
	// ErrDuplicate: two sections share a name.
	ErrDuplicate = errors.New("duplicate snapshot section")
	// ErrMismatch: the snapshot was taken by another VMM version, on
	// another host profile or with another configuration; the error is a
	// *MismatchError.
	ErrMismatch = errors.New("snapshot does not match this VMM")
	// ErrNoSection: Section or Raw asked for a name the snapshot lacks.
	ErrNoSection = errors.New("no such snapshot section")
	// ErrDecode: a section does not decode into the caller's value (an
	// unknown field, a wrong type, the wrong encoding): the snapshot was
	// written with another layout of that section.
	ErrDecode = errors.New("snapshot section does not match its layout")
	// ErrMemory: the memory file does not match the recorded layout, or a
	// region handed to the writer is not page-aligned.
	ErrMemory = errors.New("snapshot memory file does not match its layout")
	// ErrClosed: the Writer was used after Close.
	ErrClosed = errors.New("snapshot writer closed")
)

// errorf returns an error reading "snapshot: <message>: <kind>" that
// errors.Is matches against kind.
func errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("snapshot: %s: %w", fmt.Sprintf(format, args...), kind)
}
