package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tracevisor/tracevisor/internal/guestfiles"
)

// Where the project's guest kernel and initramfs are looked for when no
// --kernel/--initrd is given: internal/guestfiles (its Dirs: the
// $TRACEVISOR_BUILD directory, the vmm executable's, ./build).
const (
	defaultKernel    = guestfiles.Kernel
	defaultInitramfs = guestfiles.Initramfs
)

// findDefault returns the first existing build-dir/rel, or an error listing
// where it looked.
func findDefault(rel, what, makeTarget string) (string, error) {
	exe, _ := os.Executable()
	p, tried := guestfiles.Find(guestfiles.Dirs(os.Getenv("TRACEVISOR_BUILD"), exe), rel)
	if p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no %s given and the project's was not found (looked at %v): run 'make %s' or pass it explicitly",
		what, tried, makeTarget)
}

// mappedFile is a file mapped read-only, so that a kernel of tens of MiB is
// copied into guest RAM without passing through the Go heap.
type mappedFile struct {
	data []byte
}

// mapFile maps path read-only. what names the file in errors ("kernel").
func mapFile(path, what string) (*mappedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", what, path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s %s: empty file", what, path)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("%s %s: mmap: %w", what, path, err)
	}
	return &mappedFile{data: b}, nil
}

func (m *mappedFile) Close() {
	if m != nil && m.data != nil {
		unix.Munmap(m.data)
		m.data = nil
	}
}
