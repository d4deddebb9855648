package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/guest-kernel/initramfs"
	vnet "github.com/tracevisor/tracevisor/virtio/net"
)

// The hostile guest: guest RAM, the reservation the program builds its rings
// in (guest-kernel/hostile/hostile.c: RES_BASE, RES_SIZE), and the bounds
// the VMM must stay within whatever the guest does.
const (
	hostileMemMiB    = 256
	hostileMemmap    = "memmap=80M$0x8000000"
	hostileRSSMiB    = hostileMemMiB + 64 // anonymous RSS: all of guest RAM plus 64 MiB
	hostileStderrMax = 64 << 10           // what the VMM logs about guest input is rate-limited
	hostilePattern   = "HOSTILE-PATTERN-0123456789abcdef"
	hostileBigDisk   = 4 << 30 // room for the 4092 MiB request to be in range
)

// hostileScript runs the hostile program, then checks with the guest
// kernel's own drivers (given the devices back) that each device serves
// again: a disk read, a ping through the test's switch peer, a kernel
// message on the virtio console (hvc0 is the only kernel console; its tty
// cannot be reopened, as init still holds the hung-up one). The script's
// output goes to the serial port: unbinding the virtio console hangs up
// the shell's terminal (hence the HUP trap).
const hostileScript = `trap '' HUP; exec >/dev/ttyS0 2>&1
/hostile; echo "HOSTILE-rc=$?"
echo "HOSTILE-vda=$(head -c 32 /dev/vda)"
ifconfig eth0 10.0.9.2 netmask 255.255.255.0 up && ping -c 1 -w 20 10.0.9.1 && echo HOSTILE-ping-ok
echo "<2>HOSTILE-printk-on-hvc" > /dev/kmsg
echo HOSTILE-api-check; sleep 15; echo HOSTILE-bye`

// TestHostileGuestDriver boots one guest whose user space drives every
// virtio device itself (guest-kernel/hostile/hostile.c) with malformed
// rings, registers, requests and floods, one case after another. It
// checks each case's verdict (DEVICE_NEEDS_RESET where the spec expects
// it, service where it does not, service again after a reset), that the
// devices it did not attack kept serving, that no device wrote outside
// the rings and writable buffers (canaries), that the VMM stays alive
// and answers its control API, keeps its memory bounded, and rate-limits
// what it logs; and, after the attack, that the guest kernel's own drivers
// work again on every device.
func TestHostileGuestDriver(t *testing.T) {
	need(t)
	prog := filepath.Join(buildDir, "hostile")
	if _, err := os.Stat(prog); err != nil {
		t.Fatalf("%s missing: run 'make all' (make test does it)", prog)
	}
	dir := t.TempDir()
	initrd := hostileInitrd(t, dir, prog)
	big, bigHead := hostileDisk(t, filepath.Join(dir, "big.img"), hostileBigDisk)
	ro, roData := hostileDisk(t, filepath.Join(dir, "ro.img"), 1<<20)
	swDir := t.TempDir()
	t.Setenv("TRACEVISOR_SWITCH_DIR", swDir)
	peer := newSwitchPeer(t, swDir, "hostile", [4]byte{10, 0, 9, 1})
	sock := filepath.Join(dir, "api.sock")

	g := &hostileRun{t: t, sock: sock, lists: map[string]chan listResult{}}
	cmd := vmmCommand(t, "run", "--mem", strconv.Itoa(hostileMemMiB)+"M", "--console", "virtio",
		"--disk", big, "--disk", ro+",ro", "--net", "switch:hostile,mac=52:54:00:12:34:56",
		"--probe", "catalogue:signal", "--api", sock, "--initrd", initrd, "--cmdline", hostileMemmap,
		"--", "sh", "-c", hostileScript)
	cmd.Stdout, cmd.Stderr = &g.out, &g.stderr
	g.out.onLine = g.trigger
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.pid = cmd.Process.Pid
	stop := make(chan struct{})
	go g.sampleRSS(stop)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(12 * time.Minute):
		cmd.Process.Kill()
		err = <-done
		t.Errorf("the guest did not finish in 12 minutes; last case started: %s", g.out.lastRun())
	}
	close(stop)
	code, err := exitCode(err)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmm exit %d; stderr %d bytes; peak anonymous RSS %d MiB (during %s)",
		code, g.stderr.total(), g.peakKiB>>10, g.peakDuring)

	g.checkCases()
	if code != 0 {
		t.Errorf("vmm exited %d, want 0 (the guest script's end): last case started: %s\nstderr:\n%s",
			code, g.out.lastRun(), g.stderr.String())
	}
	g.checkAfterwards(peer)
	if g.peakKiB > hostileRSSMiB<<10 {
		t.Errorf("VMM anonymous RSS passed the bound of guest RAM + 64 MiB = %d MiB during %s (peak %d MiB)",
			hostileRSSMiB, g.overDuring, g.peakKiB>>10)
	}
	if n := g.stderr.total(); n > hostileStderrMax {
		t.Errorf("the VMM logged %d bytes about the hostile guest (bound %d): logging about guest input must be rate-limited; first lines:\n%s",
			n, hostileStderrMax, firstLines(g.stderr.String(), 20))
	}
	if t.Failed() {
		t.Logf("the guest's other output (last 60 lines):\n%s", g.out.others(60))
	}
	if after, err := os.ReadFile(ro); err != nil || !bytes.Equal(after, roData) {
		t.Errorf("the read-only disk changed (err %v)", err)
	}
	if head, err := readHead(big, len(bigHead)); err != nil || !bytes.Equal(head, bigHead) {
		t.Errorf("the disk's first MiB changed: no case writes it (err %v)", err)
	}
}

