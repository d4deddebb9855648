package boot

import (
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
	"gvisor.dev/gvisor/pkg/hostarch"
)

// ErrMemoryTooSmall is returned when the kernel, or the kernel and the
// initrd, do not fit in the guest's low RAM region; the message says how
// much they need.
var ErrMemoryTooSmall = errors.New("guest memory too small")

// ErrInitrdTooLarge is returned when the initrd does not fit below the
// highest address the kernel can reach it at, however much RAM the guest
// has.
var ErrInitrdTooLarge = errors.New("initrd too large")

// mib is one MiB.
const mib = 1 << 20

// memoryTooSmall returns ErrMemoryTooSmall saying that who (a subject with
// its verb: "kernel needs") needs the first need bytes of guest RAM.
func memoryTooSmall(who string, need uint64) error {
	return fmt.Errorf("%w: %s at least %d MiB", ErrMemoryTooSmall, who, (need+mib-1)/mib)
}

// placeInitrd returns the guest-physical address to load an initrd of size
// bytes at: the highest page-aligned address such that the whole initrd lies
// below lowEnd (the end of the RAM region at 0), below 4 GiB and at or below
// addrMax (the highest address its last byte may occupy: the kernel's
// initrd_addr_max), and starts at or above kernelEnd, the end of the memory
// the kernel occupies while it boots. Placing it high leaves the kernel's
// decompression and early allocations the most room.
//
// A size of 0 means no initrd; placeInitrd returns 0.
func placeInitrd(lowEnd, kernelEnd, size, addrMax uint64) (uint64, error) {
	if size == 0 {
		return 0, nil
	}
	top := min(lowEnd, guestmem.MMIOHoleEnd)
	ramLimited := true
	if addrMax < top-1 {
		top = addrMax + 1
		ramLimited = false
	}
	start, ok := hostarch.PageRoundUp(kernelEnd)
	if !ok || size > top || hostarch.PageRoundDown(top-size) < start {
		need := start + hostarch.MustPageRoundUp(size)
		if ok && ramLimited && need <= guestmem.MMIOHoleStart {
			return 0, memoryTooSmall("kernel and initrd need", need)
		}
		return 0, fmt.Errorf("%w: %d MiB initrd does not fit between the kernel's end at %#x and %#x",
			ErrInitrdTooLarge, (size+mib-1)/mib, kernelEnd, top)
	}
	return hostarch.PageRoundDown(top - size), nil
}
