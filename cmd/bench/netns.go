package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// netnsUnusable says why this host cannot run the TAP benchmark, or "".
func netnsUnusable() string {
	if os.Geteuid() != 0 {
		return "not root (a network namespace and a tap interface are needed)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "/dev/net/tun is absent"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the ip command (iproute2) is absent"
	}
	return ""
}

// netns is a network namespace the benchmark created; every byte it moves
// stays inside it.
type netns string

// newNetns creates a network namespace with a random tvbench- name and
// brings its loopback up. Delete removes it.
func newNetns() (netns, error) {
	b := make([]byte, 4)
	rand.Read(b)
	ns := netns("tvbench-" + hex.EncodeToString(b))
	if err := ipCmd("netns", "add", string(ns)); err != nil {
		return "", err
	}
	if err := ns.ip("link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return "", err
	}
	return ns, nil
}

// Delete removes the namespace (its tap went with the vmm that made it).
func (ns netns) Delete() error { return ipCmd("netns", "delete", string(ns)) }

// ip runs `ip -n NS args...`.
func (ns netns) ip(args ...string) error {
	return ipCmd(append([]string{"-n", string(ns)}, args...)...)
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// command is name args... to be run inside the namespace.
func (ns netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
}

// do runs fn on an OS thread that has joined the namespace, so the sockets
// fn creates live there. The thread stays locked and ends with its
// goroutine rather than return to the runtime in the wrong namespace.
func (ns netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + string(ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// configureTAP waits for tap interface dev to appear in the namespace (vmm
// creates it), gives it addr (CIDR) and brings it up.
func (ns netns) configureTAP(ctx context.Context, dev, addr string) error {
	if err := retry(ctx, time.Minute, 100*time.Millisecond, func() error { return ns.ip("link", "show", dev) }); err != nil {
		return fmt.Errorf("tap %s never appeared: %w", dev, err)
	}
	if err := ns.ip("addr", "add", addr, "dev", dev); err != nil {
		return err
	}
	return ns.ip("link", "set", dev, "up")
}

// retry calls try every interval until it succeeds, ctx ends or limit
// passes.
func retry(ctx context.Context, limit, interval time.Duration, try func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
