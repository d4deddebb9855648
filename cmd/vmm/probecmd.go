package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
)

const probeHelp = `Usage: vmm probe COMMAND --api SOCKET [ARGS]

Arm and disarm kprobes in a running guest's kernel, from the host, through
the API socket of 'vmm run --api SOCKET'. No reboot, nothing compiled, no
guest user space involved: the guest's probe driver turns each spec into a
kprobe and sends every hit to the VMM over the probe device.

  attach SPEC       arm the probes SPEC names; prints their ids
  detach ID         disarm probe ID
  list              the guest's probes with their counters (--json for JSON)
  events            print events as JSON lines until interrupted
  catalogue         the ready-made probes and what each misses (no --api)

SPEC is a catalogue entry or a kprobe_events-like probe:
  catalogue:NAME[:comm=SERVICE]        e.g. catalogue:signal:comm=httpd
  p[:NAME] SYMBOL[+OFF] [ARG=%%REG ...] [FILTER ...]
  r[:NAME] SYMBOL [ARG=%%REG ...] [FILTER ...]      (on return; %%ax = value)
  FILTER: comm:NAME pid:N sig:N[,N..] rate:N class:CLASS ARG==V ARG!=V ARG<V ARG>V ARG&V

  vmm probe attach --api /tmp/vm.sock 'p:sig send_signal_locked sig=%%di sig==9'
  vmm probe list --api /tmp/vm.sock

Flags:
%s`

func probeCmd(args []string) int {
	fs := pflag.NewFlagSet("vmm probe", pflag.ContinueOnError)
	sock := fs.String("api", "", "API socket of the running vmm (its --api)")
	asJSON := fs.Bool("json", false, "list: print JSON")
	fs.Usage = func() { fmt.Fprintf(os.Stderr, probeHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return usageError("probe", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitUsage
	}
	if err := checkProbeArgs(rest); err != nil {
		return usageError("probe", err)
	}
	if rest[0] == "catalogue" {
		printCatalogue()
		return 0
	}
	if *sock == "" {
		return usageError("probe", errors.New("--api SOCKET is required (the --api of 'vmm run')"))
	}
	var req api.Request
	switch rest[0] {
	case "attach":
		req = api.Request{Op: api.OpAttach, Spec: rest[1]}
	case "detach":
		id, _ := strconv.ParseUint(rest[1], 10, 32)
		req = api.Request{Op: api.OpDetach, ID: uint32(id)}
	case "list":
		req = api.Request{Op: api.OpList}
	case "events":
		return streamEvents(*sock)
	}
	r, err := api.Call(*sock, req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm probe %s: %v\n", rest[0], err)
		return exitError
	}
	switch rest[0] {
	case "attach":
		for _, id := range r.IDs {
			fmt.Println(id)
		}
	case "list":
		if *asJSON {
			b, _ := json.MarshalIndent(r, "", "  ")
			fmt.Println(string(b))
			return 0
		}
		printProbes(r)
	}
	return 0
}

// checkProbeArgs checks COMMAND [ARGS] of 'vmm probe': a known command
// with the arguments it takes and no others.
func checkProbeArgs(rest []string) error {
	switch rest[0] {
	case "attach":
		if len(rest) != 2 {
			return errors.New("attach: want one SPEC (quote it)")
		}
	case "detach":
		if len(rest) != 2 {
			return errors.New("detach: want one numeric probe ID (see 'vmm probe list')")
		}
		if _, err := strconv.ParseUint(rest[1], 10, 32); err != nil {
			return fmt.Errorf("detach: probe ID %q: want a number (see 'vmm probe list')", rest[1])
		}
	case "list", "events", "catalogue":
		if len(rest) != 1 {
			return fmt.Errorf("%s: unexpected argument %q: %s takes none", rest[0], rest[1], rest[0])
		}
	default:
		return fmt.Errorf("unknown command %q: want attach, detach, list, events or catalogue", rest[0])
	}
	return nil
}

func printProbes(r api.Response) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSTATE\tHITS\tDELIVERED\tFILTERED\tLIMITED\tDROPPED\tMISSED\tSPEC")
	for _, p := range r.Probes {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.ID, p.Name, p.State,
			p.Hits, p.Delivered, p.Filtered, p.Limited, p.Dropped, p.Missed, p.Spec)
	}
	w.Flush()
	if h := r.Host; h != nil {
		fmt.Printf("host: %d messages, %d events, %d malformed, %d lost on the host, %d dropped in the guest\n",
			h.Received, h.Events, h.Malformed, h.InboxDrops, h.GuestDrops)
	}
}

func printCatalogue() {
	for _, e := range probe.Catalogue() {
		fmt.Printf("catalogue:%s\n", e.Name)
		for _, s := range e.Specs {
			fmt.Printf("    %s\n", s)
		}
		fmt.Printf("%s\n\n", indent(e.Doc, "  "))
	}
}

func streamEvents(sock string) int {
	c, err := api.Dial(sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm probe events: %v\n", err)
		return exitError
	}
	defer c.Close()
	err = c.Events(func(_ probe.Event, raw []byte) bool {
		os.Stdout.Write(append(raw, '\n'))
		return true
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm probe events: %v\n", err)
		return exitError
	}
	return 0
}

func usageError(cmd string, err error) int {
	fmt.Fprintf(os.Stderr, "vmm %s: %v\nRun 'vmm %s --help' for usage.\n", cmd, err, cmd)
	return exitUsage
}

// indent prefixes every line of s with pre.
func indent(s, pre string) string {
	return pre + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pre)
}
