package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/vmm"
)

const snapshotHelp = `Usage: vmm snapshot --api SOCKET [--paused] DIR

Write the running guest of the vmm at SOCKET to the directory DIR (created
if missing; a snapshot already there is replaced, safely even while a clone
runs from it): the guest is paused, its vCPUs, interrupt controllers,
clock, devices, probe host and memory are written, and it runs on, unless
--paused. 'vmm run --restore DIR' then resumes the guest in a new vmm,
where it was, with the same --cpus, --mem, --console, --disk and --net
flags as this one (see 'vmm run --help', Snapshots, for what is kept, what
must match and what a clone must change).

  vmm snapshot --api /tmp/vm.sock /var/tmp/snap
  vmm snapshot --api /tmp/vm.sock --paused /var/tmp/snap   # then copy the disks
  vmm resume --api /tmp/vm.sock

DIR is written by the vmm, on its host: a relative DIR is made absolute
here first. The disk images are not in the snapshot: take it --paused and
copy each writable image before 'vmm resume' to keep them consistent.

Flags:
%s`

const resumeHelp = `Usage: vmm resume --api SOCKET

Let the guest of the vmm at SOCKET run on after 'vmm snapshot --paused'.
A guest that is not paused is left as it is.

Flags:
%s`

func snapshotCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm snapshot", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	paused := fs.Bool("paused", false, "leave the guest paused after the snapshot ('vmm resume' lets it go on)")
	dir, code, ok := parseAPIAndOne(fs, "snapshot", snapshotHelp, sock, "snapshot directory", args)
	if !ok {
		return code
	}
	if err := takeSnapshot(os.Stdout, *sock, dir, *paused); err != nil {
		fmt.Fprintf(os.Stderr, "vmm snapshot: %v\n", err)
		return exitError
	}
	return 0
}

// takeSnapshot asks the vmm at sock to snapshot its guest into dir.
func takeSnapshot(w io.Writer, sock, dir string, paused bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	r, err := api.Snapshot(sock, abs, paused)
	if err != nil {
		return err
	}
	state := "running on"
	if r.Machine != nil && r.Machine.State != "" && r.Machine.State != vmm.StateRunning {
		state = r.Machine.State
	}
	fmt.Fprintf(w, "snapshot written to %s in %v; the guest is %s\n", abs, time.Duration(r.SnapshotNS).Round(time.Millisecond), state)
	return nil
}

// parseAPIAndOne parses args into fs for command name (help its usage,
// sock its --api): --api is required and exactly one argument, a what,
// which it returns. Where ok is false the command returns code at once
// (0 for --help, exitUsage otherwise, the error said).
func parseAPIAndOne(fs *pflag.FlagSet, name, help string, sock *string, what string, args []string) (arg string, code int, ok bool) {
	fs.Usage = func() { fmt.Fprintf(os.Stderr, help, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return "", 0, false
		}
		return "", usageError(name, err), false
	}
	switch {
	case *sock == "":
		return "", usageError(name, errors.New("--api SOCKET is required (the --api of 'vmm run')")), false
	case fs.NArg() == 0:
		return "", usageError(name, fmt.Errorf("no %s given", what)), false
	case fs.NArg() > 1:
		return "", usageError(name, fmt.Errorf("unexpected argument %q: one %s", fs.Arg(1), what)), false
	}
	return fs.Arg(0), 0, true
}

func resumeCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm resume", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	fs.Usage = func() { fmt.Fprintf(os.Stderr, resumeHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return usageError("resume", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageError("resume", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case *sock == "":
		return usageError("resume", errors.New("--api SOCKET is required (the --api of 'vmm run')"))
	}
	r, err := api.Resume(*sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm resume: %v\n", err)
		return exitError
	}
	if r.Machine != nil {
		fmt.Printf("the guest is %s\n", r.Machine.State)
	}
	return 0
}
