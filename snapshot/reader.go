package snapshot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// Snapshot is a state file that passed every check of Read (or Inspect).
type Snapshot struct {
	// Info is the header.
	Info Info

	header   []byte // the header record's payload, as read
	sections []section
	index    map[string]int
	used     map[string]bool
}

type section struct {
	name    string
	enc     Encoding
	payload []byte
}

// SectionInfo describes one section of a snapshot.
type SectionInfo struct {
	// Name is the section's name.
	Name string
	// Encoding is how its payload is encoded.
	Encoding Encoding
	// Size is its payload's length in bytes.
	Size int
}

// Read reads a whole state file from r, verifies all of it (see the package
// doc) and then that it was taken by the VMM version, on the host profile
// and with the configuration e expects. It returns a Snapshot only if every
// check passed; otherwise an error wrapping one of ErrFormat, ErrVersion,
// ErrChecksum, ErrTruncated, ErrTooLarge, ErrDuplicate or ErrMismatch (a
// *MismatchError), or r's own read error.
func Read(r io.Reader, e Expect) (*Snapshot, error) {
	s, err := Inspect(r)
	if err != nil {
		return nil, err
	}
	if err := e.check(s.Info); err != nil {
		return nil, err
	}
	return s, nil
}

// Inspect is Read without the expectations: every check of the file itself,
// for tools that list or compare snapshots. Restore must use Read.
func Inspect(r io.Reader) (*Snapshot, error) {
	p := &parser{r: bufio.NewReader(r)}
	s, err := p.parse()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Names returns the sections' names in file order.
func (s *Snapshot) Names() []string {
	names := make([]string, len(s.sections))
	for i, sec := range s.sections {
		names[i] = sec.name
	}
	return names
}

// Sections describes the sections in file order.
func (s *Snapshot) Sections() []SectionInfo {
	out := make([]SectionInfo, len(s.sections))
	for i, sec := range s.sections {
		out[i] = SectionInfo{Name: sec.name, Encoding: sec.enc, Size: len(sec.payload)}
	}
	return out
}

// Section decodes the JSON section name into v (a pointer), refusing
// unknown fields: ErrNoSection if the snapshot has no such section,
// ErrDecode if it does not fit v or holds raw bytes. Decode every section
// before applying any, so a refused one leaves nothing half-restored.
func (s *Snapshot) Section(name string, v any) error {
	sec, err := s.lookup(name, JSON)
	if err != nil {
		return err
	}
	if err := strictUnmarshal(sec.payload, v); err != nil {
		return errorf(ErrDecode, "section %q into %T: %v", name, v, err)
	}
	s.used[name] = true
	return nil
}

// Raw returns a copy of the raw-bytes section name: ErrNoSection if the
// snapshot has no such section, ErrDecode if it holds JSON.
func (s *Snapshot) Raw(name string) ([]byte, error) {
	sec, err := s.lookup(name, Bytes)
	if err != nil {
		return nil, err
	}
	s.used[name] = true
	return bytes.Clone(sec.payload), nil
}

// Unused returns, in file order, the sections that no Section or Raw call
// has read: state that a restore about to start would drop (a device this
// configuration lacks, a newer layer), which the caller should refuse.
func (s *Snapshot) Unused() []string {
	var out []string
	for _, sec := range s.sections {
		if !s.used[sec.name] {
			out = append(out, sec.name)
		}
	}
	return out
}

func (s *Snapshot) lookup(name string, enc Encoding) (section, error) {
	i, ok := s.index[name]
	if !ok {
		return section{}, errorf(ErrNoSection, "section %q (the snapshot has %d sections)", name, len(s.sections))
	}
	sec := s.sections[i]
	if sec.enc != enc {
		return section{}, errorf(ErrDecode, "section %q holds %v, read as %v", name, sec.enc, enc)
	}
	return sec, nil
}

// parser reads one state file, counting offsets for its errors and the
// CRC32C of the records read so far for the end record.
type parser struct {
	r   *bufio.Reader
	off int64
	crc uint32
}

func (p *parser) parse() (*Snapshot, error) {
	if err := p.preamble(); err != nil {
		return nil, err
	}
	s := &Snapshot{index: map[string]int{}, used: map[string]bool{}}
	total := 0
	for n := 0; ; n++ {
		at := p.off
		rec, err := p.record(n, total)
		if err == io.EOF {
			if n == 0 {
				return nil, errorf(ErrTruncated, "file ends after the preamble, before its header")
			}
			return nil, errorf(ErrTruncated, "file ends after %d sections without its end record (an interrupted write?)", len(s.sections))
		}
		if err != nil {
			return nil, err
		}
		switch {
		case n == 0 && rec.kind != kindHeader:
			return nil, errorf(ErrFormat, "record 0 at offset %d is %q, not the header", at, rec.kind)
		case n == 0:
			if s.Info, err = decodeHeader(rec.payload); err != nil {
				return nil, err
			}
			s.header = rec.payload
		case rec.kind == kindHeader:
			return nil, errorf(ErrFormat, "record %d at offset %d is a second header", n, at)
		case rec.kind == kindSection:
			if _, dup := s.index[rec.name]; dup {
				return nil, errorf(ErrDuplicate, "record %d at offset %d: section %q appears twice", n, at, rec.name)
			}
			if len(s.sections) >= MaxSections {
				return nil, errorf(ErrTooLarge, "record %d at offset %d: more than %d sections", n, at, MaxSections)
			}
			if rec.enc == JSON && !json.Valid(rec.payload) {
				return nil, errorf(ErrFormat, "record %d at offset %d: section %q is not one JSON value", n, at, rec.name)
			}
			total += len(rec.payload)
			s.index[rec.name] = len(s.sections)
			s.sections = append(s.sections, section{rec.name, rec.enc, rec.payload})
		case rec.kind == kindEnd:
			if got := le.Uint32(rec.payload); got != uint32(len(s.sections)) {
				return nil, errorf(ErrFormat, "end record at offset %d counts %d sections, the file holds %d", at, got, len(s.sections))
			}
			if got := le.Uint32(rec.payload[4:]); got != rec.fileCRC {
				return nil, errorf(ErrChecksum, "end record at offset %d: file CRC32C %#08x, the records before it give %#08x", at, got, rec.fileCRC)
			}
			if _, err := p.r.ReadByte(); err != io.EOF {
				if err != nil {
					return nil, fmt.Errorf("snapshot: reading after the end record: %w", err)
				}
				return nil, errorf(ErrFormat, "bytes after the end record at offset %d", p.off)
			}
			return s, nil
		}
	}
}

// preamble reads and checks magic, format version and reserved bytes.
func (p *parser) preamble() error {
	b := make([]byte, preambleSize)
	n, err := io.ReadFull(p.r, b)
	p.off += int64(n)
	p.crc = crc32.Update(p.crc, castagno, b[:n])
	if m := min(n, len(Magic)); !bytes.Equal(b[:m], []byte(Magic[:m])) {
		return errorf(ErrFormat, "no snapshot magic: file starts %q, want %q", b[:m], Magic)
	}
	if err != nil {
		return p.short(err, "the preamble")
	}
	if v := le.Uint32(b[8:]); v != FormatVersion {
		return errorf(ErrVersion, "file is format version %d; this VMM reads version %d", v, FormatVersion)
	}
	if r := le.Uint32(b[12:]); r != 0 {
		return errorf(ErrFormat, "preamble's reserved word is %#x, not zero", r)
	}
	return nil
}

type record struct {
	kind    byte
	enc     Encoding
	name    string
	payload []byte
	fileCRC uint32 // CRC32C of the file before this record
}

// record reads and checks record n, whose predecessors hold total bytes of
// section payload. It returns io.EOF if the file ends cleanly before it.
func (p *parser) record(n, total int) (record, error) {
	at := p.off
	where := fmt.Sprintf("record %d at offset %d", n, at)
	head := make([]byte, recordHead)
	k, err := io.ReadFull(p.r, head)
	p.off += int64(k)
	if err == io.EOF {
		return record{}, io.EOF
	}
	if err != nil {
		return record{}, p.short(err, where)
	}
	rec := record{kind: head[0], enc: Encoding(head[1]), fileCRC: p.crc}
	nameLen, size := int(head[2]), int64(le.Uint32(head[4:]))
	if head[3] != 0 {
		return record{}, errorf(ErrFormat, "%s: reserved byte is %#02x, not zero", where, head[3])
	}
	switch rec.kind {
	case kindHeader:
		if rec.enc != JSON || nameLen != 0 {
			return record{}, errorf(ErrFormat, "%s: header with %v payload and a %d-byte name (want json, no name)", where, rec.enc, nameLen)
		}
		if size > MaxHeaderSize {
			return record{}, errorf(ErrTooLarge, "%s: header of %d bytes is over %d", where, size, MaxHeaderSize)
		}
	case kindSection:
		if rec.enc != JSON && rec.enc != Bytes {
			return record{}, errorf(ErrFormat, "%s: section payload has %v", where, rec.enc)
		}
		if nameLen > MaxNameLen {
			return record{}, errorf(ErrTooLarge, "%s: section name of %d bytes is over %d", where, nameLen, MaxNameLen)
		}
		if size > MaxSectionSize {
			return record{}, errorf(ErrTooLarge, "%s: section of %d bytes is over %d", where, size, MaxSectionSize)
		}
		if int64(total)+size > MaxStateSize {
			return record{}, errorf(ErrTooLarge, "%s: sections reach %d bytes, over %d", where, int64(total)+size, MaxStateSize)
		}
	case kindEnd:
		if rec.enc != Bytes || nameLen != 0 || size != endPayload {
			return record{}, errorf(ErrFormat, "%s: end record with %v payload of %d bytes and a %d-byte name (want %d bytes, no name)", where, rec.enc, size, nameLen, endPayload)
		}
	default:
		return record{}, errorf(ErrFormat, "%s: unknown record kind %q", where, rec.kind)
	}
	body, err := p.readN(nameLen + int(size) + crcSize)
	if err != nil {
		return record{}, p.short(err, where)
	}
	name, payload, sum := body[:nameLen], body[nameLen:len(body)-crcSize], le.Uint32(body[len(body)-crcSize:])
	if got := crc32.Update(crc32.Checksum(head, castagno), castagno, body[:len(body)-crcSize]); got != sum {
		return record{}, errorf(ErrChecksum, "%s: CRC32C %#08x, its bytes give %#08x", where, sum, got)
	}
	p.crc = crc32.Update(crc32.Update(p.crc, castagno, head), castagno, body)
	if rec.kind == kindSection {
		rec.name = string(name)
		if err := checkName(rec.name); err != nil {
			return record{}, errorf(ErrFormat, "%s: %v", where, err)
		}
	}
	rec.payload = payload
	return rec, nil
}

// readN reads exactly n bytes, growing its buffer as bytes arrive so that a
// length the file claims but does not hold costs no allocation.
func (p *parser) readN(n int) ([]byte, error) {
	const chunk = 1 << 20
	var b []byte
	for len(b) < n {
		k := min(n-len(b), chunk)
		b = slices.Grow(b, k)
		m, err := io.ReadFull(p.r, b[len(b):len(b)+k])
		b = b[:len(b)+m]
		p.off += int64(m)
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// short turns a read error inside what is being read into ErrTruncated, or
// returns a real I/O error as one.
func (p *parser) short(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(ErrTruncated, "file ends at offset %d, inside %s", p.off, what)
	}
	return fmt.Errorf("snapshot: reading %s: %w", what, err)
}
