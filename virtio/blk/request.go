// Package blk is the virtio block device (VIRTIO 1.2 section 5.2) over a raw
// host file: read, write, flush and GET_ID, with a read-only option.
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Request types (VIRTIO_BLK_T_*, <linux/virtio_blk.h>).
const (
	VIRTIO_BLK_T_IN     = 0
	VIRTIO_BLK_T_OUT    = 1
	VIRTIO_BLK_T_FLUSH  = 4
	VIRTIO_BLK_T_GET_ID = 8
)

// Request status values written in the last byte of a request.
const (
	VIRTIO_BLK_S_OK     = 0
	VIRTIO_BLK_S_IOERR  = 1
	VIRTIO_BLK_S_UNSUPP = 2
)

// SectorSize is the unit of virtio-blk sector numbers, whatever the
// device's logical block size (spec 5.2.6).
const SectorSize = 512

// VIRTIO_BLK_ID_BYTES is the length of the GET_ID answer.
const VIRTIO_BLK_ID_BYTES = 20

// headerSize is struct virtio_blk_outhdr: type, reserved (ioprio), sector.
const headerSize = 16

// Request limits, advertised in the configuration space (size_max with
// VIRTIO_BLK_F_SIZE_MAX, seg_max with VIRTIO_BLK_F_SEG_MAX). They count
// data segments (not the header or the status byte) and bound one
// request's host work whatever the guest's RAM, since descriptors may
// alias one another.
const (
	// SegMax is the most data segments in a request: the queue's
	// descriptors less the header's and the status byte's, so a
	// conforming chain always fits the queue (indirect or not).
	SegMax = QueueSize - 2
	// SizeMax is the largest data segment, in bytes: one pread or pwrite.
	SizeMax = 1 << 20
)

// ErrOverLimit: a read or write has more data segments than SegMax or one
// longer than SizeMax. Not a shape error: the device answers it with
// VIRTIO_BLK_S_IOERR and goes on.
var ErrOverLimit = errors.New("virtio-blk: request beyond the advertised seg_max or size_max")

// Segment is one guest buffer of a request, already checked to lie in RAM
// by the queue.
type Segment struct {
	Addr  uint64
	Len   uint32
	Write bool // device-writable
}

// Errors in a request's shape: what the guest driver did wrong. Each puts
// the device in DEVICE_NEEDS_RESET, as a conforming driver never sends them.
var (
	ErrChainTooShort   = errors.New("virtio-blk: request chain needs readable bytes (the header) and writable ones (the status)")
	ErrHeaderWritable  = errors.New("virtio-blk: a device-readable buffer follows a device-writable one")
	ErrHeaderShort     = errors.New("virtio-blk: request header shorter than 16 bytes")
	ErrDataDirection   = errors.New("virtio-blk: data buffers point the wrong way for the request type")
	ErrDataNotSectored = errors.New("virtio-blk: data length is not a multiple of 512")
	ErrSegmentWraps    = errors.New("virtio-blk: a buffer's address + length wraps around")
)

// Request is one parsed virtio-blk request. The header is copied out of
// guest memory once; the guest cannot change it afterwards.
type Request struct {
	Type   uint32
	Sector uint64
	// Data are the bytes between the header and the status byte:
	// device-readable for OUT, device-writable for IN and GET_ID.
	Data []Segment
	// DataLen is the total length of Data.
	DataLen uint64
	// Status is where the status byte goes.
	Status uint64
}

// ParseRequest checks the shape of a request chain and returns the typed
// request. segs are the chain's buffers in order, device-readable ones first
// (the queue guarantees it); header is a copy of the first 16 readable
// bytes. With VIRTIO_F_VERSION_1 the driver may lay buffers out as it likes
// (spec 2.7.4), so the readable bytes are read as one stream (header, then
// OUT data) and the writable ones as another (IN data, then the status byte
// last). An unknown type is not an error here: the device answers it with
// VIRTIO_BLK_S_UNSUPP.
func ParseRequest(segs []Segment, header [headerSize]byte) (*Request, error) {
	var readable, writable []Segment
	for _, s := range segs {
		if s.Len == 0 {
			continue // carries no byte: neither header, data nor status
		}
		if s.Addr+uint64(s.Len) < s.Addr {
			return nil, ErrSegmentWraps // the queue never passes one; do not trust it
		}
		if s.Write {
			writable = append(writable, s)
		} else if len(writable) > 0 {
			return nil, ErrHeaderWritable
		} else {
			readable = append(readable, s)
		}
	}
	if len(readable) == 0 || len(writable) == 0 {
		return nil, ErrChainTooShort
	}
	if total(readable) < headerSize {
		return nil, ErrHeaderShort
	}
	last := writable[len(writable)-1]
	r := &Request{
		Type:   binary.LittleEndian.Uint32(header[0:]),
		Sector: binary.LittleEndian.Uint64(header[8:]),
		Status: last.Addr + uint64(last.Len) - 1,
	}
	out := skip(readable, headerSize)
	in := trimLastByte(writable)
	switch r.Type {
	case VIRTIO_BLK_T_OUT:
		if total(in) != 0 {
			return nil, ErrDataDirection
		}
		r.Data = out
	case VIRTIO_BLK_T_IN, VIRTIO_BLK_T_GET_ID:
		if total(out) != 0 {
			return nil, ErrDataDirection
		}
		r.Data = in
	default:
		r.Data = nil
	}
	r.DataLen = total(r.Data)
	if (r.Type == VIRTIO_BLK_T_IN || r.Type == VIRTIO_BLK_T_OUT) && r.DataLen%SectorSize != 0 {
		return nil, ErrDataNotSectored
	}
	return r, nil
}

// total is the byte length of segs.
func total(segs []Segment) uint64 {
	var n uint64
	for _, s := range segs {
		n += uint64(s.Len)
	}
	return n
}

// skip returns segs without their first n bytes.
func skip(segs []Segment, n uint64) []Segment {
	var out []Segment
	for _, s := range segs {
		switch {
		case n >= uint64(s.Len):
			n -= uint64(s.Len)
		case n > 0:
			out = append(out, Segment{Addr: s.Addr + n, Len: s.Len - uint32(n), Write: s.Write})
			n = 0
		default:
			out = append(out, s)
		}
	}
	return out
}

// trimLastByte returns segs without their final byte (the status byte).
func trimLastByte(segs []Segment) []Segment {
	out := append([]Segment(nil), segs...)
	lastIdx := len(out) - 1
	if out[lastIdx].Len <= 1 {
		return out[:lastIdx]
	}
	out[lastIdx].Len--
	return out
}

// Bounds checks that the request's sectors lie on a disk of capacity
// sectors, with overflow checked.
func (r *Request) Bounds(capacity uint64) error {
	n := r.DataLen / SectorSize
	if r.Sector > capacity || n > capacity-r.Sector {
		return fmt.Errorf("virtio-blk: sectors [%d, +%d) beyond the disk's %d", r.Sector, n, capacity)
	}
	return nil
}

// Limits checks the request's data segments against SegMax and SizeMax.
func (r *Request) Limits() error {
	if len(r.Data) > SegMax {
		return fmt.Errorf("%w: %d data segments, at most %d", ErrOverLimit, len(r.Data), SegMax)
	}
	for _, s := range r.Data {
		if s.Len > SizeMax {
			return fmt.Errorf("%w: a %d-byte segment, at most %d", ErrOverLimit, s.Len, SizeMax)
		}
	}
	return nil
}
