package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Host-side networking for the TAP tests. Traffic never touches the host's
// own interfaces: each test makes a network namespace of its own, runs vmm
// inside it (so the tap interface is created there), and opens its host-side
// sockets from a thread that has joined it.

// newNetns creates a network namespace with a random tvtest- name, deleted
// when the test ends. It skips when the host cannot run TAP tests.
func newNetns(t *testing.T) string {
	t.Helper()
	need(t)
	switch {
	case os.Geteuid() != 0:
		t.Skip("not root: a TAP test needs to create a network namespace and a tap interface")
	case !exists("/dev/net/tun"):
		t.Skip("/dev/net/tun is absent: the TAP backend cannot be tested here")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the ip command (iproute2) is absent: cannot create a network namespace")
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "tvtest-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
		}
	})
	return ns
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// inNetns runs fn on an OS thread that has joined network namespace ns, so
// the sockets fn creates live there (and stay there whichever thread uses
// them later). The thread is never unlocked: it ends with its goroutine
// instead of going back to the runtime in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
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

// nsVMM is a vmm process running inside a network namespace.
type nsVMM struct {
	cmd       *exec.Cmd
	out, errb bytes.Buffer
	ctx       context.Context // done once the process has exited
	err       error           // cmd.Wait's error, valid after ctx is done
}

// startVMMInNetns starts `vmm args...` inside ns; the test's cleanup kills
// it if it is still running.
func startVMMInNetns(t *testing.T, ns string, args ...string) *nsVMM {
	t.Helper()
	cmd := vmmCommand(t, args...)
	cmd.Args = append([]string{"ip", "netns", "exec", ns}, cmd.Args...)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Path = ip // ip execs vmm in place: the process is vmm from here on
	ctx, exited := context.WithCancel(context.Background())
	v := &nsVMM{cmd: cmd, ctx: ctx}
	cmd.Stdout, cmd.Stderr = &v.out, &v.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.err = cmd.Wait(); exited() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-ctx.Done()
	})
	return v
}

// wait waits up to limit for vmm to exit and returns its result.
func (v *nsVMM) wait(limit time.Duration) (result, error) {
	select {
	case <-v.ctx.Done():
	case <-time.After(limit):
		v.cmd.Process.Kill()
		<-v.ctx.Done()
		return result{}, fmt.Errorf("vmm did not finish in %v\nstdout:\n%s\nstderr:\n%s", limit, v.out.String(), v.errb.String())
	}
	r := result{stdout: v.out.String(), stderr: v.errb.String()}
	var err error
	r.code, err = exitCode(v.err)
	return r, err
}

// fatal ends the test with err and whatever the guest printed so far.
func (v *nsVMM) fatal(t *testing.T, err error) {
	t.Helper()
	v.cmd.Process.Kill()
	<-v.ctx.Done()
	t.Fatalf("%v\nguest stdout:\n%s\nvmm stderr:\n%s", err, v.out.String(), v.errb.String())
}

// retry calls try every interval until it succeeds, ctx ends or limit
// passes; it returns try's last error in the latter cases.
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
			return fmt.Errorf("vmm exited: %w", err)
		case <-time.After(interval):
		}
	}
}

// configureTAP waits for vmm to create tap interface dev in ns, then gives
// it addr (CIDR) and brings it up.
func configureTAP(ctx context.Context, ns, dev, addr string) error {
	ipn := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := retry(ctx, time.Minute, 100*time.Millisecond, func() error { return ipn("link", "show", dev) }); err != nil {
		return fmt.Errorf("tap %s never appeared: %w", dev, err)
	}
	if err := ipn("addr", "add", addr, "dev", dev); err != nil {
		return err
	}
	return ipn("link", "set", dev, "up")
}

// pingFrom sends ICMP echo requests to dst from namespace ns, one a second,
// until one is answered, ctx ends or limit passes.
func pingFrom(ctx context.Context, ns string, dst net.IP, limit time.Duration) error {
	var c net.PacketConn
	if err := inNetns(ns, func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	seq := 0
	return retry(ctx, limit, 200*time.Millisecond, func() error {
		seq++
		if _, err := c.WriteTo(icmpEcho(id, seq), &net.IPAddr{IP: dst}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("no echo reply from %v: %w", dst, err)
			}
			b := buf[:n] // the IPv4 header is already stripped
			if n >= 8 && b[0] == 0 && from.(*net.IPAddr).IP.Equal(dst) &&
				int(b[4])<<8|int(b[5]) == id && int(b[6])<<8|int(b[7]) == seq&0xffff {
				return nil
			}
		}
	})
}

// icmpEcho is an ICMP echo request (RFC 792) with its checksum.
func icmpEcho(id, seq int) []byte {
	b := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}
	b = append(b, "tracevisor"...)
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(b[i]) << 8
		if i+1 < len(b) {
			sum += uint32(b[i+1])
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	b[2], b[3] = byte(^sum>>8), byte(^sum)
	return b
}
