package guestmem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincore fills vec with one residency byte per page of b (mincore(2));
// x/sys/unix has no wrapper for it.
func mincore(b, vec []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return errno
	}
	return nil
}
