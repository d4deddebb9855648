package netaddr

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

// DNAT makes the namespace's own table and rule (made afresh on a second
// call, pointing at the new guest), turns on forwarding there and not on
// the host, and RemoveDNAT takes it all away.
func TestDNAT(t *testing.T) {
	ns := newNS(t, "tvdnat-")
	svc, g1, g2 := netip.MustParseAddr("10.79.0.101"), netip.MustParseAddr("10.80.1.2"), netip.MustParseAddr("10.80.1.3")
	hostFwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err := ns.DNAT(svc, g1); err != nil {
		t.Fatal(err)
	}
	if err := ns.DNAT(svc, g2); err != nil {
		t.Fatalf("DNAT again: %v", err)
	}
	if to, ok, err := ns.DNATTarget(svc); err != nil || !ok || to != g2 {
		t.Errorf("DNATTarget = %v %v %v, want %v", to, ok, err, g2)
	}
	var fwd []byte
	ns.Do(func() error { fwd, _ = os.ReadFile("/proc/sys/net/ipv4/ip_forward"); return nil })
	if strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("forwarding in the namespace: %q, want 1", fwd)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(hostFwd) {
		t.Errorf("the host's forwarding changed: %q → %q", hostFwd, now)
	}
	if _, ok, _ := ns.DNATTarget(netip.MustParseAddr("10.79.0.102")); ok {
		t.Error("a DNAT for an address never given one")
	}
	if err := ns.RemoveDNAT(svc); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ns.DNATTarget(svc); ok || err != nil {
		t.Errorf("after RemoveDNAT: ok %v, %v", ok, err)
	}
	if err := ns.RemoveDNAT(svc); err != nil {
		t.Errorf("RemoveDNAT of nothing: %v", err)
	}
	for _, bad := range [][2]netip.Addr{{}, {netip.MustParseAddr("fe80::1"), g1}, {svc, netip.IPv4Unspecified()}} {
		if err := ns.DNAT(bad[0], bad[1]); err == nil {
			t.Errorf("DNAT(%v, %v) = nil error", bad[0], bad[1])
		}
	}
}
