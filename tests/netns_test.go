package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/netns"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// Host-side networking for the TAP tests (internal/netns): each test makes
// a network namespace of its own and runs vmm inside it.

// newNetns creates a network namespace, deleted when the test ends. It
// skips when the host cannot run TAP tests.
func newNetns(t *testing.T) netns.NS {
	t.Helper()
	need(t)
	if why := netns.Unusable(); why != "" {
		testenv.Missing(t, testenv.Netns, "TAP tests need a network namespace and a tap interface: %s", why)
	}
	ns, err := netns.New("tvtest-")
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

// errVMMExited is the cause of an nsVMM's context ending.
var errVMMExited = errors.New("vmm exited")

// nsVMM is a vmm process running inside a network namespace.
type nsVMM struct {
	cmd       *exec.Cmd
	out, errb bytes.Buffer
	ctx       context.Context // done once the process has exited
	err       error           // cmd.Wait's error, valid after ctx is done
}

// startVMMInNetns starts `vmm args...` inside ns; the test's cleanup kills
// it if it is still running.
func startVMMInNetns(t *testing.T, ns netns.NS, args ...string) *nsVMM {
	t.Helper()
	cmd := ns.Command(context.Background(), need(t), args...)
	cmd.Env = vmmEnv()
	ctx, exited := context.WithCancelCause(context.Background())
	v := &nsVMM{cmd: cmd, ctx: ctx}
	cmd.Stdout, cmd.Stderr = &v.out, &v.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.err = cmd.Wait(); exited(errVMMExited) }()
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

// pingFrom sends ICMP echo requests to dst from namespace ns, one a second,
// until one is answered, ctx ends or limit passes.
func pingFrom(ctx context.Context, ns netns.NS, dst net.IP, limit time.Duration) error {
	var c net.PacketConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	seq := 0
	return netns.Retry(ctx, limit, 200*time.Millisecond, func() error {
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
