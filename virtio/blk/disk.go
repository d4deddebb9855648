package blk

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/queue"
)

// Feature bits (VIRTIO_BLK_F_*, spec 5.2.3).
const (
	VIRTIO_BLK_F_RO    = 5
	VIRTIO_BLK_F_FLUSH = 9
)

// Disk is the host side of a virtio-blk device: a raw image file.
type Disk struct {
	f        *os.File
	readOnly bool
	capacity uint64 // in 512-byte sectors
	serial   [VIRTIO_BLK_ID_BYTES]byte
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

// Features returns the device feature bits the disk offers.
func (d *Disk) Features() uint64 {
	f := uint64(1) << VIRTIO_BLK_F_FLUSH
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
	status, written := d.execute(mem, c, r)
	if err := mem.WriteAt([]byte{status}, r.Status); err != nil {
		return 0, err
	}
	return written + 1, nil
}

// execute runs a parsed request: the status to report and the data bytes
// it wrote into the guest.
func (d *Disk) execute(mem *guestmem.Memory, c *queue.Chain, r *Request) (byte, uint32) {
	switch r.Type {
	case VIRTIO_BLK_T_IN:
		if r.Bounds(d.capacity) != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		buf := make([]byte, r.DataLen)
		if _, err := d.f.ReadAt(buf, int64(r.Sector*SectorSize)); err != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		n, err := c.WriteAt(mem, buf, 0)
		if err != nil {
			return VIRTIO_BLK_S_IOERR, uint32(n)
		}
		return VIRTIO_BLK_S_OK, uint32(n)
	case VIRTIO_BLK_T_OUT:
		if d.readOnly {
			return VIRTIO_BLK_S_IOERR, 0
		}
		if r.Bounds(d.capacity) != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		buf := make([]byte, r.DataLen)
		if _, err := c.ReadAt(mem, buf, headerSize); err != nil {
			return VIRTIO_BLK_S_IOERR, 0
		}
		if _, err := d.f.WriteAt(buf, int64(r.Sector*SectorSize)); err != nil {
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
		n := min(r.DataLen, VIRTIO_BLK_ID_BYTES)
		w, err := c.WriteAt(mem, d.serial[:n], 0)
		if err != nil {
			return VIRTIO_BLK_S_IOERR, uint32(w)
		}
		return VIRTIO_BLK_S_OK, uint32(w)
	}
	return VIRTIO_BLK_S_UNSUPP, 0
}

// Config returns the device configuration space (struct virtio_blk_config
// up to blk_size; only capacity is meaningful without more features).
func (d *Disk) Config() []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint64(b[0:], d.capacity)
	binary.LittleEndian.PutUint32(b[20:], SectorSize) // blk_size, valid with VIRTIO_BLK_F_BLK_SIZE only
	return b
}
