// Package queue implements the device side of a VIRTIO 1.2 split virtqueue
// (spec section 2.7): validating the rings a driver configured, popping and
// fully validating descriptor chains, returning them through the used ring,
// and deciding whether the driver wants an interrupt.
//
// Queue holds only state (size, addresses, cursors, negotiated features);
// every ring operation takes the guest's *guestmem.Memory, the only way this
// package touches guest RAM. All guest data (indices, descriptors) is copied
// out before it is checked, so the guest changing it concurrently cannot
// make a check and a use disagree.
//
// The queue never writes the descriptor table, the available ring, or
// device-readable buffers. It writes only the used ring (elements, idx,
// flags, avail_event) and, through Chain.WriteAt, device-writable buffers.
//
// # Memory ordering
//
// The driver writes descriptors and the available-ring entry, then a write
// barrier, then avail.idx; the device must read avail.idx before the entry
// and the descriptors. Symmetrically the device writes used elements before
// used.idx, and must order its used.idx store before reading used_event or
// the avail flags (spec 2.7.10, 2.7.7.2). Guest memory is plain host memory
// that we may only touch through guestmem's copies (no unsafe, so no atomic
// loads on it). Ordering therefore comes from fence(): a sequentially
// consistent atomic read-modify-write on a Queue field. The Go compiler
// does not move memory operations across sync/atomic calls, and on amd64 it
// compiles to a LOCK-prefixed instruction, which is a full hardware barrier
// (load-load and store-store are already ordered on x86 TSO; store-load,
// needed before NeedsNotify reads used_event, is what LOCK provides). A
// vCPU exit for a queue notification is itself a full barrier on the
// guest's side.
//
// A Queue is not safe for concurrent use; the device serialises access.
package queue

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/guestmem"
)

// MaxSize is the largest split-queue size the spec allows.
const MaxSize = 32768

// Descriptor flags (spec 2.7.5).
const (
	DescFNext     uint16 = 1
	DescFWrite    uint16 = 2
	DescFIndirect uint16 = 4
	descFKnown           = DescFNext | DescFWrite | DescFIndirect
)

// Ring flags.
const (
	// AvailFNoInterrupt is set by the driver in avail.flags when it does not
	// want used-buffer notifications (ignored with EVENT_IDX).
	AvailFNoInterrupt uint16 = 1
	// UsedFNoNotify is set by the device in used.flags when it does not
	// want available-buffer notifications (ignored with EVENT_IDX).
	UsedFNoNotify uint16 = 1
)

// Ring layout constants.
const (
	descSize      = 16
	descAlign     = 16
	availAlign    = 2
	usedAlign     = 4
	ringHeader    = 4 // flags u16, idx u16
	usedElemSize  = 8
	availElemSize = 2
)

// Queue is the device-side state of one split virtqueue.
type Queue struct {
	maxSize uint16

	size      uint16
	ready     bool
	descAddr  uint64
	availAddr uint64
	usedAddr  uint64

	eventIdx bool
	indirect bool

	activated bool
	gen       uint64 // bumped on Reset and Activate; stales old Chains

	nextAvail uint16
	nextUsed  uint16

	// signalledUsed is next_used as of the last NeedsNotify that returned
	// with EVENT_IDX on; signalledValid is false until then.
	signalledUsed  uint16
	signalledValid bool

	fenceWord uint32
}

// New returns a queue whose maximum (and initial) size is maxSize, which must
// be a power of two in [1, MaxSize]; New panics otherwise (a VMM bug).
func New(maxSize uint16) *Queue {
	if maxSize == 0 || maxSize > MaxSize || maxSize&(maxSize-1) != 0 {
		panic(fmt.Sprintf("queue.New: max size %d is not a power of two in [1, %d]", maxSize, MaxSize))
	}
	q := &Queue{maxSize: maxSize}
	q.Reset()
	return q
}

// Reset returns the queue to its post-device-reset state: size = max, not
// ready, addresses 0, cursors 0, features off, not activated. Chains popped
// before Reset can no longer be returned.
func (q *Queue) Reset() {
	*q = Queue{maxSize: q.maxSize, size: q.maxSize, gen: q.gen + 1}
}

// Configuration, as the transport writes it on the driver's behalf. The
// driver must not change these while the queue is ready; any setter clears
// the activated state, so ring operations fail with ErrNotActivated until
// Activate succeeds again.

// MaxSize returns the device's maximum queue size (QueueNumMax).
func (q *Queue) MaxSize() uint16 { return q.maxSize }

