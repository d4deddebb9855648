// Package atomicfile writes a file so that readers see all of it or none:
// the bytes go to a temporary file in the same directory, which is given
// its mode and renamed over the path. Write also syncs the file before the
// rename and the directory after it, so the new file survives a host
// crash; Replace does not, for files on a latency-critical path whose loss
// in a crash costs nothing. A file of the same name that a process still
// maps or reads is replaced, never truncated under it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write creates path with mode perm (exactly: the umask does not apply)
// from what write writes to the open file (which it must not close), made
// durable. Before the rename any error leaves path as it was and removes
// the temporary file; an error syncing the directory after it comes back
// with path already replaced. path, if it exists, must be a regular file.
func Write(path string, perm os.FileMode, write func(f *os.File) error) error {
	return put(path, perm, true, write)
}

// Replace is Write without the syncs.
func Replace(path string, perm os.FileMode, write func(f *os.File) error) error {
	return put(path, perm, false, write)
}

func put(path string, perm os.FileMode, durable bool, write func(f *os.File) error) (err error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s exists and is not a regular file (%v): not replaced", path, st.Mode().Type())
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%s written, but its directory not synced: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making the renames and creations in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
