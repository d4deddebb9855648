// Command mkinitramfs builds the base initramfs of the tracevisor guest: a
// newc cpio archive holding the guest's /init, a static busybox with its
// applet links, the device nodes init needs before it mounts devtmpfs, and
// the directories init mounts on. Run it with --help for the full layout.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

const usageHead = `Usage: mkinitramfs [--busybox PATH] [--init PATH] [-o FILE]

Builds the base initramfs of the tracevisor guest, a newc cpio archive that
the kernel unpacks as its root file system:

  init                   the guest's PID 1 (guest-kernel/init/init.c), mode 0755
  bin/busybox            a statically linked busybox (Debian: busybox-static)
  bin/sh                 a symlink to /bin/busybox; with --all-applet-links,
                         one per applet "busybox --list-full" names. By
                         default there is just bin/sh: each entry costs
                         emulated kernel time to unpack at every boot, the
                         busybox shell runs its applets without links, and
                         init runs a bare command name through busybox
  dev/console, dev/null  character devices 5:1 and 1:3, for the time before
                         init mounts devtmpfs on /dev
  etc/passwd, etc/group  root only
  bin sbin usr/bin usr/sbin dev proc sys tmp run root etc tracevisor
                         directories, mount points included

Both programs must be statically linked: the guest has no shared libraries.
Entries are sorted and carry mtime 0, so the same inputs give the same bytes.
To run a command, the VMM appends a second archive holding tracevisor/cmd
(see package guest-kernel/initramfs); without it, init starts a shell.

Flags:
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			fmt.Fprintln(os.Stderr, "Run 'mkinitramfs --help' for usage.")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks a mistake on the command line.
type usageError struct{ error }

// options are the command's flags.
type options struct {
	busybox  string
	init     string
	output   string
	allLinks bool
}

// shellLink is the one applet link a default archive holds: init's shell
// and every "#!/bin/sh" script need it.
const shellLink = "bin/sh"

// run parses args, then builds the archive; --help prints to stdout.
func run(args []string, stdout io.Writer) error {
	var opts options
	flags := pflag.NewFlagSet("mkinitramfs", pflag.ContinueOnError)
	flags.SetOutput(stdout)
	flags.StringVar(&opts.busybox, "busybox", "/bin/busybox", "`PATH` of a statically linked busybox, installed as /bin/busybox")
	flags.StringVar(&opts.init, "init", "build/init", "`PATH` of the statically linked guest init, installed as /init")
	flags.StringVarP(&opts.output, "output", "o", "build/initramfs.cpio", "archive `FILE` to write; its directory is created if missing")
	flags.BoolVar(&opts.allLinks, "all-applet-links", false, "link every busybox applet into bin/, sbin/, usr/... (slower boots)")
	flags.Usage = func() {
		fmt.Fprint(stdout, usageHead)
		fmt.Fprint(stdout, flags.FlagUsages())
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: inputs and output are given by flags", flags.Arg(0))}
	}
	return build(opts)
}

// build checks the inputs, lays out the archive and writes it.
func build(opts options) error {
	if err := checkStaticExecutable(opts.busybox, busyboxSpec); err != nil {
		return err
	}
	if err := checkStaticExecutable(opts.init, initSpec); err != nil {
		return err
	}
	applets := []string{shellLink}
	if opts.allLinks {
		var err error
		if applets, err = listApplets(opts.busybox); err != nil {
			return err
		}
	}
	l, err := baseLayout(opts.busybox, opts.init, applets)
	if err != nil {
		return err
	}
	return writeArchive(opts.output, l)
}