// hostileRun is the state of the one hostile boot.
type hostileRun struct {
	t      *testing.T
	sock   string
	pid    int
	out    hostileSink
	stderr cappedBuffer

	mu         sync.Mutex
	lists      map[string]chan listResult // `vmm probe list` started at a guest line
	peakKiB    uint64
	peakDuring string
	overDuring string // the case running when RSS first passed the bound
	aliveAtAPI bool
}

// listResult is one `vmm probe list` run.
type listResult struct {
	out  string
	err  error
	took time.Duration
}

// trigger starts the host's side of the cases that need one.
func (g *hostileRun) trigger(line string) {
	switch {
	case strings.Contains(line, "HOSTILE await-stats"):
		g.startList("reply-to-stats")
	case strings.Contains(line, "HOSTILE-api-check"):
		g.mu.Lock()
		g.aliveAtAPI = rssAnonKiB(g.pid) > 0
		g.mu.Unlock()
		g.startList("api-check")
	}
}

func (g *hostileRun) startList(name string) {
	c := make(chan listResult, 1)
	g.mu.Lock()
	g.lists[name] = c
	g.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(buildDir, "vmm"), "probe", "list", "--api", g.sock)
		cmd.Env = vmmEnv()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer in 60 s")
		}
		c <- listResult{out: string(out), err: err, took: time.Since(start)}
	}()
}

// list waits for the `vmm probe list` started as name.
func (g *hostileRun) list(name string) (listResult, bool) {
	g.mu.Lock()
	c := g.lists[name]
	g.mu.Unlock()
	if c == nil {
		return listResult{}, false
	}
	select {
	case r := <-c:
		return r, true
	case <-time.After(90 * time.Second):
		return listResult{err: fmt.Errorf("still running after 90 s")}, true
	}
}

