package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/snapshot"
	"golang.org/x/sys/unix"
)

// output is a path a run writes to, named by its flag.
type output struct {
	flag, path string
	socket     bool // a unix socket the run listens on (--api)
}

// outputs are the run's output paths: every flag that names a file the
// run writes goes here, so that checkOutputs sees it before boot.
func (f *runFlags) outputs() []output {
	return []output{
		{flag: "--report", path: f.report},
		{flag: "--events", path: f.events},
		{flag: "--api", path: f.api, socket: true},
	}
}

// inputs are the files a run reads, by flag: no output may overwrite one.
func (f *runFlags) inputs() []output {
	in := []output{{flag: "--kernel", path: f.kernel}, {flag: "--initrd", path: f.initrd}, {flag: "--system-map", path: f.systemMap}}
	for _, d := range f.disks {
		path, _, _ := strings.Cut(d, ",")
		in = append(in, output{flag: "--disk", path: path})
	}
	if f.restore != "" {
		in = append(in, output{flag: "--restore", path: filepath.Join(f.restore, snapshot.StateFile)},
			output{flag: "--restore", path: filepath.Join(f.restore, snapshot.MemoryFile)})
	}
	return in
}

// checkOutputs checks, before anything is opened, that each output path
// can be written: its directory exists and is writable, the path is not a
// directory (nor, for a socket, any other file than a stale socket), no
// two flags name the same file and none names one of the inputs. A run
// that would only fail when it ends (--report) or after the guest is built
// (--api) fails here instead.
func checkOutputs(outs, inputs []output) error {
	seen := map[string]string{}
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := checkOutput(o); err != nil {
			return fmt.Errorf("%s %s: %w", o.flag, o.path, err)
		}
		if in, ok := sameFileAs(o.path, inputs); ok {
			return fmt.Errorf("%s %s: that is the %s file: not overwriting it", o.flag, o.path, in)
		}
		abs, err := filepath.Abs(o.path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.flag, o.path, err)
		}
		if other, ok := seen[abs]; ok {
			return fmt.Errorf("%s and %s name the same file, %s", other, o.flag, o.path)
		}
		seen[abs] = o.flag
	}
	return nil
}

func checkOutput(o output) error {
	if o.socket {
		if err := api.CheckPath(o.path); err != nil {
			return errors.Unwrap(err) // without api's prefix and the path
		}
	}
	dir := filepath.Dir(o.path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil && (o.socket || !exists(o.path)) {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	st, err = os.Stat(o.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case st.IsDir():
		return errors.New("is a directory")
	case o.socket:
		return nil // a stale socket: CheckPath allowed it; Listen replaces it
	}
	if err := unix.Access(o.path, unix.W_OK); err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	return nil
}

// sameFileAs returns the flag of the input that path is, if it is one.
func sameFileAs(path string, inputs []output) (string, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	for _, in := range inputs {
		if in.path == "" {
			continue
		}
		if ist, err := os.Stat(in.path); err == nil && os.SameFile(st, ist) {
			return in.flag, true
		}
	}
	return "", false
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
