package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
)

// probeScript runs the same syscall-heavy workload once per phase: each
// iteration opens and closes /proc/version (a shell redirection, no fork). A phase starts when the host kills
// the guest's `sleep`; the guest reports each phase's start and end on
// its own clock (/proc/uptime).
const probeScript = `
phase() {
	read a b < /proc/uptime
	i=0; while [ $i -lt %d ]; do : < /proc/version; i=$((i+1)); done
	read c d < /proc/uptime
	echo "PHASE $1 $a $c"
}
for p in warmup base catalogue latency storm; do sleep 100000; phase $p; done
`

// probePhases are the workload runs, in order, and what the host arms
// before each.
var probePhases = []struct {
	name  string
	specs []string
}{
	{"warmup", nil}, // caches and the shell's first iterations
	{"base", nil},
	{"catalogue", []string{"catalogue:signal", "catalogue:oom", "catalogue:panic", "catalogue:oops", "catalogue:exit", "catalogue:hung"}},
	{"latency", []string{"p:latency do_sys_openat2"}},
	{"storm", []string{"p:storm kmem_cache_alloc"}},
}

// benchProbe boots one guest and measures the probe channel: the overhead
// of the armed catalogue on a syscall-heavy workload (throughput ratio with
// and without, same guest, same run), probe-hit to VMM latency over one
// event per workload iteration, and an event storm's throughput and drops.
func benchProbe(iterations int) error {
	dir, err := os.MkdirTemp("", "bench-probe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "vm.sock")
	cmd := exec.Command(vmmBinary(), "run", "--api", sock, "--", "sh", "-c", fmt.Sprintf(probeScript, iterations))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	phases := make(chan [2]float64)
	go readPhases(stdout, phases)

	if err := waitForAPI(sock); err != nil {
		return err
	}
	events := &eventLog{}
	go events.collect(sock)

	secs := map[string]float64{}
	var ids []uint32
	var storm probe.Status
	for _, ph := range probePhases {
		if err := call(sock, detachAll(ids)...); err != nil {
			return err
		}
		ids = nil
		for _, s := range ph.specs {
			r, err := api.Call(sock, api.Request{Op: api.OpAttach, Spec: s})
			if err != nil {
				return fmt.Errorf("%s: attach %s: %w", ph.name, s, err)
			}
			ids = append(ids, r.IDs...)
		}
		mark := events.len()
		if err := startPhase(sock); err != nil {
			return fmt.Errorf("%s: start the phase: %w", ph.name, err)
		}
		t, ok := <-phases
		if !ok {
			return fmt.Errorf("%s: the guest ended before the phase did", ph.name)
		}
		secs[ph.name] = t[1] - t[0]
		switch ph.name {
		case "latency":
			time.Sleep(time.Second) // the last events reach the stream
			if err := printLatency(events.since(mark), iterations); err != nil {
				return err
			}
		case "storm":
			r, err := api.Call(sock, api.Request{Op: api.OpList})
			if err != nil {
				return err
			}
			if len(r.Probes) == 1 {
				storm = r.Probes[0]
			}
		}
	}
	base, cat := secs["base"], secs["catalogue"]
	fmt.Printf("\nworkload: %d x (open, close /proc/version) in one guest shell\n", iterations)
	fmt.Printf("armed catalogue overhead: %.0f vs %.0f iterations/s: throughput ratio %.3f (1.0 = no overhead)\n",
		float64(iterations)/cat, float64(iterations)/base, base/cat)
	st := storm.Stat
	fmt.Printf("event storm (p:storm kmem_cache_alloc, no filter): %d hits in %.2f s: %.0f events/s delivered, %d dropped, %d missed (%.1f%% lost)\n",
		st.Hits, secs["storm"], float64(st.Delivered)/secs["storm"], st.Dropped, st.Missed, 100*float64(st.Dropped)/float64(max(st.Hits, 1)))
	return nil
}

// printLatency prints probe-hit to VMM-receipt latency (guest kvmclock
// mapped to host time through KVM_GET_CLOCK) and receipt to decode.
func printLatency(evs []probe.Event, want int) error {
	var hit, dec []float64
	for _, e := range evs {
		if e.Probe != "latency" || e.HostNS == 0 {
			continue
		}
		hit = append(hit, float64(e.ReceivedNS-e.HostNS)/1e3)
		dec = append(dec, float64(e.DecodedNS-e.ReceivedNS)/1e3)
	}
	if len(hit) < want {
		fmt.Printf("latency: %d events for %d hits (some lost: see drops)\n", len(hit), want)
	}
	if len(hit) == 0 {
		return fmt.Errorf("latency: no events with host time")
	}
	fmt.Printf("probe hit -> VMM receipt over %d hits: p50 %.1f us  p99 %.1f us  max %.1f us\n",
		len(hit), pct(hit, 50), pct(hit, 99), pct(hit, 100))
	fmt.Printf("VMM receipt -> decoded:           p50 %.1f us  p99 %.1f us  max %.1f us\n",
		pct(dec, 50), pct(dec, 99), pct(dec, 100))
	return nil
}

// pct is the p-th percentile of v (nearest rank).
func pct(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// readPhases sends the guest's PHASE lines (start and end, guest seconds).
func readPhases(r io.Reader, out chan<- [2]float64) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(strings.TrimSpace(sc.Text()))
		if len(f) == 4 && f[0] == "PHASE" {
			a, _ := strconv.ParseFloat(f[2], 64)
			b, _ := strconv.ParseFloat(f[3], 64)
			out <- [2]float64{a, b}
		}
	}
}

// startPhase kills the guest's sleep, retrying while it is not there yet
// (the probe driver answers before user space starts).
func startPhase(sock string) error {
	var err error
	for i := 0; i < 120; i++ {
		if err = call(sock, api.Request{Op: api.OpInject, Inject: &api.Injection{Kind: "signal", Comm: "sleep", Signal: 15}}); err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

func waitForAPI(sock string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := api.Call(sock, api.Request{Op: api.OpList})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from the guest's probe driver: %w", err)
		}
		time.Sleep(time.Second)
	}
}

func detachAll(ids []uint32) []api.Request {
	var reqs []api.Request
	for _, id := range ids {
		reqs = append(reqs, api.Request{Op: api.OpDetach, ID: id})
	}
	return reqs
}

func call(sock string, reqs ...api.Request) error {
	for _, r := range reqs {
		if _, err := api.Call(sock, r); err != nil {
			return err
		}
	}
	return nil
}

// eventLog collects the API's event stream.
type eventLog struct {
	mu  sync.Mutex
	evs []probe.Event
}

func (l *eventLog) collect(sock string) {
	c, err := api.Dial(sock)
	if err != nil {
		return
	}
	defer c.Close()
	c.Events(func(e probe.Event, _ []byte) bool {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
		return true
	})
}

func (l *eventLog) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.evs) }

func (l *eventLog) since(i int) []probe.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]probe.Event(nil), l.evs[i:]...)
}
