package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
)

const injectHelp = `Usage: vmm inject --api SOCKET KIND [ARGS]

Cause a fault inside a running guest, for testbeds. The guest's probe
driver does it in kernel space, so it works when guest user space is dead.

  signal NAME [SIG]   send SIG (default TERM; a number or a name) to every
                      process whose command name is NAME
  oom                 run the guest's OOM killer (as sysrq-f does)
  panic               panic the guest kernel
  hang                spin a CPU with preemption off (--cpu, --seconds):
                      the guest's soft-lockup detector fires
  stall               put a kernel thread, tvp-stall, in uninterruptible
                      sleep (--seconds): the hung-task detector reports it
                      after kernel.hung_task_timeout_secs

  vmm inject --api /tmp/vm.sock signal httpd KILL
  vmm inject --api /tmp/vm.sock hang --seconds 30

Flags:
%s`

func injectCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm inject", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	cpu := fs.Int("cpu", 0, "hang: the CPU to spin")
	seconds := fs.Int("seconds", 30, "hang, stall: how long")
	fs.Usage = func() { fmt.Fprintf(os.Stderr, injectHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return usageError("inject", err)
	}
	in, err := parseInjection(fs.Args(), *cpu, *seconds)
	if err != nil {
		return usageError("inject", err)
	}
	if *sock == "" {
		return usageError("inject", errors.New("--api SOCKET is required (the --api of 'vmm run')"))
	}
	if _, err := api.Call(*sock, api.Request{Op: api.OpInject, Inject: &in}); err != nil {
		fmt.Fprintf(os.Stderr, "vmm inject %s: %v\n", in.Kind, err)
		return exitError
	}
	return 0
}

// parseInjection reads KIND [ARGS] from the command line.
func parseInjection(args []string, cpu, seconds int) (api.Injection, error) {
	if len(args) == 0 {
		return api.Injection{}, errors.New("which fault? want " + api.InjectKinds)
	}
	in := api.Injection{Kind: args[0]}
	switch args[0] {
	case "signal":
		if len(args) < 2 || len(args) > 3 {
			return in, errors.New("signal: want NAME [SIG]")
		}
		in.Comm, in.Signal = args[1], 15
		if len(args) == 3 {
			sig, err := probe.ParseSignal(args[2])
			if err != nil {
				return in, err
			}
			in.Signal = sig
		}
	case "oom", "panic":
		if len(args) != 1 {
			return in, fmt.Errorf("%s takes no arguments", args[0])
		}
	case "hang":
		if len(args) != 1 {
			return in, errors.New("hang takes --cpu and --seconds, no arguments")
		}
		in.CPU, in.Seconds = cpu, seconds
	case "stall":
		if len(args) != 1 {
			return in, errors.New("stall takes --seconds, no arguments")
		}
		in.Seconds = seconds
	default:
		return in, fmt.Errorf("unknown fault %q: want %s", args[0], api.InjectKinds)
	}
	return in, nil
}
