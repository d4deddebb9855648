package tests

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/netns"
)

// TestTAPHostGuest boots a guest whose NIC is a tap interface in a network
// namespace of the test's own and checks traffic both ways between the host
// side (sockets in that namespace) and the guest: a ping each way, then
// 256 KiB of random data over TCP each way: host -> guest checked by the
// guest's md5sum, guest -> host (the guest sends its /dev/vda, an image the
// test wrote) checked byte for byte.
func TestTAPHostGuest(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	const hostIP, guestIP = "10.0.2.1", "10.0.2.15"
	var ln *net.TCPListener
	if err := ns.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{Port: 5001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	toGuest := randomBytes(t, 256<<10)
	fromGuestWant := randomBytes(t, 256<<10)
	img := writeImage(t, fromGuestWant)

	// The guest pings the host, receives on 5000, then sends on 5001; the
	// host does the same steps in the same order, so each side waits for
	// the other (a guest boot takes tens of seconds here).
	script := "ifconfig eth0 " + guestIP + " netmask 255.255.255.0 up && ping -c 1 -w 120 " + hostIP + " && " +
		"nc -l -p 5000 > /tmp/got && md5sum /tmp/got || exit 8; " + sendScript(hostIP+" 5001", "/dev/vda")
	start := time.Now()
	v := startVMMInNetns(t, ns, "run", "--net", "tap:tv0", "--disk", img+",ro", "--", "sh", "-c", script)
	if err := ns.ConfigureTAP(v.ctx, "tv0", hostIP+"/24"); err != nil {
		v.fatal(t, err)
	}
	if err := pingFrom(v.ctx, ns, net.ParseIP(guestIP), 5*time.Minute); err != nil {
		v.fatal(t, fmt.Errorf("host -> guest ping: %w", err))
	}
	t.Logf("host -> guest ping answered after %.1fs", time.Since(start).Seconds())
	if err := sendTo(v.ctx, ns, guestIP+":5000", toGuest); err != nil {
		v.fatal(t, fmt.Errorf("host -> guest TCP: %w", err))
	}
	t.Logf("host -> guest 256 KiB sent and closed after %.1fs", time.Since(start).Seconds())
	fromGuest, err := receiveOne(v.ctx, ln, 3*time.Minute)
	if err != nil {
		v.fatal(t, fmt.Errorf("guest -> host TCP: %w", err))
	}
	t.Logf("guest -> host %d bytes received after %.1fs", len(fromGuest), time.Since(start).Seconds())
	r, err := v.wait(3 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "1 packets received") {
		t.Fatalf("guest -> host ping or the guest's script failed: %s", r)
	}
	if got, want := guestMD5(r, "/tmp/got"), md5hex(toGuest); got != want {
		t.Errorf("host -> guest: sent md5 %s, guest received md5 %q", want, got)
	}
	if !bytes.Equal(fromGuest, fromGuestWant) {
		t.Errorf("guest -> host: the host received %d bytes (md5 %s), not the guest's %d-byte /dev/vda (md5 %s)",
			len(fromGuest), md5hex(fromGuest), len(fromGuestWant), md5hex(fromGuestWant))
	}
}

// sendTo connects from namespace ns to addr (retrying while nothing
// listens there yet), sends data, half-closes and waits for the peer to
// close: then the peer has read everything.
func sendTo(ctx context.Context, ns netns.NS, addr string, data []byte) error {
	c, err := dialFrom(ctx, ns, addr, 3*time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	if _, err := c.Write(data); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}

// dialFrom connects from namespace ns to addr, retrying while nothing
// listens there yet, for up to limit.
func dialFrom(ctx context.Context, ns netns.NS, addr string, limit time.Duration) (*net.TCPConn, error) {
	var c *net.TCPConn
	err := netns.Retry(ctx, limit, 250*time.Millisecond, func() error {
		return ns.Do(func() error {
			conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
			if err == nil {
				c = conn.(*net.TCPConn)
			}
			return err
		})
	})
	return c, err
}

// receiveOne accepts one connection on ln within limit (or a few seconds
// after vmm exits) and returns everything read from it.
func receiveOne(ctx context.Context, ln *net.TCPListener, limit time.Duration) ([]byte, error) {
	ln.SetDeadline(time.Now().Add(limit))
	stop := context.AfterFunc(ctx, func() { ln.SetDeadline(time.Now().Add(5 * time.Second)) })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	return io.ReadAll(c)
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}
