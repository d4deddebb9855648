// Package netns makes throw-away network namespaces for the TAP tests and
// the network benchmark: vmm runs inside one (so its tap interface is
// created there), the host side opens its sockets from a thread that has
// joined it, and no byte touches the host's own interfaces.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Unusable says why this host cannot make a namespace with a tap interface
// in it, or "" when it can.
func Unusable() string {
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

// NS is a named network namespace (ip netns).
type NS string

// New creates a namespace named prefix plus a random suffix and brings its
// loopback up. Delete removes it.
func New(prefix string) (NS, error) {
	b := make([]byte, 4)
	rand.Read(b)
	ns := NS(prefix + hex.EncodeToString(b))
	if err := ipCmd("netns", "add", string(ns)); err != nil {
		return "", err
	}
	if err := ns.IP("link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return "", err
	}
	return ns, nil
}

// Delete removes the namespace; a tap in it went with the vmm that made it.
func (ns NS) Delete() error { return ipCmd("netns", "delete", string(ns)) }

// IP runs `ip -n NS args...`.
func (ns NS) IP(args ...string) error {
	return ipCmd(append([]string{"-n", string(ns)}, args...)...)
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Command is `name args...` to be run inside the namespace. ip execs name
// in place, so the process is name's from the start.
func (ns NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
}

// Do runs fn on an OS thread that has joined the namespace, so the sockets
// fn creates live there (and stay there whichever thread uses them later).
// The thread stays locked and ends with its goroutine rather than go back
// to the runtime in the wrong namespace.
func (ns NS) Do(fn func() error) error {
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

// ConfigureTAP waits for tap interface dev to appear in the namespace (vmm
// creates it), gives it addr (CIDR) and brings it up.
func (ns NS) ConfigureTAP(ctx context.Context, dev, addr string) error {
	if err := Retry(ctx, time.Minute, 100*time.Millisecond, func() error { return ns.IP("link", "show", dev) }); err != nil {
		return fmt.Errorf("tap %s never appeared: %w", dev, err)
	}
	if err := ns.IP("addr", "add", addr, "dev", dev); err != nil {
		return err
	}
	return ns.IP("link", "set", dev, "up")
}

// Retry calls try every interval until it succeeds, ctx ends or limit
// passes; then it returns try's last error, with ctx's cause if ctx ended
// (give ctx a cause such as "vmm exited" with context.WithCancelCause).
func Retry(ctx context.Context, limit, interval time.Duration, try func() error) error {
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
			return fmt.Errorf("%v: %w", context.Cause(ctx), err)
		case <-time.After(interval):
		}
	}
}
