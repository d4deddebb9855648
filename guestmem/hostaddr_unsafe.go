package guestmem

import "unsafe"

// HostAddr returns the host virtual address of the region's first byte, for
// KVM_SET_USER_MEMORY_REGION and for telling guest RAM apart in the
// process's memory map. The mapping is never moved.
func (r Region) HostAddr() uint64 {
	if len(r.Host) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&r.Host[0])))
}
