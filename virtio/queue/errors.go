package queue

import (
	"errors"
	"fmt"
)

// Errors returned by Validate/Activate. Each names what the driver (the
// guest) configured wrongly; a transport should refuse DRIVER_OK or set
// DEVICE_NEEDS_RESET when it sees one.
var (
	// ErrNotReady: Activate was called while the driver has not set the
	// queue ready.
	ErrNotReady = errors.New("virtqueue: queue not set ready by the driver")
	// ErrQueueSize: the queue size is zero, not a power of two, or larger
	// than the device's maximum.
	ErrQueueSize = errors.New("virtqueue: queue size is zero, not a power of two, or above the maximum")
	// ErrMisaligned: the descriptor table is not 16-byte aligned, the
	// available ring not 2-byte aligned, or the used ring not 4-byte aligned.
	ErrMisaligned = errors.New("virtqueue: ring address misaligned")
	// ErrRingOutsideRAM: a ring (descriptor table, available or used ring,
	// including its event field) does not lie wholly inside one RAM region,
	// or its address plus length overflows.
	ErrRingOutsideRAM = errors.New("virtqueue: ring not wholly inside guest RAM")
	// ErrRingOverlap: the used ring (with its avail_event field) shares
	// bytes with the descriptor table or the available ring (with its
	// used_event field), so the device's used-ring writes would change
	// what the driver published.
	ErrRingOverlap = errors.New("virtqueue: used ring overlaps the descriptor table or the available ring")
	// ErrNotActivated: a ring operation was attempted on a queue that has not
	// been (re)activated since it was last configured or reset.
	ErrNotActivated = errors.New("virtqueue: queue not activated")
)

// Errors returned by Pop. All but ErrAvailIndexJump come wrapped in a
// *ChainError that carries the offending head index.
var (
	// ErrAvailIndexJump: the available ring's idx is more than the queue size
	// ahead of the device's next_avail, i.e. the driver published more
	// buffers than the ring holds (or scribbled over idx). next_avail is not
	// advanced.
	ErrAvailIndexJump = errors.New("virtqueue: available index ran ahead of next_avail by more than the queue size")
	// ErrHeadIndex: a head index read from the available ring is >= the
	// queue size.
	ErrHeadIndex = errors.New("virtqueue: descriptor head index out of range")
	// ErrNextIndex: a descriptor's next field is >= the size of the table
	// it lives in (the queue size, or the indirect table's entry count).
	ErrNextIndex = errors.New("virtqueue: descriptor next index out of range")
	// ErrChainTooLong: the chain has more descriptors than its table has
	// entries. Since every index is in range, this means the chain visits a
	// descriptor twice: a loop.
	ErrChainTooLong = errors.New("virtqueue: descriptor chain longer than its table (loop)")
	// ErrChainOverQueueSize: the chain's buffer descriptors, those of the
	// descriptor table and of its indirect table counted together, number
	// more than the queue size (spec 2.7.5.3.1). Each table alone may be
	// in bounds: a full-size direct chain ending in a full-size indirect
	// table would otherwise be twice the queue size.
	ErrChainOverQueueSize = errors.New("virtqueue: descriptor chain has more buffers than the queue size")
	// ErrLengthOverflow: the chain's buffers total more than 2^32-1 bytes.
	ErrLengthOverflow = errors.New("virtqueue: descriptor chain total length overflows uint32")
	// ErrReadableAfterWritable: a device-readable descriptor follows a
	// device-writable one (spec 2.7.4.2: readable ones come first).
	ErrReadableAfterWritable = errors.New("virtqueue: device-readable descriptor after a device-writable one")
	// ErrUnknownFlags: a descriptor sets flag bits other than NEXT, WRITE
	// and INDIRECT.
	ErrUnknownFlags = errors.New("virtqueue: descriptor has unknown flag bits")
	// ErrIndirectNotNegotiated: a descriptor sets INDIRECT but
	// VIRTIO_F_INDIRECT_DESC was not negotiated.
	ErrIndirectNotNegotiated = errors.New("virtqueue: indirect descriptor without VIRTIO_F_INDIRECT_DESC")
	// ErrNestedIndirect: a descriptor inside an indirect table sets INDIRECT.
	ErrNestedIndirect = errors.New("virtqueue: indirect descriptor inside an indirect table")
	// ErrIndirectWithNext: a descriptor sets both INDIRECT and NEXT.
	ErrIndirectWithNext = errors.New("virtqueue: descriptor sets both INDIRECT and NEXT")
	// ErrIndirectLength: an indirect table's length is zero, not a multiple
	// of 16, or holds more entries than the queue size (a chain may not be
	// longer than the queue size, spec 2.7.5.3.1).
	ErrIndirectLength = errors.New("virtqueue: indirect table length zero, not a multiple of 16, or above queue size entries")
	// ErrZeroLengthChain: the chain's buffers total zero bytes.
	ErrZeroLengthChain = errors.New("virtqueue: descriptor chain has zero total length")
	// ErrBufferOutsideRAM: a buffer or indirect table does not lie wholly
	// inside one RAM region, or its address plus length overflows.
	ErrBufferOutsideRAM = errors.New("virtqueue: buffer not wholly inside guest RAM")
)

// ErrReadableTooLong is returned by Chain.ReadAllMax for a chain with more
// readable bytes than the device accepts in one message: guest input the
// device refuses, not a malformed ring.
var ErrReadableTooLong = errors.New("virtqueue: chain's readable bytes exceed the device's limit")

// Errors returned by Chain and AddUsed helpers: these are device (VMM) bugs,
// not guest errors.
var (
	// ErrWriteBeyondBuffers: Chain.WriteAt/ReadAt would touch bytes past
	// the end of the chain's writable/readable buffers. Nothing is copied.
	ErrWriteBeyondBuffers = errors.New("virtqueue: access beyond the chain's buffers")
	// ErrChainAlreadyUsed: AddUsed was called twice for one chain.
	ErrChainAlreadyUsed = errors.New("virtqueue: chain already returned to the used ring")
	// ErrStaleChain: AddUsed was given a chain popped from another queue,
	// or from this queue before a Reset or re-activation.
	ErrStaleChain = errors.New("virtqueue: chain does not belong to this queue activation")
)

// ChainError reports a malformed descriptor chain. Err is one of the named
// errors above (errors.Is works through ChainError). Pop has already
// advanced next_avail past the offending available-ring entry; a device
// normally treats this as fatal (DEVICE_NEEDS_RESET) as the spec expects,
// but may instead carry on with the next entry.
type ChainError struct {
	// Head is the head index read from the available ring.
	Head uint16
	// Index is the descriptor index at fault, within Table.
	Index uint16
	// Indirect reports whether the fault is inside an indirect table.
	Indirect bool
	// Err is the named cause.
	Err error
}

func (e *ChainError) Error() string {
	where := "descriptor table"
	if e.Indirect {
		where = "indirect table"
	}
	return fmt.Sprintf("%v (head %d, %s index %d)", e.Err, e.Head, where, e.Index)
}

func (e *ChainError) Unwrap() error { return e.Err }
