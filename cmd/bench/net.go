package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/internal/netns"
)

const (
	benchHostIP  = "10.0.2.1"
	benchGuestIP = "10.0.2.15"
	loopbackMiB  = 256 // the baseline moves more: a 1 MiB loopback transfer is too quick to time
)

// benchNet measures virtio-net TCP throughput between the host and a guest
// whose NIC is a tap interface in a network namespace the benchmark creates
// (and deletes): sizeMiB host -> guest, then sizeMiB guest -> host, each
// timed on the host clock from the connection's first byte to the peer's
// close. The baseline, measured in the same run, is TCP over the
// namespace's loopback. The guest sends from tmpfs and receives into it.
func benchNet(sizeMiB int) (err error) {
	if why := netns.Unusable(); why != "" {
		fmt.Println("virtio-net: skipped:", why)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted (the guest and the netns are gone): %w", err)
		}
	}()
	ns, err := netns.New("tvbench-")
	if err != nil {
		return err
	}
	defer func() {
		if err := ns.Delete(); err != nil {
			fmt.Fprintln(os.Stderr, "bench virtio:", err)
		}
	}()
	base, err := loopbackMiBps(ns)
	if err != nil {
		return fmt.Errorf("loopback baseline: %w", err)
	}

	dir, err := os.MkdirTemp("", "bench-net")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data := make([]byte, sizeMiB<<20)
	rand.Read(data)
	img := filepath.Join(dir, "send.img")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		return err
	}
	var ln *net.TCPListener
	if err := ns.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{Port: 5001})
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()

	script := "ifconfig eth0 " + benchGuestIP + " netmask 255.255.255.0 up && cat /dev/vda > /tmp/data && " +
		"nc -l -p 5000 > /tmp/got && echo GOT $(wc -c < /tmp/got) && rm /tmp/got || exit 8; " +
		"i=0; until nc " + benchHostIP + " 5001 < /tmp/data; do i=$((i+1)); [ $i -lt 90 ] || exit 9; sleep 1; done"
	var out bytes.Buffer
	cmd := ns.Command(ctx, vmmBinary(), "run", "--net", "tap:tvb0", "--disk", img+",ro", "--", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	vctx, exited := context.WithCancelCause(ctx)
	var werr error
	go func() { werr = cmd.Wait(); exited(errors.New("vmm exited")) }()
	defer func() { cmd.Process.Kill(); <-vctx.Done() }() // before the namespace goes

	if err := ns.ConfigureTAP(vctx, "tvb0", benchHostIP+"/24"); err != nil {
		return err
	}
	var c *net.TCPConn
	if err := netns.Retry(vctx, 5*time.Minute, 200*time.Millisecond, func() error {
		return ns.Do(func() (err error) { c, err = dialTCP(benchGuestIP + ":5000"); return err })
	}); err != nil {
		return fmt.Errorf("connecting to the guest: %w\n%s", err, out.String())
	}
	toGuest, err := timeSend(c, data, 1)
	if err != nil {
		return fmt.Errorf("host -> guest: %w", err)
	}
	fromGuest, err := timeReceive(vctx, ln, data)
	if err != nil {
		return fmt.Errorf("guest -> host: %w", err)
	}
	select {
	case <-vctx.Done():
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("the guest did not power off\n%s", out.String())
	}
	if werr != nil || !guestGot(out.String(), len(data)) {
		return fmt.Errorf("guest run: %v (want it to have received %d bytes)\n%s", werr, len(data), out.String())
	}
	mib := float64(sizeMiB)
	fmt.Printf("virtio-net TCP, host <-> guest over a tap in a private netns, %d MiB each way (host clock)\n", sizeMiB)
	fmt.Printf("  host->guest  %10.3f MiB/s  (%.2f s)\n", mib/toGuest, toGuest)
	fmt.Printf("  guest->host  %10.3f MiB/s  (%.2f s)\n", mib/fromGuest, fromGuest)
	fmt.Printf("  loopback     %10.1f MiB/s  (host TCP over lo in the same netns, %d MiB)\n", base, loopbackMiB)
	fmt.Printf("  ratio        %10.6f  host->guest/loopback\n", mib/toGuest/base)
	fmt.Printf("  ratio        %10.6f  guest->host/loopback\n", mib/fromGuest/base)
	return nil
}

// loopbackMiBps times a loopbackMiB TCP transfer over the namespace's lo.
func loopbackMiBps(ns netns.NS) (float64, error) {
	var ln *net.TCPListener
	var c *net.TCPConn
	err := ns.Do(func() (err error) {
		if ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return err
		}
		c, err = dialTCP(ln.Addr().String())
		return err
	})
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, s)
			s.Close()
		}
	}()
	secs, err := timeSend(c, make([]byte, 1<<20), loopbackMiB)
	return loopbackMiB / secs, err
}

// guestGot says whether the guest's output has the line "GOT n".
func guestGot(out string, n int) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "GOT" && f[1] == strconv.Itoa(n) {
			return true
		}
	}
	return false
}

func dialTCP(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// timeSend writes data to c reps times, half-closes and reads until the
// peer closes, which it does once it has read everything; it returns the
// seconds taken and closes c.
func timeSend(c *net.TCPConn, data []byte, reps int) (float64, error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	for i := 0; i < reps; i++ {
		if _, err := c.Write(data); err != nil {
			return 0, err
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// timeReceive accepts one connection on ln and reads it to its end; the
// bytes must equal want. It returns the seconds from the first byte.
func timeReceive(ctx context.Context, ln *net.TCPListener, want []byte) (float64, error) {
	ln.SetDeadline(time.Now().Add(5 * time.Minute))
	// A guest that exits has sent all it will: a few seconds' grace, then stop.
	stop := context.AfterFunc(ctx, func() { ln.SetDeadline(time.Now().Add(5 * time.Second)) })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		return 0, err
	}
	start := time.Now()
	rest, err := io.ReadAll(c)
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, err
	}
	if got := append(first, rest...); !bytes.Equal(got, want) {
		return 0, fmt.Errorf("received %d bytes that differ from the %d sent", len(got), len(want))
	}
	return secs, nil
}
