// Command tvpcmk is tracevisor's side of a Pacemaker + Corosync cluster:
// the OCF resource agent ocf:tracevisor:vm, the stonith agent
// fence_tracevisor, and the fast path each VM instance runs beside it.
//
//	tvpcmk ocf ACTION        the resource agent (OCF_RESKEY_* in the environment)
//	tvpcmk fence [ARGS]      the fence agent (-o ACTION -n PLUG, or key=value on stdin)
//	tvpcmk fastpath ...      the fast path of one instance (the agent's start runs it)
//
// Installed as /usr/lib/ocf/resource.d/tracevisor/vm and
// /usr/sbin/fence_tracevisor (make install-pcmk), it also answers to
// those names: called as "vm" it is the resource agent, as
// "fence_tracevisor" the fence agent.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/tracevisor/tracevisor/failover/pcmk"
)

const usage = `tvpcmk: tracevisor VMs as Pacemaker resources, failed over on the probe event

usage:
  tvpcmk ocf ACTION       the OCF resource agent ocf:tracevisor:vm
                          (actions: ` + pcmk.Actions + `;
                          parameters from OCF_RESKEY_*: see 'tvpcmk ocf meta-data')
  tvpcmk fence [ARGS]     the stonith agent fence_tracevisor: -o ACTION -n NODE[/VM]
                          [--state-dir DIR], or action=/port=/state_dir= lines on stdin
                          (actions: ` + pcmk.FenceActions + `)
  tvpcmk fastpath --state DIR --resource R --node N --service COMM
                          one VM instance's fast path (the agent's start runs it)

Installed by 'make install-pcmk' as /usr/lib/ocf/resource.d/tracevisor/vm and
/usr/sbin/fence_tracevisor, it is the agent those names call.
`

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch filepath.Base(args[0]) {
	case "vm":
		if len(args) < 2 {
			fmt.Fprintf(stderr, "usage: %s ACTION (one of %s)\n", args[0], pcmk.Actions)
			return int(pcmk.ErrArgs)
		}
		return int(pcmk.RunAgent(ctx, args[1], os.Getenv, stdout, stderr))
	case "fence_tracevisor":
		return fence(ctx, args[1:], stdin, stdout, stderr)
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[1] {
	case "ocf":
		if len(args) != 3 {
			fmt.Fprintf(stderr, "usage: tvpcmk ocf ACTION (one of %s)\n", pcmk.Actions)
			return int(pcmk.ErrArgs)
		}
		return int(pcmk.RunAgent(ctx, args[2], os.Getenv, stdout, stderr))
	case "fence":
		return fence(ctx, args[2:], stdin, stdout, stderr)
	case "fastpath":
		return fastpath(ctx, args[2:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tvpcmk: unknown command %q\n\n%s", args[1], usage)
	return 2
}

func fence(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Pacemaker's fencer gives its request on stdin; a person types
	// flags. Read stdin only when it is not a terminal.
	var in io.Reader
	if f, ok := stdin.(*os.File); !ok || !isTerminal(f) {
		in = stdin
	}
	if len(args) > 0 {
		in = nil // flags given: the request is on the command line
	}
	r, err := pcmk.ParseFenceArgs(args, in)
	if err != nil {
		fmt.Fprintf(stderr, "fence_tracevisor: %v\n", err)
		return pcmk.FenceFailed
	}
	return pcmk.RunFence(ctx, r, stdout, stderr)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func fastpath(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("tvpcmk fastpath", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", "", "the instance's state directory (STATE_DIR/NODE/NAME)")
	resource := fs.String("resource", "", "the resource's id in Pacemaker")
	node := fs.String("node", "", "this node's name in Pacemaker")
	service := fs.String("service", "httpd", "the watched service's comm in the guest")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *state == "" || *resource == "" || *node == "" {
		fmt.Fprintln(stderr, "tvpcmk fastpath: --state, --resource and --node are required")
		return 2
	}
	f := &pcmk.FastPath{State: pcmk.State(*state), Resource: *resource, Node: *node, Service: *service,
		CRM: pcmk.NewCRM(), Journal: stdout, Log: stderr}
	_, _, err := f.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tvpcmk fastpath: %v\n", err)
		return 1
	}
	return 0
}
