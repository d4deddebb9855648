package initramfs

import (
	"bytes"
	"fmt"
	"strings"
)

// CommandDir and CommandPath name, relative to the guest's root, the file in
// which the guest's init (guest-kernel/init/init.c) finds the command to run:
// its arguments, each followed by a NUL byte. Without that file, init starts
// an interactive shell on the console.
const (
	CommandDir  = "tracevisor"
	CommandPath = CommandDir + "/cmd"
)

// maxArgLen is Linux's MAX_ARG_STRLEN (32 pages): execve fails with E2BIG
// for a longer argument, counting its NUL.
const maxArgLen = 32 * 4096

// CommandOverlay returns a small archive that makes the guest run argv: the
// directory CommandDir and the file CommandPath holding argv, each argument
// followed by a NUL byte. init runs argv[0] through a PATH search.
//
// Linux unpacks every cpio archive it finds concatenated in the initramfs, in
// order, so the VMM appends this one to the base initramfs (whose length is a
// multiple of 4, as Writer.Close leaves it) instead of rebuilding that. The
// directory entry repeats the base's harmlessly and keeps the overlay usable
// on its own.
//
// argv must hold at least one argument, the first non-empty, none containing
// a NUL byte or longer than the 131071 bytes execve accepts.
func CommandOverlay(argv []string) ([]byte, error) {
	cmd, err := encodeArgv(argv)
	if err != nil {
		return nil, fmt.Errorf("initramfs: guest command: %w", err)
	}
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.AddDir(CommandDir, 0o755); err != nil {
		return nil, err
	}
	if err := w.AddFile(CommandPath, 0o644, cmd); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeArgv joins argv with NUL bytes and ends it with one.
func encodeArgv(argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command given (argv is empty)")
	}
	if argv[0] == "" {
		return nil, fmt.Errorf("the command name (argv[0]) is empty")
	}
	size := 0
	for i, arg := range argv {
		if strings.IndexByte(arg, 0) >= 0 {
			return nil, fmt.Errorf("argument %d (%q) contains a NUL byte, which cannot be passed to a program", i, arg)
		}
		if len(arg)+1 > maxArgLen {
			return nil, fmt.Errorf("argument %d is %d bytes; the guest kernel's execve takes at most %d bytes per argument",
				i, len(arg), maxArgLen-1)
		}
		size += len(arg) + 1
	}
	out := make([]byte, 0, size)
	for _, arg := range argv {
		out = append(out, arg...)
		out = append(out, 0)
	}
	return out, nil
}
