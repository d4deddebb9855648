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

// probeScript is the guest's side of `bench probe`. Two workloads:
//
//	sys  N x (open, close /proc/version): a shell redirection, no fork
//	web  M requests, one busybox wget (M URLs, a connection each) against
//	     busybox httpd on the guest's loopback: httpd forks a child per
//	     connection, so each request is a fork, an exit and a SIGCHLD
//
// The guest runs the phases in the host's order, each when the host kills
// its `sleep`, and reports each phase's start and end on its own clock
// (/proc/uptime, 10 ms resolution) and the workload's exit status.
// {N}, {M} and {PHASES} ("work:name ...") are filled in by guestScript.
const probeScript = `
ifconfig lo 127.0.0.1 up
ln -s /bin/busybox /tmp/httpd; mkdir -p /www; echo ok > /www/index.html
/tmp/httpd -f -p 127.0.0.1:8080 -h /www &
u=; i=0; while [ $i -lt {M} ]; do u="$u http://127.0.0.1:8080/"; i=$((i+1)); done
sys() {
	read a b < /proc/uptime
	i=0; while [ $i -lt {N} ]; do : < /proc/version; i=$((i+1)); done
	read c d < /proc/uptime
	echo "PHASE $1 $a $c 0"
}
web() {
	read a b < /proc/uptime
	wget -q -O /dev/null $u; r=$?
	read c d < /proc/uptime
	echo "PHASE $1 $a $c $r"
}
for p in {PHASES}; do sleep 100000; ${p%%:*} ${p#*:}; done
`

// benchPhase is one workload run and what the host arms before it.
type benchPhase struct {
	name  string
	work  string // "sys" or "web"
	specs []string
}

// probePhases is the run: a warm-up of each workload; rounds of each
// workload with and without the whole catalogue armed, interleaved (the
// order alternates from round to round, so a drift over the run weighs on
// both sides alike); then the latency and storm phases.
func probePhases(rounds int) []benchPhase {
	var cat []string
	for _, e := range probe.Catalogue() {
		cat = append(cat, "catalogue:"+e.Name)
	}
	phases := []benchPhase{{name: "warmup-sys", work: "sys"}, {name: "warmup-web", work: "web"}}
	for r := 1; r <= rounds; r++ {
		for _, work := range []string{"sys", "web"} {
			base := benchPhase{name: fmt.Sprintf("%s-base-%d", work, r), work: work}
			armed := benchPhase{name: fmt.Sprintf("%s-cat-%d", work, r), work: work, specs: cat}
			if r%2 == 0 {
				phases = append(phases, armed, base)
			} else {
				phases = append(phases, base, armed)
			}
		}
	}
	return append(phases,
		benchPhase{name: "latency", work: "sys", specs: []string{"p:latency do_sys_openat2"}},
		benchPhase{name: "storm", work: "sys", specs: []string{"p:storm kmem_cache_alloc"}})
}

// guestScript is probeScript for these phases.
func guestScript(phases []benchPhase, iterations, requests int) string {
	var list []string
	for _, p := range phases {
		list = append(list, p.work+":"+p.name)
	}
	return strings.NewReplacer("{N}", strconv.Itoa(iterations), "{M}", strconv.Itoa(requests),
		"{PHASES}", strings.Join(list, " ")).Replace(probeScript)
}

// phaseTimeout bounds one phase, from the host's start to the guest's
// report.
const phaseTimeout = 10 * time.Minute

