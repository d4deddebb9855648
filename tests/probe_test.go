package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
)

// readEvents parses an --events file.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events file line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

func num(e map[string]any, k string) float64 { v, _ := e[k].(float64); return v }

// A catalogue probe armed from the command line, before user space, sees a
// kill in the guest. The guest waits a second before the kill: without it
// (`sleep 30 & kill -TERM $!`) the signal reaches the forked shell before
// it has run at all, let alone become sleep, and the event rightly says
// comm "sh" (see the README's probe section).
func TestSignalProbeSeesKill(t *testing.T) {
	t.Parallel()
	ev := filepath.Join(t.TempDir(), "ev.jsonl")
	r := vmm(t, "", "run", "--probe", "catalogue:signal", "--events", ev, "--",
		// The victim is started again until it runs: on the emulating host
		// a process sometimes dies of SIGSEGV as it starts (README, Known
		// problems), and a dead one (a zombie too) has no /proc/PID/exe.
		"sh", "-c", "sleep 30 & v=$!; sleep 1; until [ -e /proc/$v/exe ]; do sleep 30 & v=$!; sleep 1; done; "+
			"echo victim=$v; kill -TERM $v; wait; echo reaped")
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	m := regexp.MustCompile(`victim=(\d+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the guest did not print the victim's pid: %s", r)
	}
	victim, _ := strconv.Atoi(m[1])
	var found map[string]any
	evs := readEvents(t, ev)
	for _, e := range evs {
		if e["class"] == "signal" && num(e, "sig") == 15 && e["comm"] == "sleep" {
			found = e
		}
	}
	if found == nil {
		t.Fatalf("no signal event with sig 15 and comm sleep among %d events: %v", len(evs), evs)
	}
	if found["probe"] != "signal" || int(num(found, "pid")) != victim || found["sender_comm"] != "sh" {
		t.Errorf("want probe signal, pid %d, sender sh: %v", victim, found)
	}
	for _, k := range []string{"guest_ns", "host_ns", "received_ns", "decoded_ns"} {
		if num(found, k) == 0 {
			t.Errorf("event has no %s: %v", k, found)
		}
	}
	if _, ok := found["cpu"]; !ok {
		t.Errorf("event has no cpu: %v", found)
	}
}

func TestBadProbeSpecFailsBeforeBoot(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--probe", "p:x some_symbol arg=%zz", "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "--probe") || !strings.Contains(r.stderr, "zz") {
		t.Fatalf("want exit 1 naming the bad register: %s", r)
	}
	r = vmm(t, "", "run", "--probe", "catalogue:nosuch", "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "nosuch") {
		t.Fatalf("want exit 1 naming the unknown catalogue entry: %s", r)
	}
}

// A service script for the live guest: httpd (busybox) respawned by a
// supervisor as the OOM killer's preferred victim, and a main loop that
// runs a read storm each time its sleep is killed.
const liveScript = `
echo -1000 > /proc/self/oom_score_adj
ln -s /bin/busybox /tmp/httpd; mkdir -p /www
while true; do /tmp/httpd -f -p 80 -h /www & echo 1000 > /proc/$!/oom_score_adj; wait $!; echo httpd-ended; done &
while true; do
	sleep 100000
	i=0; while [ $i -lt 60 ]; do read line < /proc/version; i=$((i+1)); done; echo storm-done
done
`

// One running guest (restored from the shared shell snapshot, the script
// typed in), probes attached and detached while it runs, each fault
// injected, events checked.
func TestProbesOnARunningGuest(t *testing.T) {
	t.Parallel()
	need(t)
	ev := filepath.Join(t.TempDir(), "ev.jsonl")
	g := restoreShell(t, "--events", ev)
	// Soft lockups after 2 s, hung tasks after 3 s (defaults: 20 s, 120 s).
	g.typeIn("echo 1 > /proc/sys/kernel/watchdog_thresh; echo 3 > /proc/sys/kernel/hung_task_timeout_secs; " +
		"echo thresholds $(cat /proc/sys/kernel/watchdog_thresh) $(cat /proc/sys/kernel/hung_task_timeout_secs)")
	g.waitOutput(t, "the lockup and hung-task thresholds set", time.Minute, func(out string) bool {
		return regexp.MustCompile(`(?m)^thresholds 1 3\r?$`).MatchString(out)
	})
	g.typeIn(liveScript)

	// Attach to the running guest: no reboot.
	sig := g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:signal:comm=httpd"}).IDs
	exit := g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:exit:comm=httpd"}).IDs
	if len(sig) != 1 || len(exit) != 1 {
		t.Fatalf("attach ids: signal %v exit %v", sig, exit)
	}

	t.Run("signal", func(t *testing.T) {
		defer g.as(t)()
		mark := g.mark()
		// The service may still be starting: the first inject retries.
		retryFor(t, "vmm inject signal httpd TERM", func() error { return injectCLI(t, g, "signal", "httpd", "TERM") })
		e := g.waitEvent(mark, "a signal event for httpd", func(e probe.Event) bool { return e.Class == "signal" })
		if e.Comm != "httpd" || e.Fields["sig"] != uint64(15) || e.ProbeID != sig[0] {
			t.Errorf("signal event: %+v", e)
		}
		x := g.waitEvent(mark, "httpd's exit", func(e probe.Event) bool { return e.Class == "exit" })
		if x.Comm != "httpd" || x.PID != e.PID || x.Fields["signal"] != uint64(15) {
			t.Errorf("exit event %+v after signal event %+v", x, e)
		}
	})

	t.Run("detach stops events", func(t *testing.T) {
		defer g.as(t)()
		g.call(api.Request{Op: api.OpDetach, ID: sig[0]})
		mark := g.mark()
		retryFor(t, "inject KILL into the respawned httpd", func() error {
			return g.inject(api.Injection{Kind: "signal", Comm: "httpd", Signal: 9})
		})
		g.waitEvent(mark, "httpd's exit by KILL", func(e probe.Event) bool {
			return e.Class == "exit" && e.Fields["signal"] == uint64(9)
		})
		for _, e := range g.since(mark) {
			if e.ProbeID == sig[0] {
				t.Errorf("event from the detached probe: %+v", e)
			}
		}
		list := g.call(api.Request{Op: api.OpList})
		if len(list.Probes) != 1 || list.Probes[0].ID != exit[0] || list.Probes[0].Delivered < 2 {
			t.Errorf("after detach want only the exit probe, with >= 2 delivered: %+v", list.Probes)
		}
	})

	t.Run("oom", func(t *testing.T) {
		defer g.as(t)()
		ids := g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:oom"}).IDs
		// Each try waits for httpd to run (a harmless CONT reaches it):
		// until the respawned fork has exec'd, it is "sh", and with the
		// oom_score_adj of 1000 already written it is the one chosen. The
		// OOM killer can also find no eligible task while the supervisor is
		// respawning httpd (its fork still has the shell's -1000): retry.
		var e probe.Event
		for try := 0; ; try++ {
			retryFor(t, "httpd to be running", func() error {
				return g.inject(api.Injection{Kind: "signal", Comm: "httpd", Signal: 18})
			})
			mark := g.mark()
			g.call(api.Request{Op: api.OpInject, Inject: &api.Injection{Kind: "oom"}})
			var ok bool
			if e, ok = g.waitEventWithin(mark, 20*time.Second, func(e probe.Event) bool {
				return e.Class == "oom" && e.Probe == "oom_victim"
			}); ok {
				break
			}
			if try == 5 {
				t.Fatalf("no OOM victim event after %d injections; events: %+v", try+1, g.since(mark))
			}
		}
		if e.Comm != "httpd" || e.PID <= 1 {
			t.Errorf("want httpd (oom_score_adj 1000) chosen: %+v", e)
		}
		detachAll(g, ids)
	})

	t.Run("event storm", func(t *testing.T) {
		defer g.as(t)()
		free := g.call(api.Request{Op: api.OpAttach, Spec: "p:storm vfs_read"}).IDs
		limited := g.call(api.Request{Op: api.OpAttach, Spec: "p:storm_limited vfs_read rate:20"}).IDs
		mark := g.mark()
		g.call(api.Request{Op: api.OpInject, Inject: &api.Injection{Kind: "signal", Comm: "sleep", Signal: 15}})
		// The VMM's API answers during the storm; wait for the storm to end
		// (no new hits for three looks two seconds apart).
		var last probe.Status
		deadline := time.Now().Add(3 * time.Minute)
		for stable := 0; stable < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("the storm did not end in 3 minutes: %+v", last.Stat)
			}
			time.Sleep(2 * time.Second)
			st := statusOf(t, g, free[0])
			if st.Hits > 1000 && st.Hits == last.Hits {
				stable++
			} else {
				stable = 0
			}
			last = st
		}
		// The host streamed exactly the events the guest counts as
		// delivered, for each probe: none lost or made up on the way.
		evs := g.waitProbeEvents(mark, free[0], 30*time.Second, func() uint64 { return statusOf(t, g, free[0]).Delivered })
		levs := g.waitProbeEvents(mark, limited[0], 30*time.Second, func() uint64 { return statusOf(t, g, limited[0]).Delivered })
		lim := statusOf(t, g, limited[0])
		t.Logf("storm: %+v (%d events streamed); rate-limited: %+v (%d streamed)", last.Stat, len(evs), lim.Stat, len(levs))
		// No filter and no rate on the free probe. The VMM takes each event
		// off the listener queue on the vCPU that notified it, so the
		// guest's pool of buffers never runs out: nothing is dropped.
		if last.Filtered != 0 || last.Limited != 0 || last.Dropped != 0 {
			t.Errorf("unfiltered, unlimited probe: want no filtered, limited or dropped hits: %+v", last.Stat)
		}
		// rate:20 is at most 20 events in each second of the event clock
		// (the one guest_ns is on), and the storm was far more than that.
		if lim.Limited == 0 || lim.Delivered == 0 {
			t.Errorf("rate:20 over a storm of %d hits: want some delivered and some limited: %+v", last.Hits, lim.Stat)
		}
		perSecond := map[uint64]int{}
		for _, e := range levs {
			perSecond[e.GuestNS/1e9]++
		}
		for sec, n := range perSecond {
			if n > 20 {
				t.Errorf("rate:20: %d events in guest second %d", n, sec)
			}
		}
		detachAll(g, append(free, limited...))
		// The guest still runs its services: kill httpd, see it exit.
		mark = g.mark()
		retryFor(t, "inject TERM into httpd after the storm", func() error {
			return g.inject(api.Injection{Kind: "signal", Comm: "httpd", Signal: 15})
		})
		g.waitEvent(mark, "httpd's exit after the storm", func(e probe.Event) bool { return e.Class == "exit" })
	})

	// Real drops, made deterministic. The guest driver's send path runs
	// with its listener lock held and a per-CPU flag set; a hit of a probe
	// placed on anything that path calls sees the flag and is dropped
	// (counted, and reported in the probe's next event) instead of
	// deadlocking. A kprobe on virtqueue_kick is such a probe: every
	// message the driver sends outside a probe handler - a command's reply
	// - kicks the listener inside the send path (a drop), and every
	// command then kicks the loader queue outside it, delivering an event
	// that must carry that drop. (The kick of that event's own send is a
	// nested kprobe hit: "missed".) The guest has no other virtio device.
	t.Run("drops", func(t *testing.T) {
		defer g.as(t)()
		before := g.call(api.Request{Op: api.OpList}).Host
		mark := g.mark()
		ids := g.call(api.Request{Op: api.OpAttach, Spec: "p:kick virtqueue_kick"}).IDs
		if len(ids) != 1 {
			t.Fatalf("attach ids %v", ids)
		}
		id := ids[0]
		const injects = 20
		for i := 0; i < injects; i++ {
			// Answered by the guest with -ESRCH: one reply, nothing else.
			if err := g.inject(api.Injection{Kind: "signal", Comm: "tvp-nosuch", Signal: 18}); err == nil {
				t.Fatal("inject signal into a process that does not exist: want an error")
			}
		}
		list := g.call(api.Request{Op: api.OpList})
		var st probe.Status
		for _, p := range list.Probes {
			if p.ID == id {
				st = p
			}
		}
		// The attach and each inject: one reply (a drop), one loader kick
		// (an event). The counters were read before the list's own reply.
		n := uint64(1 + injects)
		if st.Dropped != n || st.Delivered != n || st.Hits != 2*n || st.Filtered != 0 || st.Limited != 0 || st.Missed < n {
			t.Errorf("after %d commands want %d dropped, %d delivered, %d hits, >= %d missed: %+v", n, n, n, 2*n, n, st.Stat)
		}
		// The list's stats message was one more drop, reported in the
		// event of the loader kick after it: n+1 events in all, each
		// reporting the one drop before it.
		evs := g.waitProbeEvents(mark, id, 30*time.Second, func() uint64 { return n + 1 })
		for i, e := range evs {
			if e.Dropped != 1 {
				t.Errorf("event %d of %d reports %d drops, want 1: %+v", i+1, len(evs), e.Dropped, e)
			}
		}
		if list.Host == nil || before == nil {
			t.Fatal("list: no host counters in the answer")
		}
		// The event reporting the list's own drop may reach the host
		// before the host reads its counters for the answer, or after.
		if got := list.Host.GuestDrops - before.GuestDrops; got != n && got != n+1 {
			t.Errorf("host counted %d drops reported in events by the time of the list, want %d or %d", got, n, n+1)
		}
		g.call(api.Request{Op: api.OpDetach, ID: id})
		// Detached before its reply: no more events, and a list now (no
		// probe left on the send path) finds exactly the n+1 drops the
		// events reported.
		time.Sleep(time.Second)
		if evs := g.probeEvents(mark, id); uint64(len(evs)) != n+1 {
			t.Errorf("%d events after detach, want %d", len(evs), n+1)
		}
		after := g.call(api.Request{Op: api.OpList}).Host
		if after == nil {
			t.Fatal("list after detach: no host counters in the answer")
		}
		if got := after.GuestDrops - before.GuestDrops; got != n+1 {
			t.Errorf("host counted %d drops reported in events after detach, want %d", got, n+1)
		}
	})

	hung := g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:hung"}).IDs
	t.Run("hung task", func(t *testing.T) {
		defer g.as(t)()
		mark := g.mark()
		if err := injectCLI(t, g, "stall", "--seconds", "10"); err != nil {
			t.Fatal(err)
		}
		e := g.waitEvent(mark, "a hung-task event", func(e probe.Event) bool { return e.Class == "hung" })
		if e.Comm != "tvp-stall" || e.PID <= 1 || e.Probe != "hung" {
			t.Errorf("hung-task event names another task: %+v", e)
		}
	})

	t.Run("soft lockup", func(t *testing.T) {
		defer g.as(t)()
		mark := g.mark()
		g.call(api.Request{Op: api.OpInject, Inject: &api.Injection{Kind: "hang", CPU: 0, Seconds: 5}})
		e := g.waitEvent(mark, "a soft-lockup event", func(e probe.Event) bool { return e.Class == "lockup" })
		if !strings.Contains(fmt.Sprint(e.Fields["message"]), "lockup") {
			t.Errorf("lockup event: %+v", e)
		}
		detachAll(g, hung)
	})

	t.Run("panic", func(t *testing.T) {
		defer g.as(t)()
		g.call(api.Request{Op: api.OpAttach, Spec: "catalogue:panic"})
		g.call(api.Request{Op: api.OpInject, Inject: &api.Injection{Kind: "panic"}})
		if code := g.wait(); code != 82 {
			t.Fatalf("want exit 82 (guest panic), got %d", code)
		}
		var found bool
		for _, e := range readEvents(t, ev) {
			if e["class"] == "panic" && strings.Contains(fmt.Sprint(e["message"]), "injected panic") {
				found = true
			}
		}
		if !found {
			t.Errorf("no panic event with the injected message in %s", ev)
		}
	})
}

// injectCLI runs `vmm inject --api SOCK args...`.
func injectCLI(t *testing.T, g *liveGuest, args ...string) error {
	t.Helper()
	r := vmm(t, "", append([]string{"inject", "--api", g.sock}, args...)...)
	if r.code != 0 {
		return fmt.Errorf("vmm inject %v: %s", args, r)
	}
	return nil
}

func statusOf(t *testing.T, g *liveGuest, id uint32) probe.Status {
	t.Helper()
	for _, p := range g.call(api.Request{Op: api.OpList}).Probes {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("probe %d not listed", id)
	return probe.Status{}
}

func detachAll(g *liveGuest, ids []uint32) {
	for _, id := range ids {
		g.call(api.Request{Op: api.OpDetach, ID: id})
	}
}

// retry calls f every second until it succeeds, for up to a minute (a
// respawned service takes a moment to come back).
func retryFor(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for i := 0; i < 60; i++ {
		if err = f(); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: %v", what, err)
}
