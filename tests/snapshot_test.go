package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
	vm "github.com/tracevisor/tracevisor/vmm"
)

// snapScript counts once a second on the console ("count N") and, every
// third count, fetches a page from busybox httpd on the guest's loopback
// ("served"); httpd is respawned when it dies, so a probe can watch it
// being killed.
const snapScript = `
ifconfig lo 127.0.0.1 up
ln -s /bin/busybox /tmp/httpd; mkdir -p /www; echo served > /www/index.html
while true; do /tmp/httpd -f -p 127.0.0.1:80 -h /www; echo httpd-ended; done &
n=0
while :; do
	n=$((n+1)); echo "count $n"
	[ $((n % 3)) = 0 ] && wget -q -O - http://127.0.0.1/
	sleep 1
done
`

var countLine = regexp.MustCompile(`(?m)^count (\d+)$`)

// servedLine is httpd's page fetched by the guest (not the typed script's
// echo, which holds the word too).
var servedLine = regexp.MustCompile(`(?m)^served\r?$`)

// counts returns the "count N" lines of out, in order.
func counts(out string) []int {
	var ns []int
	for _, m := range countLine.FindAllStringSubmatch(strings.ReplaceAll(out, "\r", ""), -1) {
		n, _ := strconv.Atoi(m[1])
		ns = append(ns, n)
	}
	return ns
}

// consecutive fails the test unless ns counts up by one, no gap, no
// repeat.
func consecutive(t *testing.T, what string, ns []int) {
	t.Helper()
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			t.Fatalf("%s: count %d follows %d (lost or repeated work): %v", what, ns[i], ns[i-1], ns)
		}
	}
}

