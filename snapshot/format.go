package snapshot

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Magic opens every state file.
const Magic = "\x89TVSNAP\n"

// FormatVersion is the state file layout this package writes and reads.
const FormatVersion uint32 = 1

// Bounds on what a state file may claim; the reader checks each before it
// allocates or reads, the writer refuses to produce more.
const (
	// MaxHeaderSize bounds the header record's JSON.
	MaxHeaderSize = 64 << 10
	// MaxNameLen bounds a section name.
	MaxNameLen = 64
	// MaxSectionSize bounds one section's payload.
	MaxSectionSize = 64 << 20
	// MaxSections bounds the number of sections in a file.
	MaxSections = 4096
	// MaxStateSize bounds the sum of all section payloads.
	MaxStateSize = 256 << 20
	// MaxRegions bounds the RAM regions in the memory layout.
	MaxRegions = 64
)

// Encoding says how a section's payload is encoded.
type Encoding byte

const (
	// JSON: the payload is one JSON value.
	JSON Encoding = 'J'
	// Bytes: the payload is raw bytes, for large blobs (XSAVE areas, ...).
	Bytes Encoding = 'B'
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case JSON:
		return "json"
	case Bytes:
		return "bytes"
	}
	return fmt.Sprintf("encoding %#02x", byte(e))
}

// Record kinds, the first byte of a record.
const (
	kindHeader  byte = 'H'
	kindSection byte = 'S'
	kindEnd     byte = 'E'
)

const (
	preambleSize = 16
	recordHead   = 8 // kind, encoding, name length, reserved, payload length
	crcSize      = 4
	endPayload   = 8 // section count, file CRC32C
)

var (
	le       = binary.LittleEndian
	castagno = crc32.MakeTable(crc32.Castagnoli)
)

// preamble returns the 16 bytes that open a state file.
func preamble() []byte {
	b := make([]byte, preambleSize)
	copy(b, Magic)
	le.PutUint32(b[8:], FormatVersion)
	return b
}

// encodeRecord returns one record's bytes, CRC included.
func encodeRecord(kind byte, enc Encoding, name string, payload []byte) []byte {
	b := make([]byte, recordHead, recordHead+len(name)+len(payload)+crcSize)
	b[0], b[1], b[2] = kind, byte(enc), byte(len(name))
	le.PutUint32(b[4:], uint32(len(payload)))
	b = append(b, name...)
	b = append(b, payload...)
	return le.AppendUint32(b, crc32.Checksum(b, castagno))
}

// checkName reports whether name may name a section: 1 to MaxNameLen bytes
// of [a-z0-9/._-].
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("section name %q: length %d is not 1..%d", name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("section name %q: byte %#02x at %d is not one of [a-z0-9/._-]", name, c, i)
		}
	}
	return nil
}
