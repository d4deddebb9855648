package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/failover/pcmk"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/internal/netns"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// TestOCFTester runs resource-agents' ocf-tester on ocf:tracevisor:vm in
// a network namespace of its own: meta-data against ra-api-1.dtd,
// validate-all, monitor of a stopped VM, start (a real boot, which takes
// the golden snapshot), monitor, promote and demote, stop, a restart (a
// restore of that snapshot), a start of a started VM.
//
// ocf-tester gives every action 20 s (OCF_RESKEY_CRM_meta_timeout); a
// boot takes longer on this emulating host, so the test passes the
// timeout Pacemaker would give the start (-o CRM_meta_timeout=300000,
// the agent's advertised start timeout).
func TestOCFTester(t *testing.T) {
	bin := need(t)
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		testenv.Missing(t, testenv.Pacemaker, "ocf-tester is absent (apt-get install resource-agents)")
	}
	if why := netns.Unusable(); why != "" {
		testenv.Missing(t, testenv.Netns, "ocf-tester's VM needs a namespace: %s", why)
	}
	ns, err := netns.New("tvocf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Delete() })
	agent := filepath.Join(agentsDir(t), "ocf/tracevisor/vm")
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	state := t.TempDir()
	cmd := ns.Command(ctx, tester, "-v", "-n", "ocftest",
		"-o", "host_addr=10.81.0.1/24", "-o", "guest_addr=10.81.0.2/24",
		"-o", "vmm="+bin, "-o", "state_dir="+state, "-o", "mem="+vmmnode.HogMem,
		"-o", "fast_path=false", "-o", "CRM_meta_timeout=300000", agent)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("ocf-tester (%.0fs):\n%s", time.Since(start).Seconds(), out)
	if err != nil || !strings.Contains(string(out), "passed all tests") {
		t.Fatalf("ocf-tester: %v", err)
	}
	// The first start booted and took the golden snapshot; a later one
	// restored it.
	logs, _ := filepath.Glob(filepath.Join(state, "*", "ocftest"))
	if len(logs) != 1 {
		t.Fatalf("state directories of ocftest: %q, want one", logs)
	}
	var took, restored int
	for _, a := range pcmk.State(logs[0]).Actions() {
		if a.Action == "start" && a.Code == pcmk.Success {
			took += strings.Count(a.Reason, "golden snapshot taken")
			restored += strings.Count(a.Reason, "restored the golden snapshot")
		}
	}
	if took != 1 || restored < 1 {
		t.Errorf("starts that took the golden snapshot: %d (want 1), that restored it: %d (want at least 1)", took, restored)
	}
}