// waitOutput waits until ok holds for the guest's output so far.
func (g *liveGuest) waitOutput(t *testing.T, what string, d time.Duration, ok func(out string) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok(g.out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %v; output:\n%s", what, d, g.out.String())
		}
		select {
		case err := <-g.done:
			g.done <- err
			t.Fatalf("vmm ended (%v) while waiting for %s", err, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestSnapshotRestore snapshots a running guest (a counter loop, httpd, a
// probe armed on httpd; the guest restored from the shared shell
// snapshot, the loop typed into its shell) and resumes it in a second vmm: the count goes on
// from the snapshot's with nothing lost or repeated, httpd answers, the
// probe armed before the snapshot fires in the clone under its id, and the
// original, resumed, goes on counting by itself beside the clone; the
// clone's --report gives the restore's times. (httpd is asked from inside
// the guest, on its loopback; bench snapshot asks it from the host.)
func TestSnapshotRestore(t *testing.T) {
	need(t)
	// The original is itself a restore (of the package's shell snapshot,
	// its script typed in): a snapshot of a restored guest restores too.
	orig := restoreShell(t)
	sig := orig.call(api.Request{Op: api.OpAttach, Spec: "catalogue:signal:comm=httpd"}).IDs
	if len(sig) != 1 {
		t.Fatalf("attach ids %v", sig)
	}
	orig.typeIn(snapScript)
	orig.waitOutput(t, "an httpd answer and count 4", 3*time.Minute, func(out string) bool {
		ns := counts(out)
		return servedLine.MatchString(out) && len(ns) > 0 && ns[len(ns)-1] >= 4
	})

	// Snapshot, the original left paused: its output stands still at the
	// snapshot, so the clone's output must continue it exactly.
	dir := filepath.Join(t.TempDir(), "snap")
	r := orig.call(api.Request{Op: api.OpSnapshot, Dir: dir, Paused: true})
	if r.Machine == nil || r.Machine.State != vm.StatePaused {
		t.Fatalf("snapshot answer %+v, want the guest paused", r.Machine)
	}
	t.Logf("snapshot took %v", time.Duration(r.SnapshotNS))
	time.Sleep(time.Second) // what the guest wrote before the pause reaches the pipe
	atSnapshot := orig.out.String()
	time.Sleep(2 * time.Second)
	if after := orig.out.String(); after != atSnapshot {
		t.Fatalf("the paused original wrote %q", strings.TrimPrefix(after, atSnapshot))
	}
	before := counts(atSnapshot)
	last := before[len(before)-1]

	t.Run("a different configuration is refused", func(t *testing.T) {
		res := vmm(t, "", "run", "--restore", dir, "--cpus", "2")
		if res.code != 1 || !strings.Contains(res.stderr, "cpus: 1 in the snapshot, 2 here") {
			t.Fatalf("restore with --cpus 2: want exit 1 naming the vCPU count: %s", res)
		}
	})

	start := time.Now()
	report := filepath.Join(t.TempDir(), "clone.json")
	clone := startLiveGuest(t, "--restore", dir, "--report", report)
	t.Logf("restore to the probe driver answering: %v", time.Since(start))

	t.Run("the count goes on", func(t *testing.T) {
		defer clone.as(t)()
		clone.waitOutput(t, "three counts in the clone", 2*time.Minute, func(out string) bool {
			ns := counts(out)
			return len(ns) > 0 && ns[len(ns)-1] >= last+3
		})
		// The original's output up to the snapshot and the clone's are
		// one stream: a line cut by the snapshot ends in the clone.
		all := counts(atSnapshot + clone.out.String())
		consecutive(t, "original then clone", all)
		if all[len(all)-1] < last+3 {
			t.Fatalf("the clone counted to %d, the snapshot was at %d", all[len(all)-1], last)
		}
	})

	t.Run("httpd answers", func(t *testing.T) {
		defer clone.as(t)()
		clone.waitOutput(t, "an httpd answer in the clone", 2*time.Minute, func(out string) bool {
			return servedLine.MatchString(out)
		})
	})

	t.Run("the probe armed before the snapshot fires", func(t *testing.T) {
		defer clone.as(t)()
		list := clone.call(api.Request{Op: api.OpList})
		found := false
		for _, p := range list.Probes {
			found = found || p.ID == sig[0]
		}
		if !found {
			t.Fatalf("the clone's probes %+v lack id %d", list.Probes, sig[0])
		}
		mark := clone.mark()
		retryFor(t, "inject KILL into httpd in the clone", func() error {
			return clone.inject(api.Injection{Kind: "signal", Comm: "httpd", Signal: 9})
		})
		e := clone.waitEvent(mark, "the signal probe's event for httpd", func(e probe.Event) bool {
			return e.ProbeID == sig[0] && e.Class == "signal"
		})
		if e.Comm != "httpd" || e.Fields["sig"] != uint64(9) {
			t.Errorf("event %+v, want SIGKILL to httpd", e)
		}
	})

	t.Run("the original resumes beside the clone", func(t *testing.T) {
		defer orig.as(t)()
		if r := orig.call(api.Request{Op: api.OpResume}); r.Machine == nil || r.Machine.State != vm.StateRunning {
			t.Fatalf("resume answer %+v", r.Machine)
		}
		orig.waitOutput(t, "three more counts in the original", 2*time.Minute, func(out string) bool {
			ns := counts(out)
			return ns[len(ns)-1] >= last+3
		})
		consecutive(t, "the original", counts(orig.out.String()))
	})

	for _, g := range []*liveGuest{clone, orig} {
		if _, err := apiCall(g.sock, api.Request{Op: api.OpStop, Reason: "test over"}); err != nil {
			t.Errorf("stop: %v", err)
			continue
		}
		select {
		case err := <-g.done:
			g.done <- err
			if code, werr := exitCode(err); werr != nil || code != vm.ExitStopped {
				t.Errorf("vmm exited with %d (%v), want %d (stopped)", code, werr, vm.ExitStopped)
			}
		case <-time.After(time.Minute):
			t.Errorf("vmm did not exit in a minute after the API's stop")
		}
	}

	// The clone's report: restored from dir, the guest running again
	// after the restore's build.
	var rep struct {
		RestoredFrom   string  `json:"restored_from"`
		RestoreMS      float64 `json:"restore_ms"`
		StartToGuestMS float64 `json:"start_to_guest_ms"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("clone report %s: %v", b, err)
	}
	t.Logf("clone report: %+v", rep)
	if rep.RestoredFrom != dir || rep.RestoreMS <= 0 || rep.StartToGuestMS < rep.RestoreMS {
		t.Errorf("clone report %+v: want restored from %s, 0 < restore_ms <= start_to_guest_ms", rep, dir)
	}
}
