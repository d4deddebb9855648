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
	t.Setenv("TRACEVISOR_SWITCH_DIR", t.TempDir())
	need(t)
	var wg sync.WaitGroup
	var server result
	var serverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		server, serverErr = runVMM(t, "", "run", "--net", "switch:t0,mac=52:54:00:00:00:01", "--", "sh", "-c",
			"ifconfig eth0 10.0.3.1 netmask 255.255.255.0 up && ping -c 1 -w 120 10.0.3.2 >/dev/null && sleep 3 && echo server-done")
	}()
	time.Sleep(2 * time.Second) // let the first vmm own the switch
	client := vmm(t, "", "run", "--net", "switch:t0,mac=52:54:00:00:00:02", "--", "sh", "-c",
		"ifconfig eth0 10.0.3.2 netmask 255.255.255.0 up && ping -c 1 -w 120 10.0.3.1")
	wg.Wait()
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	if client.code != 0 || !strings.Contains(client.stdout, "1 packets received") {
		t.Errorf("ping across the switch failed: %s", client)
	}
	if server.code != 0 || !strings.Contains(server.stdout, "server-done") {
		t.Errorf("server guest: %s", server)
	}
}
