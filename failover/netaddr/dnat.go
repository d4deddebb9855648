package netaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Here returns the network namespace the calling process runs in (a
// Pacemaker node's, for the resource agent), named name for messages.
func Here(name string) (*Namespace, error) {
	fd, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netaddr: this process's network namespace: %w", err)
	}
	return attach(name, fd)
}

// DNAT steers service to guest in the namespace: packets arriving for
// service (from any link: a node that holds it, as ocf:heartbeat:IPaddr2
// gives it, forwards them) and packets the namespace itself sends to it
// have their destination rewritten to guest; conntrack rewrites the
// replies back. It is one nftables table of its own (DNATTable), made
// afresh on every call, so calling it again replaces the rule. IPv4
// forwarding is turned on in the namespace.
//
// This is how a node whose cluster stack owns the service address (the
// address IPaddr2 moves between nodes with gratuitous ARP) serves it from
// the VM behind its tap: the guest needs no copy of the address.
func (n *Namespace) DNAT(service, guest netip.Addr) error {
	if !service.Is4() || !guest.Is4() || service.IsUnspecified() || guest.IsUnspecified() {
		return fmt.Errorf("netaddr: DNAT %v to %v: want two IPv4 addresses", service, guest)
	}
	if err := n.forwarding(); err != nil {
		return err
	}
	c, err := n.nft()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	if err := dropTable(c, DNATTable(service)); err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: DNATTable(service)})
	for _, hook := range []*nftables.ChainHook{nftables.ChainHookPrerouting, nftables.ChainHookOutput} {
		ch := c.AddChain(&nftables.Chain{Table: t, Name: hookName(hook), Type: nftables.ChainTypeNAT,
			Hooknum: hook, Priority: nftables.ChainPriorityNATDest})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			// ip daddr == service
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: service.AsSlice()},
			// dnat to guest
			&expr.Immediate{Register: 1, Data: guest.AsSlice()},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netaddr: DNAT %v to %v in namespace %s: %w", service, guest, n.name, err)
	}
	return nil
}

// RemoveDNAT removes what DNAT made for service; nothing to remove is no
// error.
func (n *Namespace) RemoveDNAT(service netip.Addr) error {
	c, err := n.nft()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	if err := dropTable(c, DNATTable(service)); err != nil {
		return err
	}
	return c.Flush()
}

// DNATTarget returns where the namespace's DNAT for service points, or
// ok false when it has none.
func (n *Namespace) DNATTarget(service netip.Addr) (netip.Addr, bool, error) {
	c, err := n.nft()
	if err != nil {
		return netip.Addr{}, false, err
	}
	defer c.CloseLasting()
	t, err := c.ListTableOfFamily(DNATTable(service), nftables.TableFamilyIPv4)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return netip.Addr{}, false, nil
		}
		return netip.Addr{}, false, err
	}
	rules, err := c.GetRules(t, &nftables.Chain{Table: t, Name: hookName(nftables.ChainHookPrerouting)})
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if im, ok := e.(*expr.Immediate); ok {
				if a, ok := netip.AddrFromSlice(im.Data); ok {
					return a, true, nil
				}
			}
		}
	}
	return netip.Addr{}, false, nil
}

// DNATTable is the nftables table (family ip) DNAT keeps service's rule
// in: tracevisor_dnat_A_B_C_D.
func DNATTable(service netip.Addr) string {
	return "tracevisor_dnat_" + strings.ReplaceAll(service.String(), ".", "_")
}

// dropTable queues the deletion of table name when it exists.
func dropTable(c *nftables.Conn, name string) error {
	t, err := c.ListTableOfFamily(name, nftables.TableFamilyIPv4)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("netaddr: list nftables table %s: %w", name, err)
	}
	c.DelTable(t)
	return nil
}

func hookName(h *nftables.ChainHook) string {
	if *h == *nftables.ChainHookOutput {
		return "output"
	}
	return "prerouting"
}

// forwarding turns on IPv4 forwarding in the namespace (the sysctl is
// per namespace; it is read through the namespace's own /proc view by a
// thread that joined it).
func (n *Namespace) forwarding() error {
	return n.Do(func() error {
		const path = "/proc/sys/net/ipv4/ip_forward"
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("netaddr: turn on IPv4 forwarding in namespace %s: %w", n.name, err)
		}
		return nil
	})
}

// nft opens an nftables connection into the namespace.
func (n *Namespace) nft() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(n.fd)))
	if err != nil {
		return nil, fmt.Errorf("netaddr: nftables in namespace %s: %w", n.name, err)
	}
	return c, nil
}
