package netaddr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A client in the cluster namespace reaches whichever node the route
// names: node0, then node1 after a move, then node0 again; a move to an
// absent or a down link is an error that leaves the route and the service
// where they were.
func TestMoveAddress(t *testing.T) {
	c := newCluster(t, 2)
	c.wantServed(t, 0)

	took, err := c.mover.MoveAddress(service, "tv1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("move node0 -> node1 took %v", took)
	c.wantServed(t, 1)

	if _, err := c.mover.MoveAddress(service, "tv0"); err != nil {
		t.Fatal(err)
	}
	c.wantServed(t, 0)

	if _, err := c.mover.MoveAddress(service, "tv9"); err == nil || !strings.Contains(err.Error(), "no such link") {
		t.Errorf("move to an absent link = %v, want 'no such link'", err)
	}
	c.wantServed(t, 0)

	tv1, err := c.ns.h.LinkByName("tv1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ns.h.LinkSetDown(tv1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.mover.MoveAddress(service, "tv1"); err == nil {
		t.Error("move to a down link succeeded")
	}
	c.wantServed(t, 0)
}

// Service moves by node name, as failover.Actions does, and refuses an
// unknown node or an ended context without touching the route.
func TestServiceMoveAddress(t *testing.T) {
	c := newCluster(t, 2)
	s := &Service{Mover: c.mover, Addr: service, Links: map[string]string{"a": "tv0", "b": "tv1"}}
	if err := s.MoveAddress(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	c.wantServed(t, 1)
	if err := s.MoveAddress(context.Background(), "zz"); err == nil {
		t.Error("move to an unknown node succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.MoveAddress(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("move with an ended context = %v, want context.Canceled", err)
	}
	c.wantServed(t, 1)
}

// A move forgets the MAC learnt for the service address: the link it left
// keeps no entry, so a node that comes back with another MAC (a new NIC, a
// rebooted guest) is asked afresh instead of being sent frames it drops.
func TestMoveForgetsNeighbour(t *testing.T) {
	c := newCluster(t, 2)
	c.wantServed(t, 0)
	if c.neighbourMAC(t, "tv0") == nil {
		t.Fatal("no neighbour entry for the service on tv0 after a connection: the test cannot tell a flush")
	}
	if _, err := c.mover.MoveAddress(service, "tv1"); err != nil {
		t.Fatal(err)
	}
	if mac := c.neighbourMAC(t, "tv0"); mac != nil {
		t.Errorf("tv0 still maps the service to %v after the address left it", mac)
	}
	c.wantServed(t, 1)

	eth0, err := c.guests[0].h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	mac := slices.Clone(eth0.Attrs().HardwareAddr)
	mac[5] ^= 0xff
	if err := c.guests[0].h.LinkSetHardwareAddr(eth0, mac); err != nil {
		t.Fatal(err)
	}
	if _, err := c.mover.MoveAddress(service, "tv0"); err != nil {
		t.Fatal(err)
	}
	c.wantServed(t, 0)
	if got := c.neighbourMAC(t, "tv0"); got.String() != mac.String() {
		t.Errorf("tv0 maps the service to %v, node0's new MAC is %v", got, mac)
	}
}

// tally counts a client's connections by outcome.
type tally struct {
	mu                                 sync.Mutex
	names                              map[string]int
	unreachable, refused, reset, timed int
	other                              []string
}

func (t *tally) add(name string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ne net.Error
	switch {
	case err == nil && strings.HasPrefix(name, "node"):
		t.names[name]++
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH):
		t.unreachable++
	case errors.Is(err, unix.ECONNREFUSED):
		t.refused++
	case errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.EPIPE), errors.Is(err, io.EOF):
		t.reset++
	case errors.As(err, &ne) && ne.Timeout():
		t.timed++
	default:
		if len(t.other) < 5 {
			t.other = append(t.other, fmt.Sprintf("%q, %v", name, err))
		}
	}
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("answers %v, unreachable %d, refused %d, reset %d, timed out %d, other %q",
		t.names, t.unreachable, t.refused, t.reset, t.timed, t.other)
}

// Client loop bounds.
const (
	clientEvery    = time.Millisecond
	clientMax      = 20000
	clientDeadline = 30 * time.Second
	dialTimeout    = 200 * time.Millisecond
)

// clientLoop connects to the service every clientEvery, counting outcomes,
// until stop is closed; it says so if its bounds ended it first.
func clientLoop(started chan<- struct{}, stop <-chan struct{}, tl *tally) error {
	tick := time.NewTicker(clientEvery)
	defer tick.Stop()
	deadline := time.Now().Add(clientDeadline)
	for i := 0; i < clientMax && time.Now().Before(deadline); i++ {
		tl.add(dialName(dialTimeout))
		if i == 0 {
			close(started)
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
	return fmt.Errorf("client loop ran out of its bounds (%d connections, %v) before the moves ended", clientMax, clientDeadline)
}

// A move is atomic: the kernel reports only a replaced route (never a
// deleted one), and a client connecting every millisecond through 20
// moves never finds the address unreachable.
func TestMoveIsAtomic(t *testing.T) {
	c := newCluster(t, 2)
	updates := make(chan netlink.RouteUpdate, 4096)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &c.ns.fd}); err != nil {
		t.Fatal(err)
	}

	tl := &tally{names: map[string]int{}}
	started, stop := make(chan struct{}), make(chan struct{})
	clientErr := make(chan error, 1)
	go func() { clientErr <- c.ns.Do(func() error { return clientLoop(started, stop, tl) }) }()
	select {
	case <-started:
	case err := <-clientErr:
		t.Fatalf("client loop: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("client loop never made its first connection")
	}

	const moves = 20
	var took []time.Duration
	for i := range moves {
		time.Sleep(10 * time.Millisecond)
		d, err := c.mover.MoveAddress(service, c.nodes[(i+1)%2].Link)
		if err != nil {
			close(stop)
			<-clientErr
			t.Fatal(err)
		}
		took = append(took, d)
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	if err := <-clientErr; err != nil {
		t.Fatal(err)
	}
	slices.Sort(took)
	t.Logf("%d moves took min %v, median %v, max %v", moves, took[0], took[moves/2], took[moves-1])
	t.Logf("client: %s", tl)

	var replaced, deleted int
	deadline := time.After(5 * time.Second)
	for replaced < moves {
		select {
		case u := <-updates:
			if u.Dst == nil || u.Dst.String() != service.String()+"/32" {
				continue
			}
			switch u.Type {
			case unix.RTM_NEWROUTE:
				replaced++
			case unix.RTM_DELROUTE:
				deleted++
			}
		case <-deadline:
			t.Fatalf("the kernel reported %d new routes for the service (want %d) and %d deleted", replaced, moves, deleted)
		}
	}
	if deleted != 0 {
		t.Errorf("the service's route was deleted %d times during %d moves: there was a window without a route", deleted, moves)
	}
	if tl.unreachable != 0 {
		t.Errorf("%d connections found the service unreachable during the moves", tl.unreachable)
	}
	if tl.names["node0"] == 0 || tl.names["node1"] == 0 {
		t.Errorf("the client did not reach both nodes: %s", tl)
	}
}
