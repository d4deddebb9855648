package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/pcmklab"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// TestPacemakerLab checks the lab itself, without VMs: two nodes come up
// from the seeded CIB, IPaddr2 moves the service address when its group
// is told it failed, and Pacemaker's fencer runs fence_tracevisor (the
// project's binary through the node's overlay) and fences a node.
func TestPacemakerLab(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that stands up a Pacemaker cluster")
	}
	if why := pcmklab.Unusable(); why != "" {
		testenv.Missing(t, testenv.Pacemaker, "the Pacemaker lab needs %s", why)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "tracevisor")
	os.MkdirAll(state, 0o755)
	cib := pcmklab.Properties + pcmklab.FenceCRM([]string{"n1", "n2"}, state) +
		"primitive d ocf:pacemaker:Dummy op monitor interval=10s\n" +
		"primitive ip ocf:heartbeat:IPaddr2 params ip=10.79.0.150 cidr_netmask=24 nic=uplink op monitor interval=10s\n" +
		"group g d ip\n"
	lab, err := pcmklab.New(context.Background(), pcmklab.Config{Dir: dir, CIB: cib, Agents: agentsDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range lab.Nodes() {
				b, _ := os.ReadFile(filepath.Join(n.Dir(), "log-pacemaker", "pacemaker.log"))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("%s's pacemaker.log (tail):\n%s", n.Name, b)
			}
		}
		if err := lab.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("two nodes online after %.1fs", time.Since(start).Seconds())
	s, err := lab.Await(ctx, "the group and both fence devices started", func(s pcmklab.Status) bool {
		// The address's start done, not only begun (Pending "Starting").
		return len(s.Resources["ip"]) == 1 && s.Resources["ip"][0].Pending == "" &&
			len(s.Resources["fence-n1"]) == 1 && len(s.Resources["fence-n2"]) == 1
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Resources["fence-n1"][0].Node == "n1" || s.Resources["fence-n2"][0].Node == "n2" {
		t.Errorf("a fence device runs on the node it fences: %+v", s.Resources)
	}
	from := s.Resources["ip"][0].Node
	to := lab.Peer(from)
	// crm_mon may list the address as started while IPaddr2's start still
	// runs: its address comes within seconds.
	var out []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err = lab.Node(from).Output(ctx, "ip", "-br", "addr", "show", "uplink")
		if err == nil && strings.Contains(string(out), "10.79.0.150/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPaddr2 put no address on %s's uplink within 30 s: %s %v", from, out, err)
		}
	}
	moved := time.Now()
	if _, err := lab.Node(from).Output(ctx, "crm_resource", "--fail", "--resource", "d", "--node", from); err != nil {
		t.Fatal(err)
	}
	// The group restarts in place (stickiness, one failure): either way it
	// is back, on one node, with its address there and not on the other.
	s, err = lab.Await(ctx, "the group back after its failure", func(s pcmklab.Status) bool {
		ips := s.Resources["ip"]
		return len(ips) == 1 && !ips[0].Failed && ips[0].Role == "Started" && ips[0].Pending == ""
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("group back on %s %.2fs after crm_resource --fail", s.Resources["ip"][0].Node, time.Since(moved).Seconds())
	if on := s.Resources["ip"][0].Node; on != from {
		out, _ := lab.Node(from).Output(ctx, "ip", "-br", "addr", "show", "uplink")
		if strings.Contains(string(out), "10.79.0.150") {
			t.Errorf("the address moved to %s but stayed on %s too: %s", on, from, out)
		}
	}
	// Fence `to` from `from`: the fencer on from runs fence-<to>, the
	// project's agent (no VM there: off at once).
	out, err = lab.Node(from).Output(ctx, "stonith_admin", "--reboot", to, "--timeout", "60")
	if err != nil {
		t.Fatalf("stonith_admin --reboot %s: %v\n%s", to, err, out)
	}
	out, err = lab.Node(from).Output(ctx, "stonith_admin", "--history", to, "--output-as=xml")
	if err != nil || !strings.Contains(string(out), `status="success"`) {
		t.Errorf("no successful fencing of %s in the history (%v):\n%s", to, err, out)
	}
}
