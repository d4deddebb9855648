package queue

import (
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Descriptor is one validated, non-empty buffer of a chain. Addr and Len are
// copies taken when the chain was parsed: [Addr, Addr+Len) was inside RAM
// then and guest RAM does not shrink.
type Descriptor struct {
	Addr  uint64
	Len   uint32
	Write bool // device-writable
}

// Chain is a descriptor chain popped from the available ring, parsed and
// validated as a whole (indirect table expanded). Zero-length descriptors
// are dropped. Readable descriptors come first, then writable ones.
type Chain struct {
	head        uint16
	descs       []Descriptor
	nReadable   int
	readableLen uint32
	writableLen uint32

	q       *Queue
	gen     uint64
	used    bool
	usedLen uint32
}

// Head is the chain's head index, the id returned in the used ring.
func (c *Chain) Head() uint16 { return c.head }

// Descriptors returns every buffer, readable ones first. Callers must not
// modify the slice.
func (c *Chain) Descriptors() []Descriptor { return c.descs }

// Readable returns the device-readable buffers.
func (c *Chain) Readable() []Descriptor { return c.descs[:c.nReadable] }

// Writable returns the device-writable buffers.
func (c *Chain) Writable() []Descriptor { return c.descs[c.nReadable:] }

// ReadableLen is the total length of the readable buffers.
func (c *Chain) ReadableLen() uint32 { return c.readableLen }

// WritableLen is the total length of the writable buffers.
func (c *Chain) WritableLen() uint32 { return c.writableLen }

// Used reports whether the chain has been returned by AddUsed, and with what
// length.
func (c *Chain) Used() (bool, uint32) { return c.used, c.usedLen }

// ReadAllMax copies all readable bytes out of guest memory, for a device
// whose messages have a known maximum size. A chain with more than max
// readable bytes is refused with ErrReadableTooLong before anything is
// allocated: the guest sizes the chain, and descriptors may alias one
// another, so only the caller's bound keeps the copy small. Devices that
// stream (block data, console output) read in chunks with ReadAt or walk
// Readable instead.
func (c *Chain) ReadAllMax(mem *guestmem.Memory, max uint32) ([]byte, error) {
	if c.readableLen > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrReadableTooLong, c.readableLen, max)
	}
	out := make([]byte, c.readableLen)
	if _, err := c.ReadAt(mem, out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadAt copies len(p) readable bytes starting at byte offset off of the
// chain's readable buffers (as if concatenated) into p. It refuses, copying
// nothing, when [off, off+len(p)) is not inside the readable bytes.
func (c *Chain) ReadAt(mem *guestmem.Memory, p []byte, off uint64) (int, error) {
	return copyChain(mem, c.Readable(), uint64(c.readableLen), p, off, false)
}

// WriteAt copies p into the chain's writable buffers (as if concatenated) at
// byte offset off. It never writes beyond them: when [off, off+len(p)) does
// not fit, it writes nothing and returns ErrWriteBeyondBuffers. It does not
// record a used length; pass the count to Queue.AddUsed.
func (c *Chain) WriteAt(mem *guestmem.Memory, p []byte, off uint64) (int, error) {
	return copyChain(mem, c.Writable(), uint64(c.writableLen), p, off, true)
}

func copyChain(mem *guestmem.Memory, ds []Descriptor, total uint64, p []byte, off uint64, write bool) (int, error) {
	n := uint64(len(p))
	if off > total || n > total-off {
		return 0, fmt.Errorf("%w: [%d, +%d) of %d bytes", ErrWriteBeyondBuffers, off, n, total)
	}
	done := 0
	for _, d := range ds {
		if len(p) == 0 {
			break
		}
		dl := uint64(d.Len)
		if off >= dl {
			off -= dl
			continue
		}
		k := min(dl-off, uint64(len(p)))
		var err error
		if write {
			err = mem.WriteAt(p[:k], d.Addr+off)
		} else {
			err = mem.ReadAt(p[:k], d.Addr+off)
		}
		if err != nil {
			return done, err
		}
		done += int(k)
		p = p[k:]
		off = 0
	}
	return done, nil
}
