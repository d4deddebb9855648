package netaddr

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Namespace is a named network namespace (one `ip netns` lists) and a
// netlink handle into it, usable from any goroutine.
type Namespace struct {
	name string
	fd   netns.NsHandle // open on the namespace for as long as the Namespace is
	h    *netlink.Handle
}

// Create makes a network namespace named prefix plus a random suffix,
// with its loopback up. Delete removes it.
func Create(prefix string) (*Namespace, error) {
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	type made struct {
		fd  netns.NsHandle
		err error
	}
	c := make(chan made, 1)
	go func() {
		// NewNamed moves this thread into the new namespace; the
		// thread stays locked and ends with the goroutine.
		runtime.LockOSThread()
		fd, err := netns.NewNamed(name)
		c <- made{fd, err}
	}()
	m := <-c
	if m.err != nil {
		return nil, fmt.Errorf("netaddr: create namespace %s: %w", name, m.err)
	}
	n, err := attach(name, m.fd)
	if err != nil {
		netns.DeleteNamed(name)
		return nil, err
	}
	lo, err := n.h.LinkByName("lo")
	if err == nil {
		err = n.h.LinkSetUp(lo)
	}
	if err != nil {
		n.Delete()
		return nil, fmt.Errorf("netaddr: namespace %s: bring lo up: %w", name, err)
	}
	return n, nil
}

// Open attaches to an existing named namespace, such as one made by
// `ip netns add NAME`. Close lets it go; Delete removes it.
func Open(name string) (*Namespace, error) {
	fd, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("netaddr: open namespace %s: %w", name, err)
	}
	return attach(name, fd)
}

func attach(name string, fd netns.NsHandle) (*Namespace, error) {
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("netaddr: netlink in namespace %s: %w", name, err)
	}
	return &Namespace{name: name, fd: fd, h: h}, nil
}

// Name returns the namespace's name (for `ip netns exec NAME`).
func (n *Namespace) Name() string { return n.name }

// Close closes the netlink handle and the namespace file; the namespace
// stays.
func (n *Namespace) Close() error {
	n.h.Close()
	return n.fd.Close()
}

// Delete closes n and removes the namespace. Its links go when the last
// process in it (a vmm) exits.
func (n *Namespace) Delete() error {
	return errors.Join(n.Close(), netns.DeleteNamed(n.name))
}

// Do runs fn on an OS thread that has joined the namespace, so the sockets
// fn makes live there (and stay there whichever thread uses them later).
// The thread stays locked and ends with its goroutine rather than go back
// to the runtime in the wrong namespace.
func (n *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.fd); err != nil {
			errc <- fmt.Errorf("netaddr: enter namespace %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
