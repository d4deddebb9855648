package netaddr

import (
	"net/netip"
	"strings"
	"testing"
)

// NodeAddrs gives every node its own link and /24, none of which holds
// the service address (else a node's connected route, not the service
// route, could carry the service's traffic).
func TestNodeAddrs(t *testing.T) {
	n, err := NodeAddrs(0)
	if err != nil {
		t.Fatal(err)
	}
	want := Node{Index: 0, Link: "tv0", Host: netip.MustParsePrefix("10.77.1.1/24"), Guest: netip.MustParsePrefix("10.77.1.2/24")}
	if n != want {
		t.Errorf("NodeAddrs(0) = %+v, want %+v", n, want)
	}
	seen := map[netip.Prefix]int{}
	for i := 0; i < MaxNodes; i++ {
		n, err := NodeAddrs(i)
		if err != nil {
			t.Fatalf("NodeAddrs(%d): %v", i, err)
		}
		if n.Host.Masked() != n.Guest.Masked() || n.Host.Addr() == n.Guest.Addr() {
			t.Errorf("node %d: host %v and guest %v are not two addresses of one subnet", i, n.Host, n.Guest)
		}
		if n.Host.Contains(DefaultService) {
			t.Errorf("node %d's subnet %v holds the service address %v", i, n.Host.Masked(), DefaultService)
		}
		if j, dup := seen[n.Host.Masked()]; dup {
			t.Errorf("nodes %d and %d share subnet %v", j, i, n.Host.Masked())
		}
		seen[n.Host.Masked()] = i
	}
	for _, bad := range []int{-1, MaxNodes} {
		if _, err := NodeAddrs(bad); err == nil {
			t.Errorf("NodeAddrs(%d) = nil error, want out of range", bad)
		}
	}
}

func TestGuestCommands(t *testing.T) {
	n, _ := NodeAddrs(1)
	got := n.GuestCommands(DefaultService)
	for _, want := range []string{"ip link set lo up", "ip addr replace 10.77.0.100/32 dev lo",
		"ip addr replace 10.77.2.2/24 dev eth0", "ip link set eth0 up", "ip route replace default via 10.77.2.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("GuestCommands = %q, lacks %q", got, want)
		}
	}
	if got := n.GuestCommands(netip.Addr{}); strings.Contains(got, "dev lo") || !strings.Contains(got, "dev eth0") {
		t.Errorf("GuestCommands(no service) = %q, want eth0 set up and nothing on lo", got)
	}
}

func TestMoveAddressBadService(t *testing.T) {
	m := NewMover(nil) // never reaches the namespace
	for _, a := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("fe80::1%eth0")} {
		if _, err := m.MoveAddress(a, "tv0"); err == nil {
			t.Errorf("MoveAddress(%v) = nil error", a)
		}
	}
}