// sampleRSS records the VMM's peak anonymous RSS (guest RAM and the Go
// heap; not the mapped kernel image) and the case running then.
func (g *hostileRun) sampleRSS(stop chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if kib := rssAnonKiB(g.pid); kib > 0 {
			g.mu.Lock()
			if kib > g.peakKiB {
				g.peakKiB, g.peakDuring = kib, g.out.lastRun()
			}
			if kib > hostileRSSMiB<<10 && g.overDuring == "" {
				g.overDuring = g.out.lastRun()
			}
			g.mu.Unlock()
		}
	}
}

// checkCases reports every case the program says failed, by name.
func (g *hostileRun) checkCases() {
	t := g.t
	var n, failed int
	end := ""
	for _, line := range g.out.lines() {
		if i := strings.Index(line, "HOSTILE end "); i >= 0 {
			end = line[i:]
		}
		i := strings.Index(line, "HOSTILE case ")
		if i < 0 {
			continue
		}
		t.Log(line[i:])
		f := fields(line[i+len("HOSTILE case "):])
		n++
		if f["result"] != "pass" {
			failed++
			t.Errorf("case %s/%s failed: expect=%s needs_reset=%s check=%s recovered=%s note=%s",
				f["dev"], f["name"], f["expect"], f["needs_reset"], f["check"], f["recovered"], f["note"])
		}
	}
	if end == "" {
		t.Errorf("the hostile program did not finish: %d cases reported, last started: %s", n, g.out.lastRun())
		return
	}
	e := fields(strings.TrimPrefix(end, "HOSTILE end "))
	if e["cases"] != strconv.Itoa(n) || n < 100 {
		t.Errorf("%d case lines, the program counted %s (want them equal and at least 100)", n, e["cases"])
	}
	t.Logf("%d cases, %d failed, in %s s", n, failed, e["seconds"])
}

// checkAfterwards checks what the guest kernel's drivers did with the
// devices given back, and the host's view of the attack.
func (g *hostileRun) checkAfterwards(peer *switchPeer) {
	t := g.t
	out := strings.Join(g.out.lines(), "\n")
	if !strings.Contains(out, "HOSTILE-vda="+hostilePattern) {
		t.Error("after the attack, the kernel's virtio-blk driver did not read the disk's pattern (HOSTILE-vda=...)")
	}
	frames, maxLen, echoes, marked := peer.stats()
	if !strings.Contains(out, "HOSTILE-ping-ok") || echoes == 0 {
		t.Errorf("after the attack, the guest's ping through the switch failed (peer answered %d echo requests)", echoes)
	}
	if !strings.Contains(out, "HOSTILE-printk-on-hvc") {
		t.Error("after the attack, a kernel message on the virtio console (hvc0) did not reach the host")
	}
	if !strings.Contains(out, "HOSTILE console-ok") {
		t.Error("no well-formed transmission on the virtio console (the program's own) reached the host")
	}
	if marked["HOSTILE net-ok"] == 0 {
		t.Errorf("none of the program's well-formed frames reached the switch (%d frames: %v)", frames, marked)
	}
	if maxLen > vnet.MaxFrameLen {
		t.Errorf("a %d-byte frame left the VMM (max %d)", maxLen, vnet.MaxFrameLen)
	}
	if r, ok := g.list("reply-to-stats"); !ok {
		t.Error("the program never asked for the stats request (HOSTILE await-stats)")
	} else if r.err != nil && strings.Contains(r.err.Error(), "60 s") {
		t.Errorf("vmm probe list hung after the guest answered its stats request with a Reply: %v", r.err)
	} else {
		t.Logf("probe list answered by a Reply: %v in %s: %s", r.err, r.took.Round(time.Millisecond), strings.TrimSpace(r.out))
	}
	g.mu.Lock()
	alive := g.aliveAtAPI
	g.mu.Unlock()
	r, ok := g.list("api-check")
	switch {
	case !ok:
		t.Error("the guest script never reached the API check (HOSTILE-api-check)")
	case !alive:
		t.Error("the vmm process was gone at the API check")
	case r.err != nil || !strings.Contains(r.out, "signal"):
		t.Errorf("after the attack, vmm probe list did not list the signal probe: %v\n%s", r.err, r.out)
	}
}

