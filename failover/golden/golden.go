// Package golden keeps golden snapshots: a guest snapshotted once its
// first boot serves, restored instead of booted by every later start of a
// guest that boots the same way (a recovery after a failover, a restart by
// Pacemaker, the next cluster of a test run).
//
// A Store is a directory with one snapshot directory per boot
// configuration. The configuration's Key is a hash of the vmm command
// line without its per-run paths (--api, --events, --report) and of the
// guest's kernel and initramfs files, so a snapshot is only ever restored
// into a guest that would have booted the same way: the same guest
// command, memory, links, probes and guest build. The
// command line is kept beside the snapshot (ArgsFile) for a person to
// read. A snapshot the vmm refuses (another vmm version, another host
// profile) is Discarded by the caller, which boots and Takes a new one.
//
// Starts of one configuration in several processes are serialized by
// Lock (vmmnode's clusters sharing a store use it): the first boots and
// takes the snapshot, the others wait and then restore it.
package golden

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/internal/atomicfile"
	"github.com/tracevisor/tracevisor/internal/guestfiles"
	"github.com/tracevisor/tracevisor/snapshot"
)

// ArgsFile is the file in a golden snapshot's directory that holds the
// vmm command line the snapshot's guest booted with, one argument a line.
const ArgsFile = "boot-args"

// runPaths are the vmm run flags whose values name one run's files, not
// the guest: they are left out of a Key.
var runPaths = map[string]bool{"--api": true, "--events": true, "--report": true}

// Key names the boot configuration of a vmm command line (`run ...`) and
// the guest files it boots (GuestFiles): a hash of its arguments, less
// the values of --api, --events and --report before the guest command's
// "--", and of each file's path, size and modification time, so that a
// rebuilt kernel or initramfs is another guest. Flags must be given as
// separate "--flag", "value" arguments, as the callers here build them.
func Key(args []string, guest ...string) string {
	h := sha256.New()
	flags := true
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			flags = false
		}
		if flags && runPaths[args[i]] && i+1 < len(args) {
			fmt.Fprintf(h, "%s\x00\x00", args[i])
			i++
			continue
		}
		fmt.Fprintf(h, "%s\x00", args[i])
	}
	for _, f := range guest {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(h, "file\x00%s\x00%d\x00%d\x00", f, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(h, "file\x00%s\x00missing\x00", f)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// GuestFiles are the kernel and initramfs a `vmm run` of the binary vmm
// with environment env boots when given none (internal/guestfiles's
// rule), for Key. A file not found is left out.
func GuestFiles(vmm string, env []string) []string {
	dirs := guestfiles.Dirs(guestfiles.BuildFromEnv(env), vmm)
	var out []string
	for _, rel := range []string{guestfiles.Kernel, guestfiles.Initramfs} {
		if p, _ := guestfiles.Find(dirs, rel); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Store is a directory of golden snapshots, one per Key.
type Store struct {
	// Dir holds the snapshots; it is created when the first is taken.
	Dir string
}

// Path is the snapshot directory of key (it may not exist yet).
func (s Store) Path(key string) string { return filepath.Join(s.Dir, key) }

// Lookup returns key's snapshot directory if a complete snapshot is there
// (the vmm writes its state file last).
func (s Store) Lookup(key string) (string, bool) {
	dir := s.Path(key)
	if _, err := os.Stat(filepath.Join(dir, snapshot.StateFile)); err != nil {
		return "", false
	}
	return dir, true
}

// Take snapshots the running guest of the vmm at sock as key's golden
// snapshot, the guest running on, and records args (its boot command
// line) beside it.
func (s Store) Take(ctx context.Context, sock, key string, args []string) error {
	dir := s.Path(key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ArgsFile), 0o644, func(f *os.File) error {
		_, err := f.WriteString(strings.Join(args, "\n") + "\n")
		return err
	}); err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	r, err := api.CallContext(ctx, sock, api.Request{Op: api.OpSnapshot, Dir: dir})
	if err == nil && r.Error != "" {
		err = errors.New(r.Error)
	}
	if err != nil {
		return fmt.Errorf("golden: snapshot through %s: %w", sock, err)
	}
	return nil
}

// Discard removes key's snapshot (one the vmm refused). A vmm that has
// it mapped keeps its pages: its files are unlinked, not overwritten.
func (s Store) Discard(key string) error {
	if err := os.RemoveAll(s.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("golden: %w", err)
	}
	return nil
}

// Lock takes key's lock, waiting while another process (or another Lock
// in this one) holds it or until ctx ends; the returned function releases
// it. The lock is an flock(2) on a file beside the snapshot: a holder
// that dies releases it.
func (s Store) Lock(ctx context.Context, key string) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	got := make(chan error, 1)
	go func() { got <- flock(f) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("golden: lock %s: %w", f.Name(), err)
		}
		return func() { f.Close() }, nil // closing the file releases the flock
	case <-ctx.Done():
		go func() { <-got; f.Close() }() // the flock may still come: release it then
		return nil, fmt.Errorf("golden: waiting for %s: %w", f.Name(), context.Cause(ctx))
	}
}

// flock takes an exclusive flock on f, waiting for it.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