// Size returns the configured queue size.
func (q *Queue) Size() uint16 { return q.size }

// SetSize records the driver's queue size; Activate validates it.
func (q *Queue) SetSize(n uint16) { q.size = n; q.activated = false }

// Ready reports whether the driver has set the queue ready.
func (q *Queue) Ready() bool { return q.ready }

// SetReady records the driver's QueueReady write. Clearing it deactivates.
func (q *Queue) SetReady(r bool) { q.ready = r; q.activated = false }

// DescAddr, AvailAddr and UsedAddr return the configured ring addresses.
func (q *Queue) DescAddr() uint64  { return q.descAddr }
func (q *Queue) AvailAddr() uint64 { return q.availAddr }
func (q *Queue) UsedAddr() uint64  { return q.usedAddr }

// SetDescAddr sets the descriptor table's guest-physical address.
func (q *Queue) SetDescAddr(a uint64) { q.descAddr = a; q.activated = false }

// SetAvailAddr sets the available ring's (driver area's) address.
func (q *Queue) SetAvailAddr(a uint64) { q.availAddr = a; q.activated = false }

// SetUsedAddr sets the used ring's (device area's) address.
func (q *Queue) SetUsedAddr(a uint64) { q.usedAddr = a; q.activated = false }

// SetEventIdx records whether VIRTIO_F_EVENT_IDX was negotiated.
func (q *Queue) SetEventIdx(on bool) { q.eventIdx = on }

// EventIdx reports whether VIRTIO_F_EVENT_IDX is on.
func (q *Queue) EventIdx() bool { return q.eventIdx }

// SetIndirect records whether VIRTIO_F_INDIRECT_DESC was negotiated.
func (q *Queue) SetIndirect(on bool) { q.indirect = on }

// Indirect reports whether VIRTIO_F_INDIRECT_DESC is on.
func (q *Queue) Indirect() bool { return q.indirect }

// NextAvail is the index of the next available-ring entry the device reads.
func (q *Queue) NextAvail() uint16 { return q.nextAvail }

// NextUsed is the index of the next used-ring entry the device writes (the
// used.idx it last published).
func (q *Queue) NextUsed() uint16 { return q.nextUsed }

// SetNextAvail and SetNextUsed set the cursors, for snapshot restore (and
// tests). They also forget the EVENT_IDX signalled-used bookkeeping, so the
// next NeedsNotify returns true.
func (q *Queue) SetNextAvail(i uint16) { q.nextAvail = i; q.signalledValid = false }
func (q *Queue) SetNextUsed(i uint16)  { q.nextUsed = i; q.signalledValid = false }

// Activated reports whether Activate succeeded since the last configuration
// change or Reset.
func (q *Queue) Activated() bool { return q.activated }

// ring sizes in bytes, including the trailing event fields.
func descTableLen(size uint16) uint64 { return descSize * uint64(size) }
func availRingLen(size uint16) uint64 { return ringHeader + availElemSize*uint64(size) + 2 }
func usedRingLen(size uint16) uint64  { return ringHeader + usedElemSize*uint64(size) + 2 }

// Validate checks the configuration against mem without changing state:
// ready, size a power of two in [1, MaxSize()], alignments 16/2/4, each
// ring (with its event field) wholly inside RAM with no address overflow,
// and the used ring clear of the descriptor table and the available ring.
func (q *Queue) Validate(mem *guestmem.Memory) error {
	if !q.ready {
		return ErrNotReady
	}
	if q.size == 0 || q.size > q.maxSize || q.size&(q.size-1) != 0 {
		return fmt.Errorf("%w: %d (max %d)", ErrQueueSize, q.size, q.maxSize)
	}
	rings := []struct {
		name  string
		addr  uint64
		len   uint64
		align uint64
	}{
		{"descriptor table", q.descAddr, descTableLen(q.size), descAlign},
		{"available ring", q.availAddr, availRingLen(q.size), availAlign},
		{"used ring", q.usedAddr, usedRingLen(q.size), usedAlign},
	}
	for _, r := range rings {
		if r.addr%r.align != 0 {
			return fmt.Errorf("%w: %s at %#x, needs %d-byte alignment", ErrMisaligned, r.name, r.addr, r.align)
		}
		if end, carry := bits.Add64(r.addr, r.len, 0); carry != 0 || !mem.Contains(r.addr, r.len) {
			return fmt.Errorf("%w: %s [%#x, %#x)", ErrRingOutsideRAM, r.name, r.addr, end)
		}
	}
	// The device writes the used ring; were it over the descriptor table
	// or the available ring, its own writes would rewrite what the driver
	// published. The driver's two areas may overlap each other: the device
	// only reads them.
	used := rings[2]
	for _, r := range rings[:2] {
		if overlap(used.addr, used.len, r.addr, r.len) {
			return fmt.Errorf("%w: used ring [%#x, +%#x) and %s [%#x, +%#x)",
				ErrRingOverlap, used.addr, used.len, r.name, r.addr, r.len)
		}
	}
	return nil
}

