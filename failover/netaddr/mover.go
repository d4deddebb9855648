package netaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoRoute: the namespace has no route for the service address.
var ErrNoRoute = errors.New("no route for the service address")

// Mover points a service address's host route at one link of a
// namespace. Safe for concurrent use: moves happen one at a time.
type Mover struct {
	ns *Namespace
	mu sync.Mutex
}

// NewMover returns a Mover for routes in ns.
func NewMover(ns *Namespace) *Mover { return &Mover{ns: ns} }

// MoveAddress points the route for service at toLink (service/32 dev
// toLink scope link, in the main table), replacing the route in one step
// so that there is no moment without one, and drops the neighbour entries
// for service on toLink and on the link the route left. It returns how
// long that took. A link that is absent or down is an error, and the
// route stays as it was.
func (m *Mover) MoveAddress(service netip.Addr, toLink string) (time.Duration, error) {
	start := time.Now()
	dst, err := hostPrefix(service)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.ns.h
	to, err := h.LinkByName(toLink)
	if err != nil {
		return 0, fmt.Errorf("netaddr: move %v to %s: no such link in namespace %s: %w", service, toLink, m.ns.name, err)
	}
	from := 0
	if r, err := m.route(service); err == nil {
		from = r.LinkIndex
	} else if !errors.Is(err, ErrNoRoute) {
		return 0, fmt.Errorf("netaddr: move %v to %s: %w", service, toLink, err)
	}
	// Nothing uses toLink's entry until the route points there.
	if err := m.forget(service, to.Attrs().Index); err != nil {
		return 0, fmt.Errorf("netaddr: move %v to %s: %w", service, toLink, err)
	}
	route := &netlink.Route{LinkIndex: to.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK,
		Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_STATIC}
	if err := h.RouteReplace(route); err != nil {
		return 0, fmt.Errorf("netaddr: move %v to %s: route: %w", service, toLink, err)
	}
	if from != 0 && from != to.Attrs().Index {
		if err := m.forget(service, from); err != nil {
			return time.Since(start), fmt.Errorf("netaddr: moved %v to %s, but: %w", service, toLink, err)
		}
	}
	return time.Since(start), nil
}

// CurrentLink returns the link that the route for service points at, or
// an error wrapping ErrNoRoute when there is none.
func (m *Mover) CurrentLink(service netip.Addr) (string, error) {
	r, err := m.route(service)
	if err != nil {
		return "", err
	}
	l, err := m.ns.h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return "", fmt.Errorf("netaddr: route for %v: link %d: %w", service, r.LinkIndex, err)
	}
	return l.Attrs().Name, nil
}

// route returns the main table's route for exactly service/32 (/128).
func (m *Mover) route(service netip.Addr) (netlink.Route, error) {
	dst, err := hostPrefix(service)
	if err != nil {
		return netlink.Route{}, err
	}
	rs, err := m.ns.h.RouteListFiltered(family(service), &netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return netlink.Route{}, fmt.Errorf("netaddr: routes in namespace %s: %w", m.ns.name, err)
	}
	if len(rs) == 0 {
		return netlink.Route{}, fmt.Errorf("netaddr: %v in namespace %s: %w", service, m.ns.name, ErrNoRoute)
	}
	return rs[0], nil
}

// forget deletes the neighbour entry for service on link index, if any.
func (m *Mover) forget(service netip.Addr, index int) error {
	err := m.ns.h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: family(service), IP: service.Unmap().AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netaddr: forget the neighbour %v on link %d: %w", service, index, err)
	}
	return nil
}

// hostPrefix is service as a one-address net.IPNet.
func hostPrefix(service netip.Addr) (*net.IPNet, error) {
	if !service.IsValid() || service.IsUnspecified() || service.Zone() != "" {
		return nil, fmt.Errorf("netaddr: %q is not a service address", service)
	}
	service = service.Unmap()
	return &net.IPNet{IP: service.AsSlice(), Mask: net.CIDRMask(service.BitLen(), service.BitLen())}, nil
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// Service is one cluster's service address and its nodes' links, with
// the MoveAddress that failover.Actions has: by node name.
type Service struct {
	Mover *Mover
	Addr  netip.Addr
	Links map[string]string // node name → its link in the Mover's namespace
}

// MoveAddress moves s.Addr to node's link.
func (s *Service) MoveAddress(ctx context.Context, node string) error {
	link, ok := s.Links[node]
	if !ok {
		return fmt.Errorf("netaddr: node %q has no link", node)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.Mover.MoveAddress(s.Addr, link)
	return err
}
