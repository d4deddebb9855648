// Command cluster runs tracevisor's failover cluster: `cluster demo` boots
// an active and a standby guest with httpd, fails the active's httpd and
// shows the failover, timed on the host clock, beside what a 10 s
// heartbeat would have seen; `cluster bench` is the seed paper's experiment.
package main

import (
	"fmt"
	"os"
)

const usage = `Usage: cluster demo [flags]
       cluster bench [flags]
       cluster bench-pacemaker [flags]

Boot a two-node failover cluster (two vmm guests with busybox httpd, in a
network namespace of their own, the service address 10.77.0.100 routed to
the active one), kill the active's httpd from the host, and print the
probe event, the verdict, the fence, the address move and the first
answer from the standby, each on the host clock, then when a heartbeat
(10 s period) detected the same failure. Ends by itself, exit 0 when the
failover happened. Needs root and /dev/kvm.

'cluster bench' runs the seed paper's experiment: two clusters, one
decided by a 10 s heartbeat, one by the probes, N runs of a killed httpd
and of an OOM, the paper's Tables 1 and 2, a CSV and a CDF plot.

'cluster bench-pacemaker' measures the same through a real two-node
Pacemaker + Corosync cluster: its 10 s monitor against the fast path, and
the loss of a whole node.

Run 'cluster demo --help', 'cluster bench --help' or 'cluster bench-pacemaker
--help' for their flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "demo":
		os.Exit(demo(os.Args[2:]))
	case "bench":
		os.Exit(bench(os.Args[2:]))
	case "bench-pacemaker":
		os.Exit(benchPacemaker(os.Args[2:]))
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "cluster: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
