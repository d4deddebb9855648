package pcmklab

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// VMCluster is the seed paper's cluster of two VMs, one per node, as
// Pacemaker resources: a promotable clone of ocf:tracevisor:vm (both VMs
// run; the promoted one serves) and ocf:heartbeat:IPaddr2 moving the
// service address to the promoted one's node, whose DNAT hands it to the
// VM.
type VMCluster struct {
	// Index k (1..9) lays the cluster out: resource vmK, clone
	// vmK-clone, address ipK; each node's tap tv-vmK with 10.80.K.1/24,
	// guest 10.80.K.2/24; service address 10.79.0.(100+K).
	Index int
	// Params are more of the agent's parameters (vmm, state_dir, mem,
	// fast_path, ...).
	Params map[string]string
}

// Name is the VM resource's id.
func (c VMCluster) Name() string { return fmt.Sprintf("vm%d", c.Index) }

// Clone is the promotable clone's id.
func (c VMCluster) Clone() string { return c.Name() + "-clone" }

// IP is the IPaddr2 resource's id.
func (c VMCluster) IP() string { return fmt.Sprintf("ip%d", c.Index) }

// Service is the cluster's service address.
func (c VMCluster) Service() netip.Addr {
	return netip.AddrFrom4([4]byte{10, 79, 0, byte(100 + c.Index)})
}

// GuestAddr is the guest's address on every node's link.
func (c VMCluster) GuestAddr() netip.Addr {
	return netip.AddrFrom4([4]byte{10, 80, byte(c.Index), 2})
}

// FailureTimeout is how long a failed VM instance stays banned from its
// node (migration-threshold=1). The ban is what makes Pacemaker promote
// the standby at once: without it the failed promoted instance is
// restarted in place and promoted there again (its role is sticky), and
// that restart — a VM boot — holds up every other recovery, since
// Pacemaker runs one transition at a time and waits for the actions in
// flight. Once the ban expires (at the next cluster recheck) the VM
// restarts on its node as the unpromoted one: re-protection.
const FailureTimeout = "60s"

// CRM returns the cluster's configuration in crm shell syntax.
func (c VMCluster) CRM() string {
	k := c.Index
	params := map[string]string{
		"host_addr":       fmt.Sprintf("10.80.%d.1/24", k),
		"guest_addr":      fmt.Sprintf("10.80.%d.2/24", k),
		"service_address": c.Service().String(),
	}
	for key, v := range c.Params {
		params[key] = v
	}
	keys := make([]string, 0, len(params))
	for key := range params {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var p []string
	for _, key := range keys {
		p = append(p, key+"="+params[key])
	}
	vm, clone, ip := c.Name(), c.Clone(), c.IP()
	return strings.Join([]string{
		fmt.Sprintf("primitive %s ocf:tracevisor:vm params %s "+
			"op start timeout=300s interval=0 op stop timeout=60s interval=0 "+
			"op promote timeout=30s interval=0 op demote timeout=30s interval=0 "+
			"op monitor interval=10s role=Promoted timeout=30s op monitor interval=11s role=Unpromoted timeout=30s",
			vm, strings.Join(p, " ")),
		fmt.Sprintf("clone %s %s meta promotable=true promoted-max=1 clone-max=2 clone-node-max=1 "+
			"migration-threshold=1 failure-timeout=%s", clone, vm, FailureTimeout),
		fmt.Sprintf("primitive %s ocf:heartbeat:IPaddr2 params ip=%s cidr_netmask=24 nic=uplink op monitor interval=10s timeout=20s",
			ip, c.Service()),
		fmt.Sprintf("colocation %s-with-%s inf: %s %s:Promoted", ip, vm, ip, clone),
		fmt.Sprintf("order %s-before-%s Mandatory: %s:promote %s:start", vm, ip, clone, ip),
	}, "\n") + "\n"
}

// FenceCRM returns one fence_tracevisor device per node, each kept off
// the node it fences, reading the agent's state directory.
func FenceCRM(nodes []string, stateDir string) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "primitive fence-%s stonith:fence_tracevisor params state_dir=%s pcmk_host_list=%s op monitor interval=60s\n",
			n, stateDir, n)
		fmt.Fprintf(&b, "location fence-%s-elsewhere fence-%s -inf: %s\n", n, n, n)
	}
	return b.String()
}

// Properties is the cluster-wide configuration the lab's VM clusters
// run with: fencing on, stickiness so a recovered VM does not take the
// service back.
const Properties = "property cib-bootstrap-options: stonith-enabled=true stonith-timeout=30s dc-deadtime=2s cluster-recheck-interval=20s\n" +
	"rsc_defaults rsc-options: resource-stickiness=100\n"

// PromotedOn returns the node where s has c promoted (and not failed)
// with its address started there too (its start done), or "".
func (c VMCluster) PromotedOn(s Status) string {
	node := ""
	for _, pl := range s.Resources[c.Name()] {
		if pl.Role == "Promoted" && !pl.Failed {
			node = pl.Node
		}
	}
	ips := s.Resources[c.IP()]
	if node == "" || len(ips) != 1 || ips[0].Node != node || ips[0].Role != "Started" || ips[0].Pending != "" {
		return ""
	}
	return node
}

// Protected reports whether s has c running on two nodes, one promoted
// and one not, neither failed.
func (c VMCluster) Protected(s Status) bool {
	roles := map[string]int{}
	for _, pl := range s.Resources[c.Name()] {
		if pl.Failed {
			return false
		}
		roles[pl.Role]++
	}
	return roles["Promoted"] == 1 && roles["Unpromoted"] == 1 && c.PromotedOn(s) != ""
}
