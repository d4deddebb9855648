package snapshot

import (
	"bufio"
	"hash/crc32"
	"io"
)

// Writer writes a state file: the preamble and header at NewWriter, one
// record per Section or Raw, the end record at Close. Its errors are sticky:
// after the first, nothing more is written and every later call (Close
// included) returns it, so a nil error from Close means every section is in
// the file. A Writer refuses to write anything Read would refuse.
type Writer struct {
	w      *bufio.Writer
	crc    uint32 // CRC32C of every byte written so far
	names  map[string]bool
	total  int // section payload bytes so far
	err    error
	closed bool
}

// NewWriter starts a state file on w with header h. An invalid header (an
// empty version or profile, a configuration encoding/json refuses, a bad
// memory layout) is returned by the first Section, Raw or Close, and nothing
// is written. The Writer buffers: w holds the whole file only after Close,
// which does not close w.
func NewWriter(w io.Writer, h Header) *Writer {
	hdr, err := h.encode()
	return newWriter(w, hdr, err)
}

// newWriter starts a state file whose header payload is hdr, as given.
func newWriter(w io.Writer, hdr []byte, err error) *Writer {
	sw := &Writer{w: bufio.NewWriter(w), names: map[string]bool{}, err: err}
	sw.write(preamble())
	sw.write(encodeRecord(kindHeader, JSON, "", hdr))
	return sw
}

// Section writes v, encoded by encoding/json, as the section name. Names
// are 1 to MaxNameLen bytes of [a-z0-9/._-] and unique in a file; by
// convention a layer prefixes its own ("vcpu/0", "dev/uart", "probe").
func (w *Writer) Section(name string, v any) error {
	if w.err != nil || w.closed {
		return w.fail(nil)
	}
	b, err := marshalNoHTML(v)
	if err != nil {
		return w.fail(errorf(ErrFormat, "section %q: %v", name, err))
	}
	return w.record(name, JSON, b)
}

// Raw writes b as the section name, unencoded: for large binary blobs.
// Read it back with Snapshot.Raw.
func (w *Writer) Raw(name string, b []byte) error {
	return w.record(name, Bytes, b)
}

// record validates and writes one section record.
func (w *Writer) record(name string, enc Encoding, payload []byte) error {
	if w.err != nil || w.closed {
		return w.fail(nil)
	}
	if err := checkName(name); err != nil {
		return w.fail(errorf(ErrFormat, "%v", err))
	}
	if w.names[name] {
		return w.fail(errorf(ErrDuplicate, "section %q written twice", name))
	}
	if len(w.names) >= MaxSections {
		return w.fail(errorf(ErrTooLarge, "section %q would be number %d, over %d", name, len(w.names)+1, MaxSections))
	}
	if len(payload) > MaxSectionSize {
		return w.fail(errorf(ErrTooLarge, "section %q of %d bytes is over %d", name, len(payload), MaxSectionSize))
	}
	if w.total+len(payload) > MaxStateSize {
		return w.fail(errorf(ErrTooLarge, "section %q brings the sections to %d bytes, over %d", name, w.total+len(payload), MaxStateSize))
	}
	w.names[name] = true
	w.total += len(payload)
	w.write(encodeRecord(kindSection, enc, name, payload))
	return w.err
}

// Close writes the end record and flushes. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.fail(nil)
	}
	end := make([]byte, endPayload)
	le.PutUint32(end, uint32(len(w.names)))
	le.PutUint32(end[4:], w.crc)
	w.write(encodeRecord(kindEnd, Bytes, "", end))
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = err
		}
	}
	w.closed = true
	return w.err
}

// write writes b unless an error is pending, folding it into the file CRC.
func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return
	}
	w.crc = crc32.Update(w.crc, castagno, b)
}

// fail records err as the sticky error if none is pending and returns the
// pending one (ErrClosed after a clean Close).
func (w *Writer) fail(err error) error {
	if w.err == nil {
		if err == nil && w.closed {
			return ErrClosed
		}
		w.err = err
	}
	return w.err
}
