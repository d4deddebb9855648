// Package bus dispatches guest port-I/O and MMIO accesses to the devices
// that registered the address ranges they decode.
package bus

import (
	"fmt"
	"sort"
	"sync"
)

// Device handles accesses inside the range it was registered for. offset is
// relative to the range's base; len(data) is the access width (1, 2, 4 or 8
// for port I/O and most MMIO). Read fills data; Write consumes it.
//
// Handlers run on the vCPU thread that exited and may be called from several
// vCPUs at once: a device with state guards it itself.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// ErrUnhandled is the error returned for an access no device claims.
type ErrUnhandled struct {
	Addr  uint64
	Write bool
	Len   int
}

func (e *ErrUnhandled) Error() string {
	dir := "read"
	if e.Write {
		dir = "write"
	}
	return fmt.Sprintf("unhandled %d-byte %s at %#x", e.Len, dir, e.Addr)
}

type entry struct {
	base, size uint64
	name       string
	dev        Device
}

// Bus is an address space of non-overlapping device ranges. Registration is
// expected before the vCPUs run; lookups are safe concurrently with it.
type Bus struct {
	mu      sync.RWMutex
	entries []entry // sorted by base
}

// Register claims [base, base+size) for dev. It fails on an empty or
// wrapping range and on overlap with a range already registered.
func (b *Bus) Register(name string, base, size uint64, dev Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("bus: %s: bad range [%#x, +%#x)", name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entries {
		if base < e.base+e.size && e.base < base+size {
			return fmt.Errorf("bus: %s [%#x, %#x) overlaps %s [%#x, %#x)",
				name, base, base+size, e.name, e.base, e.base+e.size)
		}
	}
	b.entries = append(b.entries, entry{base, size, name, dev})
	sort.Slice(b.entries, func(i, j int) bool { return b.entries[i].base < b.entries[j].base })
	return nil
}

// find returns the entry whose range holds all of [addr, addr+n).
func (b *Bus) find(addr uint64, n int) (entry, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.entries), func(i int) bool {
		e := b.entries[i]
		return e.base+e.size > addr
	})
	if i == len(b.entries) {
		return entry{}, false
	}
	e := b.entries[i]
	end := addr + uint64(n)
	if addr < e.base || end > e.base+e.size || end < addr {
		return entry{}, false
	}
	return e, true
}

// Read dispatches a read of len(data) bytes at addr. An unclaimed read fills
// data with 0xff, as an empty bus does, and reports ErrUnhandled.
func (b *Bus) Read(addr uint64, data []byte) error {
	e, ok := b.find(addr, len(data))
	if !ok {
		for i := range data {
			data[i] = 0xff
		}
		return &ErrUnhandled{Addr: addr, Len: len(data)}
	}
	e.dev.Read(addr-e.base, data)
	return nil
}

// Write dispatches a write of data at addr. An unclaimed write is dropped
// and reported as ErrUnhandled.
func (b *Bus) Write(addr uint64, data []byte) error {
	e, ok := b.find(addr, len(data))
	if !ok {
		return &ErrUnhandled{Addr: addr, Write: true, Len: len(data)}
	}
	e.dev.Write(addr-e.base, data)
	return nil
}
