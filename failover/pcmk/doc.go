// Package pcmk plugs tracevisor VMs into Pacemaker + Corosync, the
// cluster stack multi-host users already run, and makes it fail over on
// the probe event instead of at the next monitor.
//
// The parts, one concern a file:
//
//   - params.go, metadata.go: the OCF resource agent ocf:tracevisor:vm —
//     its parameters (one table: names, defaults, help) and the meta-data
//     XML built from that table.
//   - agent.go: the agent's actions (start, stop, monitor, promote,
//     demote, validate-all) with the OCF exit codes; state.go: the files a
//     VM's instance keeps on its node (pid, socket, markers, the standing
//     verdict).
//   - fastpath.go: the node's tracevisor side. Started with each VM, it
//     reads the VMM's probe events, judges them by the embedded manager's
//     rules (failover.Rules: one place for each rule) and on a failure
//     tells Pacemaker at once (crm_resource --fail, located first); the
//     verdict stays written down, so the next monitor reports the same
//     failure if Pacemaker was slow or down.
//   - crm.go: the Pacemaker command-line tools it calls, each bounded in
//     time.
//   - fence.go: the stonith agent fence_tracevisor (fence-agents
//     conventions) that fences a node's VMs through their VMMs.
//
// cmd/tvpcmk is the one binary behind all of it; `make install-pcmk`
// installs it with the vmm, the guest kernel and the two agents.
package pcmk
