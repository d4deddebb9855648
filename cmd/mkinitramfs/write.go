package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tracevisor/tracevisor/guest-kernel/initramfs"
	"github.com/tracevisor/tracevisor/internal/atomicfile"
)

// writeArchive writes l to output through a temporary file in the same
// directory, renamed into place once complete: a failed run leaves no
// truncated archive that make would take as up to date.
func writeArchive(output string, l *layout) (err error) {
	dir := filepath.Dir(output)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	err = atomicfile.Write(output, 0o644, func(f *os.File) error {
		buf := bufio.NewWriterSize(f, 1<<20)
		if err := writeEntries(initramfs.NewWriter(buf), l); err != nil {
			return err
		}
		return buf.Flush()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", output, err)
	}
	return nil
}

// writeEntries writes l's entries in order, then the trailer.
func writeEntries(w *initramfs.Writer, l *layout) error {
	for _, n := range l.sorted() {
		var err error
		switch n.kind {
		case kindDir:
			err = w.AddDir(n.name, n.perm)
		case kindFile:
			err = addFile(w, n)
		case kindSymlink:
			err = w.AddSymlink(n.name, n.target)
		case kindCharDev:
			err = w.AddCharDevice(n.name, n.perm, n.major, n.minor)
		default:
			err = fmt.Errorf("%q has unknown kind %d", n.name, n.kind)
		}
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// addFile copies n's contents from its source file, or from n.data.
func addFile(w *initramfs.Writer, n node) error {
	if n.source == "" {
		return w.AddFile(n.name, n.perm, n.data)
	}
	f, err := os.Open(n.source)
	if err != nil {
		return fmt.Errorf("reading /%s: %w", n.name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading /%s: %w", n.name, err)
	}
	// A file that grows while being copied is cut at the size stat gave;
	// one that shrinks makes AddFileFrom fail.
	return w.AddFileFrom(n.name, n.perm, fi.Size(), f)
}
