package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/tracevisor/tracevisor/api"
)

const dumpHelp = `Usage: vmm dump --api SOCKET FILE

Write the guest of the vmm at SOCKET as an ELF core file, for a
post-mortem: its memory, at the kernel's virtual addresses as the guest's
page tables map them, and each vCPU's registers (one thread per vCPU).
A fenced guest is written as its fence left it, so a failover keeps the
evidence ('vmm fence' stops the guest for good and keeps its memory); a
running guest is paused while it is written and runs on after, a paused
one stays paused.

  vmm fence --api /tmp/vm.sock
  vmm dump --api /tmp/vm.sock /var/tmp/vm1.core
  gdb build/guest-kernel/vmlinux /var/tmp/vm1.core
    (gdb) info threads        # a thread per vCPU, where it stood
    (gdb) bt                  # the kernel's stack on that vCPU
    (gdb) p init_task.comm

FILE is written by the vmm, on its host (mode 0600: it holds the guest's
memory); a relative FILE is made absolute here first. The core is as large
as the guest's RAM.

Flags:
%s`

func dumpCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm dump", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	file, code, ok := parseAPIAndOne(fs, "dump", dumpHelp, sock, "core file", args)
	if !ok {
		return code
	}
	if err := dumpCore(os.Stdout, *sock, file); err != nil {
		fmt.Fprintf(os.Stderr, "vmm dump: %v\n", err)
		return exitError
	}
	return 0
}

// dumpCore asks the vmm at sock to write its guest as a core at file.
func dumpCore(w io.Writer, sock, file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	r, err := api.Dump(sock, abs)
	if err != nil {
		return err
	}
	state := ""
	if r.Machine != nil {
		state = "; the guest is " + r.Machine.State
	}
	fmt.Fprintf(w, "core written to %s in %v%s\n", abs, time.Duration(r.DumpNS).Round(time.Millisecond), state)
	return nil
}
