package initramfs

import (
	"fmt"
	"io/fs"
)

// The newc format ("new ASCII", magic 070701) as the kernel's initramfs
// unpacker (init/initramfs.c) reads it: a 110-byte header of thirteen
// 8-digit hexadecimal fields after the magic, the name with its NUL, zero
// padding to a multiple of 4 bytes, the data, and zero padding to a multiple
// of 4 again. See Documentation/driver-api/early-userspace/buffer-format.rst.
const (
	magic     = "070701"
	headerLen = 110
	align     = 4

	// trailerName marks the end of one archive.
	trailerName = "TRAILER!!!"

	// pathMax is the kernel's PATH_MAX: the unpacker skips entries whose
	// name (with its NUL) or symlink target is longer.
	pathMax = 4096

	// maxField is the largest value an 8-hex-digit field holds.
	maxField = 1<<32 - 1

	// Device numbers as the kernel's dev_t splits them (MKDEV).
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// File type bits of the header's mode field (S_IF* in <sys/stat.h>).
const (
	typeDir     = 0o040000
	typeRegular = 0o100000
	typeSymlink = 0o120000
	typeCharDev = 0o020000
)

// header holds the fields of one newc header that this writer varies; uid,
// gid, mtime, the containing device and the checksum are always 0.
type header struct {
	ino       uint32
	mode      uint32
	nlink     uint32
	size      uint32
	rdevMajor uint32
	rdevMinor uint32
	nameSize  uint32 // length of the name including its NUL
}

// appendHeader appends h's 110 bytes to b.
func appendHeader(b []byte, h header) []byte {
	const uid, gid, mtime, devMajor, devMinor, check = 0, 0, 0, 0, 0, 0
	return fmt.Appendf(b, "%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		magic, h.ino, h.mode, uid, gid, h.nlink, mtime, h.size,
		devMajor, devMinor, h.rdevMajor, h.rdevMinor, h.nameSize, check)
}

// padding returns how many zero bytes bring n up to a multiple of 4.
func padding(n int64) int {
	return int((align - n%align) % align)
}

// permBits converts the permission part of a fs.FileMode (rwx bits, setuid,
// setgid, sticky) to Unix mode bits, and rejects anything else: file types
// are chosen by the Writer method, not by the mode.
func permBits(perm fs.FileMode) (uint32, error) {
	const allowed = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	if extra := perm &^ allowed; extra != 0 {
		return 0, fmt.Errorf("mode %v has bits besides permissions (%v): the entry's type comes from the method called, "+
			"and setuid, setgid and sticky are fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky, not 0o7000 bits", perm, extra)
	}
	bits := uint32(perm.Perm())
	if perm&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if perm&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if perm&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits, nil
}
