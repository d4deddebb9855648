package netaddr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// A namespace from Create is another network namespace, entered by Do,
// with lo up and no service route; Open finds it by name; Delete removes it.
func TestNamespace(t *testing.T) {
	ns := newNS(t, "tvnan-")
	host, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside string
	var loUp bool
	if err := ns.Do(func() error {
		var err error
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		lo, lerr := net.InterfaceByName("lo")
		loUp = lerr == nil && lo.Flags&net.FlagUp != 0
		return errors.Join(err, lerr)
	}); err != nil {
		t.Fatal(err)
	}
	if inside == "" || inside == host {
		t.Errorf("Do ran in net namespace %q, the host's is %q", inside, host)
	}
	if !loUp {
		t.Error("lo is not up in a new namespace")
	}
	if _, err := NewMover(ns).CurrentLink(service); !errors.Is(err, ErrNoRoute) {
		t.Errorf("CurrentLink in a new namespace = %v, want ErrNoRoute", err)
	}

	again, err := Open(ns.Name())
	if err != nil {
		t.Fatal(err)
	}
	var other string
	again.Do(func() (err error) { other, err = os.Readlink("/proc/thread-self/ns/net"); return err })
	again.Close()
	if other != inside {
		t.Errorf("Open(%q) entered %q, Create made %q", ns.Name(), other, inside)
	}

	gone, err := Create("tvnad-")
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(gone.Name()); err == nil {
		t.Errorf("Open(%q) after Delete succeeded", gone.Name())
	}
}

// SetupLink waits for a link that appears late (as a vmm's tap does),
// gives it its address and brings it up; a second run changes nothing;
// a link that never appears is an error once ctx ends.
func TestSetupLink(t *testing.T) {
	ns := newNS(t, "tvnal-")
	host := netip.MustParsePrefix("10.77.9.1/24")
	go func() {
		time.Sleep(200 * time.Millisecond)
		la := netlink.NewLinkAttrs()
		la.Name = "tvlate"
		ns.h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "tvlate-p"})
	}()
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := ns.SetupLink(ctx, "tvlate", host)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := ns.h.LinkByName("tvlate")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Error("tvlate is not up after SetupLink")
	}
	addrs, err := ns.h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != host.String() {
		t.Errorf("tvlate's addresses after two SetupLinks: %v, want just %v", addrs, host)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ns.SetupLink(ctx, "tvabsent", host); err == nil || !strings.Contains(err.Error(), "never appeared") {
		t.Errorf("SetupLink of an absent link = %v, want 'never appeared'", err)
	}
}
