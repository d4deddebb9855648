package netaddr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A test cluster: a cluster namespace holding one veth per node (tvN, as
// a vmm's tap would be), whose far end (eth0) is in a namespace of its own
// standing for the guest; each guest holds the service address on lo and
// answers on it with its name. Traffic goes only to addresses in these
// namespaces.

const servicePort = 7070

var service = DefaultService

type cluster struct {
	ns     *Namespace
	nodes  []Node
	guests []*Namespace
	mover  *Mover
}

// newNS makes a namespace deleted when the test ends. Where namespaces
// cannot be made it skips, or fails where the environment requires them.
func newNS(t *testing.T, prefix string) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, testenv.Netns, "not root: making network namespaces needs CAP_SYS_ADMIN")
	}
	ns, err := Create(prefix)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		testenv.Missing(t, testenv.Netns, "cannot make a network namespace: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// newCluster makes a cluster of n nodes, node0 holding the address.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{ns: newNS(t, "tvnac-")}
	c.mover = NewMover(c.ns)
	for i := 0; i < n; i++ {
		node, err := NodeAddrs(i)
		if err != nil {
			t.Fatal(err)
		}
		g := newNS(t, "tvnag-")
		la := netlink.NewLinkAttrs()
		la.Name = node.Link
		veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(g.fd))}
		if err := c.ns.h.LinkAdd(veth); err != nil {
			t.Fatalf("veth %s: %v", node.Link, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.ns.SetupLink(ctx, node.Link, node.Host)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		configureGuest(t, g, node)
		serve(t, g, fmt.Sprintf("node%d", i))
		c.nodes, c.guests = append(c.nodes, node), append(c.guests, g)
	}
	if _, err := c.mover.MoveAddress(service, c.nodes[0].Link); err != nil {
		t.Fatal(err)
	}
	return c
}

// configureGuest does in g what Node.GuestCommands has a guest do.
func configureGuest(t *testing.T, g *Namespace, node Node) {
	t.Helper()
	eth0, err := g.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := g.h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	guest, err := netlink.ParseAddr(node.Guest.String())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := netlink.ParseAddr(service.String() + "/32")
	for _, err := range []error{g.h.AddrAdd(lo, svc), g.h.AddrAdd(eth0, guest), g.h.LinkSetUp(eth0)} {
		if err != nil {
			t.Fatalf("guest %s: %v", node.Link, err)
		}
	}
}

// serve answers every connection to service:servicePort in g with name,
// until the test ends.
func serve(t *testing.T, g *Namespace, name string) {
	t.Helper()
	var ln net.Listener
	if err := g.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(service, servicePort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(time.Second))
			io.WriteString(c, name)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// dialName connects to the service from the calling thread's namespace
// and returns what the server said.
func dialName(timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp4", netip.AddrPortFrom(service, servicePort).String(), timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(io.LimitReader(conn, 64))
	return string(b), err
}

// ask is dialName from the cluster namespace.
func (c *cluster) ask(timeout time.Duration) (name string, err error) {
	if derr := c.ns.Do(func() error { name, err = dialName(timeout); return nil }); derr != nil {
		return "", derr
	}
	return name, err
}

// wantServed checks that a client in the cluster namespace reaches want
// and that the route names want's link.
func (c *cluster) wantServed(t *testing.T, want int) {
	t.Helper()
	if got, err := c.ask(2 * time.Second); err != nil || got != fmt.Sprintf("node%d", want) {
		t.Fatalf("client got %q, %v; want node%d", got, err, want)
	}
	if l, err := c.mover.CurrentLink(service); err != nil || l != c.nodes[want].Link {
		t.Fatalf("CurrentLink = %q, %v; want %s", l, err, c.nodes[want].Link)
	}
}

// nudValid are the neighbour states with a usable MAC (the kernel's NUD_VALID).
const nudValid = netlink.NUD_PERMANENT | netlink.NUD_NOARP | netlink.NUD_REACHABLE | netlink.NUD_PROBE | netlink.NUD_STALE | netlink.NUD_DELAY

// neighbourMAC returns the MAC the cluster namespace has learnt for the
// service address on link, or nil.
func (c *cluster) neighbourMAC(t *testing.T, link string) net.HardwareAddr {
	t.Helper()
	l, err := c.ns.h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.ns.h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.IP.Equal(service.AsSlice()) && n.State&nudValid != 0 {
			return n.HardwareAddr
		}
	}
	return nil
}