// overlap reports whether [a, a+alen) and [b, b+blen) share a byte. Both
// ranges are known not to wrap.
func overlap(a, alen, b, blen uint64) bool {
	return a < b+blen && b < a+alen
}

// Activate validates the configuration (see Validate) and, on success, makes
// ring operations possible. Call it when the driver sets DRIVER_OK (or
// QueueReady, per transport). Cursors are left as they are (0 after Reset).
func (q *Queue) Activate(mem *guestmem.Memory) error {
	q.activated = false
	if err := q.Validate(mem); err != nil {
		return err
	}
	q.activated = true
	q.gen++
	q.signalledValid = false
	return nil
}

// fence is a full memory barrier; see the package comment.
func (q *Queue) fence() { atomic.AddUint32(&q.fenceWord, 1) }

func (q *Queue) availIdx(mem *guestmem.Memory) (uint16, error) {
	return mem.Read16(q.availAddr + 2)
}

// Pending returns how many available-ring entries the driver has published
// that the device has not popped. It returns ErrAvailIndexJump when that is
// more than the queue size.
func (q *Queue) Pending(mem *guestmem.Memory) (uint16, error) {
	if !q.activated {
		return 0, ErrNotActivated
	}
	idx, err := q.availIdx(mem)
	if err != nil {
		return 0, err
	}
	n := idx - q.nextAvail
	if n > q.size {
		return 0, fmt.Errorf("%w: avail idx %d, next_avail %d, size %d", ErrAvailIndexJump, idx, q.nextAvail, q.size)
	}
	return n, nil
}

// Pop returns the next available descriptor chain, parsed and validated as a
// whole, or (nil, nil) when the driver has published nothing new. On success
// and on a *ChainError, next_avail advances past the entry; on
// ErrAvailIndexJump (checked on every call) or a memory error it does not.
func (q *Queue) Pop(mem *guestmem.Memory) (*Chain, error) {
	n, err := q.Pending(mem)
	if err != nil || n == 0 {
		return nil, err
	}
	// Read avail.idx before the ring entry and the descriptors it covers.
	q.fence()
	slot := uint64(q.nextAvail % q.size)
	head, err := mem.Read16(q.availAddr + ringHeader + availElemSize*slot)
	if err != nil {
		return nil, err
	}
	q.nextAvail++
	c, err := q.parseChain(mem, head)
	if err != nil {
		return nil, err
	}
	c.q, c.gen = q, q.gen
	return c, nil
}

type rawDesc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func readDesc(mem *guestmem.Memory, gpa uint64) (rawDesc, error) {
	var b [descSize]byte
	if err := mem.ReadAt(b[:], gpa); err != nil {
		return rawDesc{}, err
	}
	return rawDesc{
		addr:  binary.LittleEndian.Uint64(b[0:]),
		len:   binary.LittleEndian.Uint32(b[8:]),
		flags: binary.LittleEndian.Uint16(b[12:]),
		next:  binary.LittleEndian.Uint16(b[14:]),
	}, nil
}

