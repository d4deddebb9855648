package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/api"
)

const fenceHelp = `Usage: vmm fence --api SOCKET [--reason TEXT] [--json]

Fence a running guest: stop every one of its vCPUs for good, so that it can
never run or answer on the network again (no split brain), and keep its
memory and registers for a post-mortem. The vmm keeps running, with its
control API, until it is stopped (Ctrl-C, SIGTERM or the API's stop); it
then exits with code 86. Answers once no vCPU is in KVM_RUN; fencing a
fenced guest again changes nothing.

  vmm fence --api /tmp/vm.sock --reason 'httpd died'

A vmm can also fence itself on a probe event: 'vmm run --fence-on RULE',
or the API's fence_on request. RULE is
  ` + api.FenceRuleSyntax + `

Flags:
%s`

func fenceCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm fence", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	reason := fs.String("reason", "", "why, recorded with the fence (default: fenced through the API)")
	asJSON := fs.Bool("json", false, "print the API's answer as one JSON object")
	fs.Usage = func() { fmt.Fprintf(os.Stderr, fenceHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return usageError("fence", err)
	}
	if fs.NArg() > 0 {
		return usageError("fence", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *sock == "" {
		return usageError("fence", errors.New("--api SOCKET is required (the --api of 'vmm run')"))
	}
	if err := fence(os.Stdout, *sock, *reason, *asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "vmm fence: %v\n", err)
		return exitError
	}
	return 0
}

// fence asks the vmm at sock to fence its guest and describes the result.
func fence(w io.Writer, sock, reason string, asJSON bool) error {
	r, err := api.Fence(sock, reason)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	st := r.Machine
	if st == nil {
		return errors.New("the vmm's answer has no machine status")
	}
	fmt.Fprintf(w, "fenced at %s: every vCPU out of KVM_RUN %v after the fence began (this request waited %v)\n",
		time.Unix(0, st.FencedAtNS).Format(time.RFC3339Nano), time.Duration(st.FenceTookNS), time.Duration(r.WaitedNS))
	fmt.Fprintf(w, "reason: %s\n", st.FenceReason)
	for _, c := range st.VCPUs {
		switch {
		case c.Regs:
			sym := ""
			if c.Symbol != "" {
				sym = " (" + c.Symbol + ")"
			}
			fmt.Fprintf(w, "vCPU %d: RIP %#x%s RSP %#x RFLAGS %#x CR3 %#x, %d KVM_RUN entries\n", c.ID, c.RIP, sym, c.RSP, c.RFLAGS, c.CR3, c.KVMRuns)
		case c.Error != "":
			fmt.Fprintf(w, "vCPU %d: registers not read: %s\n", c.ID, c.Error)
		default:
			fmt.Fprintf(w, "vCPU %d: never entered the guest\n", c.ID)
		}
	}
	return nil
}
