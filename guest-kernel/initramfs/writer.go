// Package initramfs writes the cpio archives that the Linux kernel unpacks
// into its root file system at boot: the "newc" format (magic "070701").
//
// Archives are deterministic: every entry is owned by root, has mtime 0 and
// gets the next inode number in order of writing, starting at 1. Regular
// files have a link count of 1, so the kernel never hard-links two entries
// whatever their inode numbers; that also makes archives from different
// writers safe to concatenate, which the kernel accepts (see
// CommandOverlay).
package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// ErrClosed is returned by a Writer's methods once Close has been called.
var ErrClosed = errors.New("initramfs: archive already closed")

// Writer writes a newc cpio archive, one entry per call, to an io.Writer.
//
// Names are paths relative to the archive's root, such as "bin/sh": no
// leading "/", no "." or ".." components, no NUL byte, at most 4095 bytes.
// The kernel creates entries in archive order, so a directory must be added
// before anything inside it (or exist in an archive loaded earlier). A name
// may appear once per Writer.
//
// A call that rejects its arguments writes nothing and leaves the Writer
// usable. An error from the underlying io.Writer, or from the reader given to
// AddFileFrom, leaves a partial entry behind: the Writer then returns that
// error from every later call.
type Writer struct {
	w      io.Writer
	ino    uint32
	names  map[string]struct{}
	err    error
	closed bool
}

// NewWriter returns a Writer that writes an archive to w. The archive is
// complete only after Close.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, names: make(map[string]struct{})}
}

// AddDir adds a directory with the permission bits perm (such as 0o755, or
// 0o777|fs.ModeSticky for a shared temporary directory).
func (w *Writer) AddDir(name string, perm fs.FileMode) error {
	bits, err := permBits(perm)
	if err != nil {
		return fmt.Errorf("initramfs: directory %q: %w", name, err)
	}
	return w.add(name, header{mode: typeDir | bits, nlink: 2}, nil)
}

// AddFile adds a regular file holding data.
func (w *Writer) AddFile(name string, perm fs.FileMode, data []byte) error {
	return w.AddFileFrom(name, perm, int64(len(data)), bytes.NewReader(data))
}

// AddFileFrom adds a regular file of size bytes read from r, which must yield
// at least that many; bytes past size are left unread.
func (w *Writer) AddFileFrom(name string, perm fs.FileMode, size int64, r io.Reader) error {
	bits, err := permBits(perm)
	if err != nil {
		return fmt.Errorf("initramfs: file %q: %w", name, err)
	}
	if size < 0 || size > maxField {
		return fmt.Errorf("initramfs: file %q: size %d does not fit the format's 32-bit size field (at most %d bytes)",
			name, size, int64(maxField))
	}
	return w.add(name, header{mode: typeRegular | bits, nlink: 1, size: uint32(size)}, r)
}

// AddSymlink adds a symbolic link to target, which is stored as given: an
// absolute target such as "/bin/busybox" resolves inside the guest's root.
func (w *Writer) AddSymlink(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("initramfs: symlink %q: empty target", name)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("initramfs: symlink %q: target %q contains a NUL byte", name, target)
	case len(target) > pathMax:
		return fmt.Errorf("initramfs: symlink %q: target is %d bytes; the kernel skips targets longer than %d",
			name, len(target), pathMax)
	}
	h := header{mode: typeSymlink | 0o777, nlink: 1, size: uint32(len(target))}
	return w.add(name, h, strings.NewReader(target))
}

// AddCharDevice adds a character device node with the given device numbers,
// such as 5, 1 for /dev/console or 1, 3 for /dev/null.
func (w *Writer) AddCharDevice(name string, perm fs.FileMode, major, minor uint32) error {
	bits, err := permBits(perm)
	if err != nil {
		return fmt.Errorf("initramfs: device %q: %w", name, err)
	}
	if major > maxMajor || minor > maxMinor {
		return fmt.Errorf("initramfs: device %q: numbers %d:%d out of range (the kernel's dev_t holds majors up to %d and minors up to %d)",
			name, major, minor, maxMajor, maxMinor)
	}
	h := header{mode: typeCharDev | bits, nlink: 1, rdevMajor: major, rdevMinor: minor}
	return w.add(name, h, nil)
}

// Close writes the "TRAILER!!!" entry that ends the archive. It does not
// close the underlying io.Writer. The archive's length is then a multiple of
// 4 bytes, as the kernel requires of each archive followed by another.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	w.closed = true
	trailer := header{nlink: 1, nameSize: uint32(len(trailerName) + 1)}
	if err := w.writeHeader(trailerName, trailer); err != nil {
		return w.fail(err)
	}
	return nil
}

// add validates name and writes the entry for h with h.size bytes from data.
func (w *Writer) add(name string, h header, data io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if _, dup := w.names[name]; dup {
		return fmt.Errorf("initramfs: %q is already in the archive", name)
	}
	w.names[name] = struct{}{}
	w.ino++
	h.ino = w.ino
	h.nameSize = uint32(len(name) + 1)
	if err := w.writeHeader(name, h); err != nil {
		return w.fail(err)
	}
	if h.size == 0 {
		return nil
	}
	n, err := io.CopyN(w.w, data, int64(h.size))
	if err != nil {
		if n < int64(h.size) && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			err = fmt.Errorf("data ended after %d of %d bytes", n, h.size)
		}
		return w.fail(fmt.Errorf("initramfs: writing %q: %w", name, err))
	}
	if pad := padding(int64(h.size)); pad > 0 {
		if _, err := w.w.Write(make([]byte, pad)); err != nil {
			return w.fail(fmt.Errorf("initramfs: writing %q: %w", name, err))
		}
	}
	return nil
}

// writeHeader writes h, name, its NUL and the padding after them.
func (w *Writer) writeHeader(name string, h header) error {
	b := appendHeader(make([]byte, 0, headerLen+len(name)+1+align), h)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, make([]byte, padding(int64(len(b))))...)
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("initramfs: writing %q: %w", name, err)
	}
	return nil
}

// usable reports why no more entries may be written, if so.
func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// fail records err as the Writer's permanent error and returns it.
func (w *Writer) fail(err error) error {
	w.err = err
	return err
}