// benchProbe boots one guest and measures the probe channel: the armed
// catalogue's overhead on two workloads (throughput with and without it,
// interleaved rounds in the same guest), probe-hit to VMM latency over one
// event per workload iteration, and an event storm's throughput and drops.
func benchProbe(iterations, requests, rounds int) error {
	if iterations < 1 || requests < 1 || rounds < 1 {
		return fmt.Errorf("-n %d, --requests %d, --rounds %d: each must be at least 1", iterations, requests, rounds)
	}
	dir, err := os.MkdirTemp("", "bench-probe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	phases := probePhases(rounds)
	sock := filepath.Join(dir, "vm.sock")
	cmd := exec.Command(vmmBinary(), "run", "--api", sock, "--", "sh", "-c", guestScript(phases, iterations, requests))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	reports := make(chan phaseReport)
	go readPhases(stdout, reports)

	if err := waitForAPI(sock); err != nil {
		return err
	}
	events := &eventLog{}
	go events.collect(sock)

	secs := map[string]float64{}
	var ids []uint32
	var storm probe.Status
	armed := 0 // probes the catalogue arms
	for _, ph := range phases {
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
		if strings.HasPrefix(ph.name, ph.work+"-cat-") {
			armed = len(ids)
		}
		mark := events.len()
		if err := startPhase(sock); err != nil {
			return fmt.Errorf("%s: start the phase: %w", ph.name, err)
		}
		var rep phaseReport
		var ok bool
		select {
		case rep, ok = <-reports:
		case <-time.After(phaseTimeout):
			return fmt.Errorf("%s: no report from the guest in %v", ph.name, phaseTimeout)
		}
		if !ok {
			return fmt.Errorf("%s: the guest ended before the phase did", ph.name)
		}
		if rep.name != ph.name || rep.status != 0 || rep.end <= rep.start {
			return fmt.Errorf("%s: the guest reported %+v", ph.name, rep)
		}
		secs[ph.name] = rep.end - rep.start
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
	fmt.Printf("\narmed catalogue overhead (%d entries, %d probes), %d interleaved rounds with and without it in one guest:\n",
		len(probe.Catalogue()), armed, rounds)
	printOverhead("sys", fmt.Sprintf("%d x (open, close /proc/version) in one guest shell", iterations), "iterations/s", iterations, rounds, secs)
	printOverhead("web", fmt.Sprintf("%d HTTP requests, busybox wget -> busybox httpd (a fork each) on the guest's loopback", requests), "requests/s", requests, rounds, secs)
	st := storm.Stat
	fmt.Printf("event storm (p:storm kmem_cache_alloc, no filter): %d hits in %.2f s: %.0f events/s delivered, %d dropped, %d missed (%.1f%% lost)\n",
		st.Hits, secs["storm"], float64(st.Delivered)/secs["storm"], st.Dropped, st.Missed, 100*float64(st.Dropped)/float64(max(st.Hits, 1)))
	return nil
}

// printOverhead prints one workload's throughput without and with the
// catalogue, and the median over rounds of each round's ratio.
func printOverhead(work, what, unit string, n, rounds int, secs map[string]float64) {
	var base, armed, ratio []float64
	for r := 1; r <= rounds; r++ {
		b, a := secs[fmt.Sprintf("%s-base-%d", work, r)], secs[fmt.Sprintf("%s-cat-%d", work, r)]
		base = append(base, float64(n)/b)
		armed = append(armed, float64(n)/a)
		ratio = append(ratio, b/a) // armed throughput / base throughput
	}
	fmt.Printf("  %s: %s\n", work, what)
	fmt.Printf("    without: %s median %.1f (min %.1f, max %.1f)\n", unit, median(base), minOf(base), maxOf(base))
	fmt.Printf("    with:    %s median %.1f (min %.1f, max %.1f)\n", unit, median(armed), minOf(armed), maxOf(armed))
	fmt.Printf("    throughput ratio with/without: median %.3f (min %.3f, max %.3f; 1.0 = no overhead; per round: %s)\n",
		median(ratio), minOf(ratio), maxOf(ratio), formatAll(ratio))
}

func formatAll(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(s, " ")
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

// phaseReport is one PHASE line: the phase, its start and end in guest
// seconds, and the workload's exit status.
type phaseReport struct {
	name       string
	start, end float64
	status     int
}

// parsePhase reads a "PHASE name start end status" line.
func parsePhase(line string) (phaseReport, bool) {
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "PHASE" {
		return phaseReport{}, false
	}
	a, err1 := strconv.ParseFloat(f[2], 64)
	b, err2 := strconv.ParseFloat(f[3], 64)
	st, err3 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil || err3 != nil {
		return phaseReport{}, false
	}
	return phaseReport{name: f[1], start: a, end: b, status: st}, true
}

// readPhases sends the guest's PHASE lines; it ends (closing out) with the
// guest's output.
func readPhases(r io.Reader, out chan<- phaseReport) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := parsePhase(sc.Text()); ok {
			out <- p
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
