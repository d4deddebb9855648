// Command vmm is tracevisor's virtual machine monitor.
//
//	vmm run [flags] [-- CMD ARGS...]   boot a guest; run CMD in it or open a shell
//	vmm probe COMMAND --api SOCKET     attach, detach, list probes in a running guest
//	vmm inject KIND --api SOCKET       cause a fault in a running guest
//	vmm fence --api SOCKET             stop a running guest's vCPUs for good
//	vmm snapshot --api SOCKET DIR      write a running guest to DIR (vmm run --restore DIR)
//	vmm resume --api SOCKET            let a guest paused by a snapshot run on
//	vmm dump --api SOCKET FILE         write a (fenced) guest as an ELF core for gdb
//	vmm doctor                         show what KVM offers and which host profile applies
//
// Run `vmm help` or `vmm COMMAND --help` for details.
package main

import (
	"fmt"
	"os"
	"time"
)

const usage = `vmm — tracevisor's KVM virtual machine monitor

Usage:
  vmm run [flags] [-- CMD [ARGS...]]   boot a Linux guest; with CMD, run it in the
                                       guest's busybox shell, stream its output,
                                       power off and exit with CMD's status;
                                       without, open an interactive guest shell
  vmm probe COMMAND --api SOCKET       attach, detach and list kprobes in a
                                       running guest; stream its events
  vmm inject KIND --api SOCKET         cause a fault in a running guest
                                       (signal, oom, panic, hang, stall)
  vmm fence --api SOCKET               fence a running guest: stop its vCPUs for
                                       good, keep its memory and registers
  vmm snapshot --api SOCKET DIR        write a running guest to DIR; 'vmm run
                                       --restore DIR' resumes it where it was
  vmm resume --api SOCKET              let a guest paused by 'vmm snapshot
                                       --paused' run on
  vmm dump --api SOCKET FILE           write a guest (a fenced one as its fence
                                       left it) as an ELF core: gdb vmlinux FILE
  vmm doctor                           print what /dev/kvm offers and which host
                                       profile (hardware or emulated) applies
  vmm help                             this text

Run 'vmm run --help' for the run flags and exit codes.
`

// Process exit codes of vmm itself (a guest's endings have their own; see
// 'vmm run --help').
const (
	exitError = 1 // setup failed: missing kernel, no KVM, too little memory...
	exitUsage = 2 // bad command line
)

// processStart is when the vmm process began to run Go code: the origin
// of --report's start_to_guest_ms.
var processStart = time.Now()

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:])
	case "doctor":
		return doctorCmd(args[1:])
	case "probe":
		return probeCmd(args[1:])
	case "inject":
		return injectCmd(args[1:])
	case "fence":
		return fenceCmd(args[1:])
	case "snapshot":
		return snapshotCmd(args[1:])
	case "dump":
		return dumpCmd(args[1:])
	case "resume":
		return resumeCmd(args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "vmm: unknown command %q\nRun 'vmm help' for usage.\n", args[0])
	return exitUsage
}
