package netaddr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// DefaultService is the service address of a cluster laid out by
// NodeAddrs: inside 10.77.0.0/24, which no node's link uses.
var DefaultService = netip.MustParseAddr("10.77.0.100")

// MaxNodes is how many nodes NodeAddrs can lay out.
const MaxNodes = 254

// Node is one node's link in the cluster namespace and the addresses at
// either end of it.
type Node struct {
	Index int
	Link  string       // the tap's name in the cluster namespace: `vmm run --net tap:` Link
	Host  netip.Prefix // the host end: 10.77.<Index+1>.1/24
	Guest netip.Prefix // the guest's eth0: 10.77.<Index+1>.2/24
}

// NodeAddrs lays out node i (0 ≤ i < MaxNodes): link tv<i> and the /24
// 10.77.<i+1>.0, host .1, guest .2.
func NodeAddrs(i int) (Node, error) {
	if i < 0 || i >= MaxNodes {
		return Node{}, fmt.Errorf("netaddr: node index %d out of range [0, %d)", i, MaxNodes)
	}
	net3 := byte(i + 1)
	return Node{
		Index: i,
		Link:  fmt.Sprintf("tv%d", i),
		Host:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, net3, 1}), 24),
		Guest: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, net3, 2}), 24),
	}, nil
}

// GuestCommands is the shell line (busybox ip) a node's guest runs to
// hold service on its loopback (none when service is the zero Addr: a
// node that DNATs the service address to n.Guest) and n.Guest on eth0,
// with n.Host as its default route (clients off the link, behind a node
// that forwards, are reached through it). Running it again changes
// nothing (replace), so a guest may retry it.
func (n Node) GuestCommands(service netip.Addr) string {
	lo := "ip link set lo up"
	if service.IsValid() {
		lo += fmt.Sprintf(" && ip addr replace %s/%d dev lo", service, service.BitLen())
	}
	return fmt.Sprintf("%s && ip addr replace %s dev eth0 && ip link set eth0 up && ip route replace default via %s",
		lo, n.Guest, n.Host.Addr())
}

// linkPoll is how often SetupLink looks for a link that is not there yet.
const linkPoll = 50 * time.Millisecond

// SetupLink waits (until ctx ends) for link to appear in the namespace —
// vmm makes its tap down and bare when it starts — then gives it host (an
// address and its prefix: 10.77.1.1/24) and brings it up. Running it
// again on a configured link changes nothing.
func (n *Namespace) SetupLink(ctx context.Context, link string, host netip.Prefix) error {
	if !host.IsValid() {
		return fmt.Errorf("netaddr: setup %s: invalid host address %v", link, host)
	}
	var l netlink.Link
	for {
		var err error
		if l, err = n.h.LinkByName(link); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netaddr: setup %s in namespace %s: link never appeared (%v): %w", link, n.name, context.Cause(ctx), err)
		case <-time.After(linkPoll):
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: host.Addr().AsSlice(), Mask: net.CIDRMask(host.Bits(), host.Addr().BitLen())}}
	if err := n.h.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("netaddr: setup %s: address %v: %w", link, host, err)
	}
	if err := n.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netaddr: setup %s: bring up: %w", link, err)
	}
	return nil
}
