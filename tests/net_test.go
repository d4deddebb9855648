package tests

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTwoVMsOnASwitch boots two guests whose NICs share a virtual switch
// (two vmm processes meeting on its unix socket) and pings one from the
// other. The traffic never leaves the two processes.
func TestTwoVMsOnASwitch(t *testing.T) {
	server, client := pairOnSwitch(t, "t0",
		"52:54:00:00:00:01", "ifconfig eth0 10.0.3.1 netmask 255.255.255.0 up && ping -c 1 -w 120 10.0.3.2 >/dev/null && sleep 3 && echo server-done",
		"52:54:00:00:00:02", "ifconfig eth0 10.0.3.2 netmask 255.255.255.0 up && ping -c 1 -w 120 10.0.3.1")
	if client.code != 0 || !strings.Contains(client.stdout, "1 packets received") {
		t.Errorf("ping across the switch failed: %s", client)
	}
	if server.code != 0 || !strings.Contains(server.stdout, "server-done") {
		t.Errorf("server guest: %s", server)
	}
}

// TestTCPTransferBothWaysAcrossASwitch moves 256 KiB of random data over TCP
// through the switch from one guest to the other, then another 256 KiB
// back, and compares checksums taken on both sides of each transfer. One
// pair of boots serves both directions.
func TestTCPTransferBothWaysAcrossASwitch(t *testing.T) {
	const makeData = "dd if=/dev/urandom of=/tmp/data bs=1024 count=256 2>/dev/null && md5sum /tmp/data"
	// send retries while the peer is not listening yet (it may still be booting).
	send := func(addr string) string {
		return "i=0; until nc " + addr + " < /tmp/data; do i=$((i+1)); [ $i -lt 90 ] || exit 9; sleep 1; done"
	}
	server, client := pairOnSwitch(t, "t1",
		"52:54:00:00:01:01", "ifconfig eth0 10.0.5.1 netmask 255.255.255.0 up && nc -l -p 5000 > /tmp/got && md5sum /tmp/got && "+
			makeData+" || exit 8; "+send("10.0.5.2 5001"),
		"52:54:00:00:01:02", "ifconfig eth0 10.0.5.2 netmask 255.255.255.0 up && "+makeData+" || exit 8; "+
			send("10.0.5.1 5000")+"; nc -l -p 5001 > /tmp/got && md5sum /tmp/got")
	if client.code != 0 || server.code != 0 {
		t.Fatalf("a guest's script failed\nclient: %s\nserver: %s", client, server)
	}
	for _, d := range []struct {
		name     string
		from, to result
	}{{"client -> server", client, server}, {"server -> client", server, client}} {
		sent, got := guestMD5(d.from, "/tmp/data"), guestMD5(d.to, "/tmp/got")
		if sent == "" || sent != got {
			t.Errorf("%s: sent md5 %q, received md5 %q\nclient: %s\nserver: %s", d.name, sent, got, client, server)
		}
	}
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

// pairOnSwitch boots two guests on one virtual switch: the server's vmm
// starts first (and so runs the switch), the client's two seconds later.
// Each runs its shell script; both results come back.
func pairOnSwitch(t *testing.T, sw, serverMAC, serverScript, clientMAC, clientScript string) (server, client result) {
	t.Helper()
	t.Setenv("TRACEVISOR_SWITCH_DIR", t.TempDir())
	need(t)
	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		server, serverErr = runVMM(t, "", "run", "--net", "switch:"+sw+",mac="+serverMAC, "--", "sh", "-c", serverScript)
	}()
	time.Sleep(2 * time.Second) // let the first vmm own the switch
	client = vmm(t, "", "run", "--net", "switch:"+sw+",mac="+clientMAC, "--", "sh", "-c", clientScript)
	wg.Wait()
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return server, client
}