// fields parses "k=v k=v ... note=rest of line".
func fields(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ")
		kv, rest, _ := strings.Cut(s, " ")
		k, v, _ := strings.Cut(kv, "=")
		if k == "note" {
			_, v, _ = strings.Cut(s, "=")
			m[k] = v
			break
		}
		m[k] = v
		s = rest
	}
	return m
}

// hostileInitrd writes the project's initramfs followed by an archive
// holding the program as /hostile (Linux unpacks concatenated archives).
func hostileInitrd(t *testing.T, dir, prog string) string {
	base, err := os.ReadFile(filepath.Join(buildDir, "initramfs.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(base)
	w := initramfs.NewWriter(&b)
	if err := w.AddFile("hostile", 0o755, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "initramfs-hostile.cpio")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostileDisk writes a sparse image of size bytes whose first MiB (or all
// of it, if smaller) repeats hostilePattern; it returns those bytes.
func hostileDisk(t *testing.T, path string, size int64) (string, []byte) {
	head := bytes.Repeat([]byte(hostilePattern), int(min(size, 1<<20))/len(hostilePattern))
	f, err := os.Create(path)
	if err == nil {
		if err = f.Truncate(size); err == nil {
			_, err = f.WriteAt(head, 0)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if size <= 1<<20 {
		head = append(head, make([]byte, size-int64(len(head)))...)
	}
	return path, head
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	return b, err
}

// rssAnonKiB reads RssAnon of process pid, 0 when it cannot.
func rssAnonKiB(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kib, _ := strconv.ParseUint(f[0], 10, 64)
				return kib
			}
		}
	}
	return 0
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// hostileSink is the vmm's stdout: the guest's serial port and virtio
// console, which may carry a gigabyte of one line (a hostile transmit). It
// keeps at most maxSinkLines lines of at most maxSinkLine bytes, and calls
// onLine for each completed line.
type hostileSink struct {
	onLine func(string)

	mu   sync.Mutex
	cur  []byte
	kept []string
	run  string // the last "HOSTILE run" line
}

const (
	maxSinkLine  = 1024
	maxSinkLines = 20000
)

func (s *hostileSink) Write(p []byte) (int, error) {
	n := len(p)
	var done []string
	s.mu.Lock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxSinkLine - len(s.cur); room > 0 {
			s.cur = append(s.cur, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(s.cur), "\r")
		s.cur = s.cur[:0]
		p = p[i+1:]
		if len(s.kept) < maxSinkLines {
			s.kept = append(s.kept, line)
		}
		if j := strings.Index(line, "HOSTILE run "); j >= 0 {
			s.run = line[j+len("HOSTILE run "):]
		}
		done = append(done, line)
	}
	s.mu.Unlock()
	for _, l := range done {
		if s.onLine != nil {
			s.onLine(l)
		}
	}
	return n, nil
}

func (s *hostileSink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.kept...)
}

// others returns the last n lines that are not case reports.
func (s *hostileSink) others(n int) string {
	var o []string
	for _, l := range s.lines() {
		if !strings.Contains(l, "HOSTILE case ") && !strings.Contains(l, "HOSTILE run ") {
			o = append(o, l)
		}
	}
	return strings.Join(o[max(0, len(o)-n):], "\n")
}

func (s *hostileSink) lastRun() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == "" {
		return "(none: before the first case)"
	}
	return s.run
}

// cappedBuffer keeps the first hostileStderrMax bytes written and counts
// them all.
type cappedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	all int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all += len(p)
	if room := hostileStderrMax - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *cappedBuffer) total() int { c.mu.Lock(); defer c.mu.Unlock(); return c.all }

func (c *cappedBuffer) String() string { c.mu.Lock(); defer c.mu.Unlock(); return c.b.String() }
