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

// TestTCPTransferAcrossASwitch moves 256 KiB of random data over TCP from
// one guest to another through the switch, and compares checksums taken on
// both sides.
func TestTCPTransferAcrossASwitch(t *testing.T) {
	server, client := pairOnSwitch(t, "t1",
		"52:54:00:00:01:01", "ifconfig eth0 10.0.5.1 netmask 255.255.255.0 up && nc -l -p 5000 > /tmp/got && md5sum /tmp/got",
		"52:54:00:00:01:02", "ifconfig eth0 10.0.5.2 netmask 255.255.255.0 up && dd if=/dev/urandom of=/tmp/data bs=1024 count=256 2>/dev/null && md5sum /tmp/data && "+
			"i=0; until nc 10.0.5.1 5000 < /tmp/data; do i=$((i+1)); [ $i -lt 90 ] || exit 9; sleep 1; done")
	sum := func(r result, file string) string {
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[1] == file {
				return f[0]
			}
		}
		return ""
	}
	sent, got := sum(client, "/tmp/data"), sum(server, "/tmp/got")
	if client.code != 0 || server.code != 0 || sent == "" || sent != got {
		t.Fatalf("sent md5 %q, received md5 %q\nclient: %s\nserver: %s", sent, got, client, server)
	}
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
