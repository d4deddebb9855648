package tests

import (
	"crypto/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTwoVMsOnASwitch boots two guests whose NICs share a virtual switch
// (two vmm processes meeting on its unix socket) and pings each from the
// other. The traffic never leaves the two processes. Either guest may boot
// first, so each pings until answered, then stays up until it has answered
// the other's ping.
func TestTwoVMsOnASwitch(t *testing.T) {
	script := func(self, peer string) string {
		return "ifconfig eth0 " + self + " netmask 255.255.255.0 up || exit 8; " +
			pingScript(peer) + " && " + awaitPingedScript + " && echo pinged-both-ways"
	}
	server, client := pairOnSwitch(t, "t0",
		guestSpec{mac: "52:54:00:00:00:01", script: script("10.0.3.1", "10.0.3.2")},
		guestSpec{mac: "52:54:00:00:00:02", script: script("10.0.3.2", "10.0.3.1")})
	for _, g := range []result{server, client} {
		if g.code != 0 || !strings.Contains(g.stdout, "1 packets received") || !strings.Contains(g.stdout, "pinged-both-ways") {
			t.Errorf("a guest's ping, or its peer's, failed: %s", g)
		}
	}
}

// pingScript pings ip once a try until it answers, for up to 30 tries: a
// peer still booting makes busybox ping give up (host unreachable).
func pingScript(ip string) string { return untilScript("ping -c 1 -w 5 "+ip, 30) }

// awaitPingedScript waits, up to two minutes, until this guest has answered
// an ICMP echo request (OutEchoReps in /proc/net/snmp).
var awaitPingedScript = untilScript(`[ "$(awk '/^Icmp:/ { if (h) { for (f = 1; f <= NF; f++) if (k[f] == "OutEchoReps") print $f } else { for (f = 1; f <= NF; f++) k[f] = $f; h = 1 } }' /proc/net/snmp)" -gt 0 ]`, 120)

// untilScript runs cond once a second until it succeeds; after tries
// failures the guest's script exits 9.
func untilScript(cond string, tries int) string {
	return "i=0; until " + cond + "; do i=$((i+1)); [ $i -lt " + strconv.Itoa(tries) + " ] || exit 9; sleep 1; done"
}

// TestTCPTransferBothWaysAcrossASwitch moves 256 KiB of random data over TCP
// through the switch from one guest to the other, then another 256 KiB back
// (one pair of boots serves both directions). Each sender sends its
// /dev/vda, an image the test wrote; each receiver's md5sum of what arrived
// must equal the host's of that image.
func TestTCPTransferBothWaysAcrossASwitch(t *testing.T) {
	toServer, toClient := randomBytes(t, 256<<10), randomBytes(t, 256<<10)
	server, client := pairOnSwitch(t, "t1",
		guestSpec{mac: "52:54:00:00:01:01", disk: writeImage(t, toClient),
			script: "ifconfig eth0 10.0.5.1 netmask 255.255.255.0 up && nc -l -p 5000 > /tmp/got && md5sum /tmp/got || exit 8; " +
				sendScript("10.0.5.2 5001", "/dev/vda")},
		guestSpec{mac: "52:54:00:00:01:02", disk: writeImage(t, toServer),
			script: "ifconfig eth0 10.0.5.2 netmask 255.255.255.0 up || exit 8; " + sendScript("10.0.5.1 5000", "/dev/vda") +
				"; nc -l -p 5001 > /tmp/got && md5sum /tmp/got"})
	if client.code != 0 || server.code != 0 {
		t.Fatalf("a guest's script failed\nclient: %s\nserver: %s", client, server)
	}
	if got, want := guestMD5(server, "/tmp/got"), md5hex(toServer); got != want {
		t.Errorf("client -> server: sent md5 %s, received md5 %q\nserver: %s", want, got, server)
	}
	if got, want := guestMD5(client, "/tmp/got"), md5hex(toClient); got != want {
		t.Errorf("server -> client: sent md5 %s, received md5 %q\nclient: %s", want, got, client)
	}
}

// guestSpec is one guest of a pair on a switch: its NIC's MAC, its shell
// script, and optionally a raw image attached read-only as /dev/vda.
type guestSpec struct{ mac, disk, script string }

func (g guestSpec) args(sw string) []string {
	args := []string{"run", "--net", "switch:" + sw + ",mac=" + g.mac}
	if g.disk != "" {
		args = append(args, "--disk", g.disk+",ro")
	}
	return append(args, "--", "sh", "-c", g.script)
}

// pairOnSwitch boots two guests on one virtual switch: the server's vmm
// starts first (and so runs the switch), the client's two seconds later.
// Each runs its shell script; both results come back.
func pairOnSwitch(t *testing.T, sw string, serverSpec, clientSpec guestSpec) (server, client result) {
	t.Helper()
	t.Setenv("TRACEVISOR_SWITCH_DIR", t.TempDir())
	need(t)
	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		server, serverErr = runVMM(t, "", serverSpec.args(sw)...)
	}()
	time.Sleep(2 * time.Second) // let the first vmm own the switch
	client = vmm(t, "", clientSpec.args(sw)...)
	wg.Wait()
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return server, client
}

// sendScript is guest shell that sends file to addr ("IP PORT") with nc,
// retrying once a second for 90 s while nothing listens there yet (the
// peer may still be booting); it exits 9 when it gives up.
func sendScript(addr, file string) string {
	return untilScript("nc "+addr+" < "+file, 90)
}

// guestMD5 returns the sum a guest's `md5sum file` printed, or "".
func guestMD5(r result, file string) string {
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == file {
			return f[0]
		}
	}
	return ""
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeImage writes data to a raw image in the test's temporary directory.
// Guests send such images (from /dev/vda): reading /dev/urandom instead
// costs the emulated guest kernel seconds per 256 KiB.
func writeImage(t *testing.T, data []byte) string {
	f, err := os.CreateTemp(t.TempDir(), "net-*.img")
	if err == nil {
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
