// Package initramfstest reads newc cpio archives back for tests. It is a
// strict reader written apart from package initramfs, so that tests of the
// writer do not check it against itself: it rejects whatever the kernel's
// unpacker would misread, and whatever the writer promises not to produce
// (non-zero padding, checksums, stray bytes).
package initramfstest

import (
	"bytes"
	"fmt"
	"strconv"
)

// Entry is one member of an archive, with every header field decoded.
type Entry struct {
	Offset    int // offset of the header in the parsed bytes
	Ino       uint32
	Mode      uint32 // file type and permission bits, as in st_mode
	UID, GID  uint32
	Nlink     uint32
	Mtime     uint32
	DevMajor  uint32
	DevMinor  uint32
	RdevMajor uint32
	RdevMinor uint32
	Name      string
	Data      []byte // file contents, or a symlink's target
}

// File type bits of Entry.Mode.
const (
	TypeMask    = 0o170000
	TypeDir     = 0o040000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
	TypeCharDev = 0o020000
)

const (
	magic       = "070701"
	headerLen   = 110
	trailerName = "TRAILER!!!"
)

// Parse reads exactly one archive: entries up to and including the trailer,
// each at a 4-byte-aligned offset with zero padding, and nothing after the
// trailer's padding. It returns the entries before the trailer.
func Parse(b []byte) ([]Entry, error) {
	entries, end, err := parseOne(b, 0)
	if err != nil {
		return nil, err
	}
	if end != len(b) {
		return nil, fmt.Errorf("%d bytes after the trailer (archive ends at %d)", len(b)-end, end)
	}
	return entries, nil
}

// ParseAll reads archives concatenated the way the kernel accepts them: each
// starts at a 4-byte-aligned offset, and zero bytes may separate them. It
// returns the entries of each archive in order.
func ParseAll(b []byte) ([][]Entry, error) {
	var all [][]Entry
	off := 0
	for {
		for off < len(b) && b[off] == 0 {
			off++
		}
		if off == len(b) {
			break
		}
		if off%4 != 0 {
			return nil, fmt.Errorf("archive %d starts at offset %d, not a multiple of 4", len(all)+1, off)
		}
		entries, end, err := parseOne(b, off)
		if err != nil {
			return nil, fmt.Errorf("archive %d: %w", len(all)+1, err)
		}
		all = append(all, entries)
		off = end
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no archive in %d bytes", len(b))
	}
	return all, nil
}

// parseOne reads the archive starting at b[off:] and returns its entries and
// the offset just past its trailer's padding.
func parseOne(b []byte, off int) ([]Entry, int, error) {
	var entries []Entry
	for {
		e, next, err := parseEntry(b, off)
		if err != nil {
			return nil, 0, fmt.Errorf("entry %d at offset %d: %w", len(entries)+1, off, err)
		}
		if e.Name == trailerName {
			if len(e.Data) != 0 || e.Mode != 0 {
				return nil, 0, fmt.Errorf("trailer at offset %d has mode %o and %d data bytes", off, e.Mode, len(e.Data))
			}
			return entries, next, nil
		}
		entries = append(entries, e)
		off = next
	}
}

// parseEntry reads the entry at b[off:] and returns it with the offset of the
// next header.
func parseEntry(b []byte, off int) (Entry, int, error) {
	e := Entry{Offset: off}
	if off%4 != 0 {
		return e, 0, fmt.Errorf("header not 4-byte aligned")
	}
	if len(b)-off < headerLen {
		return e, 0, fmt.Errorf("truncated header: %d bytes left", len(b)-off)
	}
	h := b[off : off+headerLen]
	if string(h[:6]) != magic {
		return e, 0, fmt.Errorf("magic %q, want %q", h[:6], magic)
	}
	var fields [13]uint32
	for i := range fields {
		s := string(h[6+8*i : 14+8*i])
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			return e, 0, fmt.Errorf("field %d is %q, not 8 hex digits", i, s)
		}
		fields[i] = uint32(v)
	}
	e.Ino, e.Mode, e.UID, e.GID, e.Nlink, e.Mtime = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	size := int(fields[6])
	e.DevMajor, e.DevMinor, e.RdevMajor, e.RdevMinor = fields[7], fields[8], fields[9], fields[10]
	nameSize := int(fields[11])
	if check := fields[12]; check != 0 {
		return e, 0, fmt.Errorf("check field is %#x; newc archives carry 0", check)
	}
	if nameSize < 2 {
		return e, 0, fmt.Errorf("name size %d leaves no name", nameSize)
	}

	pos := off + headerLen
	if len(b)-pos < nameSize {
		return e, 0, fmt.Errorf("truncated name: %d of %d bytes", len(b)-pos, nameSize)
	}
	name := b[pos : pos+nameSize]
	if name[nameSize-1] != 0 {
		return e, 0, fmt.Errorf("name %q does not end with NUL", name)
	}
	if bytes.IndexByte(name[:nameSize-1], 0) >= 0 {
		return e, 0, fmt.Errorf("name %q holds a NUL before its end", name)
	}
	e.Name = string(name[:nameSize-1])
	pos, err := skipPadding(b, pos+nameSize, "name "+strconv.Quote(e.Name))
	if err != nil {
		return e, 0, err
	}

	if len(b)-pos < size {
		return e, 0, fmt.Errorf("%q: truncated data: %d of %d bytes", e.Name, len(b)-pos, size)
	}
	e.Data = b[pos : pos+size]
	pos, err = skipPadding(b, pos+size, "data of "+strconv.Quote(e.Name))
	if err != nil {
		return e, 0, err
	}
	return e, pos, nil
}

// skipPadding checks that the bytes from pos to the next multiple of 4 are
// present and zero, and returns that multiple.
func skipPadding(b []byte, pos int, what string) (int, error) {
	end := (pos + 3) &^ 3
	if end > len(b) {
		return 0, fmt.Errorf("%s: truncated padding", what)
	}
	for i := pos; i < end; i++ {
		if b[i] != 0 {
			return 0, fmt.Errorf("%s: padding byte at offset %d is %#x, not 0", what, i, b[i])
		}
	}
	return end, nil
}
