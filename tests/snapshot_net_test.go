package tests

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	vm "github.com/tracevisor/tracevisor/vmm"
)

// TestSnapshotKeepsTCP: a guest receives a TCP stream from the host over a
// tap; halfway, it is snapshotted paused and its vmm stopped (the tap goes
// with it). The clone, restored on a new tap of the same name, goes on
// with the same connection: the host sends the rest and closes, and the
// md5 of what the guest wrote down is that of all the host sent, nothing
// lost or doubled. It holds only if the guest's neighbour entry for the
// host outlives the tap: vmm gives a tap it creates a MAC made from the
// guest's.
func TestSnapshotKeepsTCP(t *testing.T) {
	t.Parallel()
	ns := newNetns(t)
	const hostIP, guestIP = "10.0.6.1", "10.0.6.15"
	sock := filepath.Join(t.TempDir(), "vm.sock")
	snap := filepath.Join(t.TempDir(), "snap")
	script := "ifconfig eth0 " + guestIP + " netmask 255.255.255.0 up && nc -l -p 5000 > /tmp/got && md5sum /tmp/got"
	orig := startVMMInNetns(t, ns, "run", "--api", sock, "--net", "tap:tv0", "--", "sh", "-c", script)
	if err := ns.ConfigureTAP(orig.ctx, "tv0", hostIP+"/24"); err != nil {
		orig.fatal(t, err)
	}
	c, err := dialFrom(orig.ctx, ns, guestIP+":5000", 5*time.Minute)
	if err != nil {
		orig.fatal(t, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	before, after := randomBytes(t, 96<<10), randomBytes(t, 96<<10)
	if _, err := c.Write(before); err != nil {
		orig.fatal(t, err)
	}
	time.Sleep(2 * time.Second) // some of it reaches the guest's file, some may still be in flight

	if _, err := api.Snapshot(sock, snap, true); err != nil {
		orig.fatal(t, err)
	}
	if _, err := api.Stop(sock, "snapshot taken"); err != nil {
		orig.fatal(t, err)
	}
	if r, err := orig.wait(time.Minute); err != nil || r.code != vm.ExitStopped {
		t.Fatalf("the original vmm after its stop: %s, %v; want exit %d", r, err, vm.ExitStopped)
	}

	clone := startVMMInNetns(t, ns, "run", "--restore", snap, "--net", "tap:tv0")
	if err := ns.ConfigureTAP(clone.ctx, "tv0", hostIP+"/24"); err != nil {
		clone.fatal(t, err)
	}
	if _, err := c.Write(after); err != nil {
		clone.fatal(t, err)
	}
	if err := c.CloseWrite(); err != nil {
		clone.fatal(t, err)
	}
	// The guest's nc closes once it has read everything.
	ctx, cancel := context.WithTimeout(clone.ctx, 3*time.Minute)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.Copy(io.Discard, c); err != nil {
		clone.fatal(t, err)
	}
	r, err := clone.wait(3 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := guestMD5(r, "/tmp/got"), md5hex(append(before, after...)); r.code != 0 || got != want {
		t.Fatalf("the clone wrote md5 %q (exit %d); want %s, that of the %d bytes sent before the snapshot and the %d after:\n%s",
			got, r.code, want, len(before), len(after), r)
	}
}
