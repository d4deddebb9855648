// Package vmmnode is failover.Actions backed by real vmm processes: each
// node of a cluster is a `vmm run` with its control API, its probes and a
// busybox httpd in the guest, inside the cluster's network namespace
// (netaddr), with its own tap link.
//
// The parts, one concern a file:
//
//   - cluster.go: Config, Cluster (Start, Close) and the Actions the
//     manager calls: Fence (the vmm's API fence), MoveAddress (netaddr's
//     one route replace) and Recover (stop the fenced vmm, boot a fresh
//     one, set its link up, wait until its httpd answers).
//   - node.go: one node's vmm process: its command line, its guest
//     script, its start, readiness and stop, every step under a deadline.
//   - control.go: the vmm control API calls a node makes (fence, status,
//     stop, inject), each bounded in time.
//   - nsnet.go: HTTP from inside the cluster namespace: a client for the
//     service address and each node's own address, and the heartbeat
//     targets built on it.
//
// A node's guest runs (GuestScript):
//
//	ln -s /bin/busybox /tmp/httpd; mkdir -p /www; echo NODE > /www/index.html
//	<netaddr.Node.GuestCommands>
//	/tmp/httpd -f -p 80 -h /www &
//	while :; do sleep 100000 & wait $!; done
//
// so httpd's comm is "httpd" (the probes watch that name) and the guest
// keeps running when httpd dies: only the fence stops it. Each answer is
// the node's name, so a client knows which node served it.
//
// Everything needs root (a network namespace and tap links) and /dev/kvm;
// a process left running is killed by Close.
package vmmnode
