package guestmem

import "golang.org/x/sys/unix"

// mmapAnon maps n bytes of private anonymous memory, reserved lazily: pages
// the guest never touches cost the host nothing.
func mmapAnon(n uint64) ([]byte, error) {
	return unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

func munmap(b []byte) error { return unix.Munmap(b) }