// parseChain walks the chain starting at head, following at most one
// indirect table, and validates every descriptor before returning.
func (q *Queue) parseChain(mem *guestmem.Memory, head uint16) (*Chain, error) {
	c := &Chain{head: head}
	fail := func(idx uint16, indirect bool, e error) (*Chain, error) {
		return nil, &ChainError{Head: head, Index: idx, Indirect: indirect, Err: e}
	}
	if head >= q.size {
		return fail(head, false, fmt.Errorf("%w: %d >= size %d", ErrHeadIndex, head, q.size))
	}

	table := q.descAddr
	tableLen := uint32(q.size) // entries in the current table
	ttl := tableLen            // loop guard: visits left in the current table
	// budget counts the chain's buffer descriptors, direct and indirect
	// together (the indirect descriptor itself is not a buffer): spec
	// 2.7.5.3.1, a chain is no longer than the queue size.
	budget := uint32(q.size)
	inIndirect := false
	idx := head
	sawWritable := false
	var total uint64

	for {
		if ttl == 0 {
			return fail(idx, inIndirect, ErrChainTooLong)
		}
		ttl--
		d, err := readDesc(mem, table+descSize*uint64(idx))
		if err != nil {
			// Cannot happen for the validated main table, nor for an
			// indirect table checked below; kept for defence.
			return fail(idx, inIndirect, fmt.Errorf("%w: %v", ErrBufferOutsideRAM, err))
		}
		if d.flags&^descFKnown != 0 {
			return fail(idx, inIndirect, fmt.Errorf("%w: %#x", ErrUnknownFlags, d.flags))
		}

		if d.flags&DescFIndirect != 0 {
			switch {
			case !q.indirect:
				return fail(idx, inIndirect, ErrIndirectNotNegotiated)
			case inIndirect:
				return fail(idx, inIndirect, ErrNestedIndirect)
			case d.flags&DescFNext != 0:
				return fail(idx, inIndirect, ErrIndirectWithNext)
			case d.len == 0 || d.len%descSize != 0 || d.len/descSize > uint32(q.size):
				return fail(idx, inIndirect, fmt.Errorf("%w: %d bytes", ErrIndirectLength, d.len))
			}
			if !mem.Contains(d.addr, uint64(d.len)) {
				return fail(idx, inIndirect, fmt.Errorf("%w: indirect table [%#x, +%#x)", ErrBufferOutsideRAM, d.addr, d.len))
			}
			// The WRITE flag on an indirect descriptor is ignored (2.7.5.3.2).
			table = d.addr
			tableLen = d.len / descSize
			ttl = tableLen
			inIndirect = true
			idx = 0
			continue
		}

		if budget == 0 {
			return fail(idx, inIndirect, fmt.Errorf("%w: more than %d", ErrChainOverQueueSize, q.size))
		}
		budget--
		write := d.flags&DescFWrite != 0
		if write {
			sawWritable = true
		} else if sawWritable {
			return fail(idx, inIndirect, ErrReadableAfterWritable)
		}
		if d.len != 0 {
			if !mem.Contains(d.addr, uint64(d.len)) {
				return fail(idx, inIndirect, fmt.Errorf("%w: [%#x, +%#x)", ErrBufferOutsideRAM, d.addr, d.len))
			}
			total += uint64(d.len)
			if total > 0xFFFF_FFFF {
				return fail(idx, inIndirect, ErrLengthOverflow)
			}
			c.descs = append(c.descs, Descriptor{Addr: d.addr, Len: d.len, Write: write})
			if write {
				c.writableLen += d.len
			} else {
				c.readableLen += d.len
				c.nReadable++
			}
		}

		if d.flags&DescFNext == 0 {
			break
		}
		if uint32(d.next) >= tableLen {
			return fail(idx, inIndirect, fmt.Errorf("%w: %d >= %d", ErrNextIndex, d.next, tableLen))
		}
		idx = d.next
	}
	if total == 0 {
		return fail(head, false, ErrZeroLengthChain)
	}
	return c, nil
}

// AddUsed returns c to the driver through the used ring with written bytes,
// clamped to c.WritableLen() so the driver is never told the device wrote
// more than the chain's writable buffers hold, and publishes the new used
// idx. It refuses a chain returned before (ErrChainAlreadyUsed) or from
// another queue or activation (ErrStaleChain). It returns the length it
// recorded.
func (q *Queue) AddUsed(mem *guestmem.Memory, c *Chain, written uint32) (uint32, error) {
	if !q.activated {
		return 0, ErrNotActivated
	}
	if c == nil || c.q != q || c.gen != q.gen {
		return 0, ErrStaleChain
	}
	if c.used {
		return 0, ErrChainAlreadyUsed
	}
	written = min(written, c.writableLen)
	slot := uint64(q.nextUsed % q.size)
	elem := q.usedAddr + ringHeader + usedElemSize*slot
	var b [usedElemSize]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(c.head))
	binary.LittleEndian.PutUint32(b[4:], written)
	if err := mem.WriteAt(b[:], elem); err != nil {
		return 0, err
	}
	// The element must be visible before the idx that covers it.
	q.fence()
	if err := mem.Write16(q.usedAddr+2, q.nextUsed+1); err != nil {
		return 0, err
	}
	q.nextUsed++
	c.used = true
	c.usedLen = written
	return written, nil
}
