package blk

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// Feature bits (VIRTIO_BLK_F_*, spec 5.2.3).
const (
	VIRTIO_BLK_F_SIZE_MAX = 1
	VIRTIO_BLK_F_SEG_MAX  = 2
	VIRTIO_BLK_F_RO       = 5
	VIRTIO_BLK_F_FLUSH    = 9
)

// Disk is the host side of a virtio-blk device: a raw image file.
type Disk struct {
	f        *os.File
	readOnly bool
	capacity uint64 // in 512-byte sectors
	serial   [VIRTIO_BLK_ID_BYTES]byte

	overLimit atomic.Uint64 // requests refused for breaking SegMax/SizeMax
}

// Open opens a raw disk image. Its size must be a whole number of sectors;
// the serial (GET_ID) is the file's base name, cut to 20 bytes.
func Open(path string, readOnly bool) (*Disk, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("--disk: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--disk: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("--disk %s: not a regular file", path)
	}
	if st.Size()%SectorSize != 0 {
		f.Close()
		return nil, fmt.Errorf("--disk %s: size %d is not a multiple of %d bytes", path, st.Size(), SectorSize)
	}
	d := &Disk{f: f, readOnly: readOnly, capacity: uint64(st.Size()) / SectorSize}
	copy(d.serial[:], st.Name())
	return d, nil
}

// Close closes the image file.
func (d *Disk) Close() error { return d.f.Close() }

// Capacity returns the disk size in 512-byte sectors.
func (d *Disk) Capacity() uint64 { return d.capacity }

// OverLimit returns how many read or write requests were answered
// VIRTIO_BLK_S_IOERR for having more than SegMax data segments or one
// longer than SizeMax.
func (d *Disk) OverLimit() uint64 { return d.overLimit.Load() }

// Features returns the device feature bits the disk offers.
func (d *Disk) Features() uint64 {
	f := uint64(1)<<VIRTIO_BLK_F_FLUSH | 1<<VIRTIO_BLK_F_SIZE_MAX | 1<<VIRTIO_BLK_F_SEG_MAX
	if d.readOnly {
		f |= 1 << VIRTIO_BLK_F_RO
	}
	return f
}

// segments converts a chain's descriptors for ParseRequest.
func segments(c *queue.Chain) []Segment {
	descs := c.Descriptors()
	segs := make([]Segment, len(descs))
	for i, d := range descs {
		segs[i] = Segment{Addr: d.Addr, Len: d.Len, Write: d.Write}
	}
	return segs
}

// Handle executes one request chain and returns the bytes written into the
// chain's writable buffers (data and status byte). An error means the
// request's shape was invalid: the device then needs a reset. I/O failures
// and unsupported requests are answered in the status byte instead.
func (d *Disk) Handle(mem *guestmem.Memory, c *queue.Chain) (uint32, error) {
	var h [headerSize]byte
	if _, err := c.ReadAt(mem, h[:], 0); err != nil {
		return 0, fmt.Errorf("virtio-blk: reading the request header: %w", err)
	}
	r, err := ParseRequest(segments(c), h)
	if err != nil {
		return 0, err
	}
	status, written := d.execute(mem, r)
	if err := mem.WriteAt([]byte{status}, r.Status); err != nil {
		return 0, err
	}
	return written + 1, nil
}

// execute runs a parsed request: the status to report and the data bytes
// it wrote into the guest.
func (d *Disk) execute(mem *guestmem.Memory, r *Request) (byte, uint32) {
	switch r.Type {
	case VIRTIO_BLK_T_IN:
		if !d.admit(r) {
			return VIRTIO_BLK_S_IOERR, 0
		}
		n, err := d.transfer(mem, r, true)
		if err != nil {
			return VIRTIO_BLK_S_IOERR, uint32(n)
		}
		return VIRTIO_BLK_S_OK, uint32(n)
	case VIRTIO_BLK_T_OUT:
		if d.readOnly || !d.admit(r) {
			return VIRTIO_BLK_S_IOERR, 0
		}
		if _, err := d.transfer(mem, r, false); err != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		return VIRTIO_BLK_S_OK, 0
	case VIRTIO_BLK_T_FLUSH:
		if d.readOnly {
			return VIRTIO_BLK_S_OK, 0
		}
		if d.f.Sync() != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		return VIRTIO_BLK_S_OK, 0
	case VIRTIO_BLK_T_GET_ID:
		var w uint32
		id := d.serial[:]
		for _, s := range r.Data {
			if len(id) == 0 {
				break
			}
			k := min(uint32(len(id)), s.Len)
			if mem.WriteAt(id[:k], s.Addr) != nil {
				return VIRTIO_BLK_S_IOERR, w
			}
			id, w = id[k:], w+k
		}
		return VIRTIO_BLK_S_OK, w
	}
	return VIRTIO_BLK_S_UNSUPP, 0
}

// admit checks a read or write against the disk's end and the advertised
// request limits. A request beyond SegMax or SizeMax is answered IOERR and
// counted, not treated as a malformed chain: its shape is valid, only too
// big, and DEVICE_NEEDS_RESET would take the whole disk from the guest for
// one request a conforming driver never sends. The limits hold whether or
// not the driver accepted the features: they bound the host's work per
// request, which the guest does not get to choose.
func (d *Disk) admit(r *Request) bool {
	if r.Limits() != nil {
		d.overLimit.Add(1)
		return false
	}
	return r.Bounds(d.capacity) == nil
}

// transfer moves a read's or write's data between the image file and guest
// RAM segment by segment, with pread/pwrite straight on a bounded view of
// each guest buffer: nothing is allocated or copied in between, so the
// host's memory does not grow with the request, however the guest sizes
// or aliases its buffers. toGuest reads the file into the guest. It
// returns the bytes moved before any error.
func (d *Disk) transfer(mem *guestmem.Memory, r *Request, toGuest bool) (uint64, error) {
	off := int64(r.Sector * SectorSize)
	var done uint64
	for _, s := range r.Data {
		b, err := mem.Slice(s.Addr, uint64(s.Len))
		if err != nil {
			return done, err
		}
		var n int
		if toGuest {
			n, err = d.f.ReadAt(b, off)
		} else {
			n, err = d.f.WriteAt(b, off)
		}
		done += uint64(n)
		if err != nil {
			return done, err
		}
		off += int64(n)
	}
	return done, nil
}

// Config returns the device configuration space (struct virtio_blk_config
// up to blk_size): capacity, size_max and seg_max; blk_size is filled in
// but not offered (VIRTIO_BLK_F_BLK_SIZE), so it has no meaning.
func (d *Disk) Config() []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint64(b[0:], d.capacity)
	binary.LittleEndian.PutUint32(b[8:], SizeMax)
	binary.LittleEndian.PutUint32(b[12:], SegMax)
	binary.LittleEndian.PutUint32(b[20:], SectorSize)
	return b
}
