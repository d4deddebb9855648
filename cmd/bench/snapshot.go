package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/internal/netns"
	"github.com/tracevisor/tracevisor/internal/procmem"
	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/vishvananda/netlink"
)

const (
	snapHostIP  = "10.0.3.1"
	snapGuestIP = "10.0.3.15"
	snapTap     = "tvs0"
	// snapAnswerWait bounds a cold boot (or a restore) to the service's
	// first answer.
	snapAnswerWait = 10 * time.Minute
)

// snapScript is the guest of `bench snapshot`: busybox httpd on the
// guest's NIC, the service the host asks.
const snapScript = `
ifconfig lo 127.0.0.1 up
ifconfig eth0 ` + snapGuestIP + ` netmask 255.255.255.0 up
ln -s /bin/busybox /tmp/httpd; mkdir -p /www; echo served > /www/index.html
exec /tmp/httpd -f -p 80 -h /www
`

// snapRun is one vmm of the benchmark, booted or restored, in a network
// namespace of its own with its NIC on tap snapTap.
type snapRun struct {
	ns     netns.NS
	cmd    *exec.Cmd
	sock   string
	report string
	out    bytes.Buffer
	exited chan struct{}
	// answered: from the vmm's start to the service's first answer.
	answered time.Duration
}

// startSnapRun starts a vmm with args (after run's own --api, --report,
// --mem and --net) in a new namespace, and waits for the guest's httpd
// to answer the host.
func startSnapRun(ctx context.Context, dir, name, mem string, args ...string) (*snapRun, error) {
	ns, err := netns.New("tvsnap-")
	if err != nil {
		return nil, err
	}
	r := &snapRun{ns: ns, sock: filepath.Join(dir, name+".sock"), report: filepath.Join(dir, name+".json"),
		exited: make(chan struct{})}
	full := append([]string{"run", "--api", r.sock, "--report", r.report, "--mem", mem, "--net", "tap:" + snapTap}, args...)
	r.cmd = ns.Command(ctx, vmmBinary(), full...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	vctx, exited := context.WithCancelCause(ctx) // ends when the vmm exits
	start := time.Now()
	if err := r.cmd.Start(); err != nil {
		exited(err)
		ns.Delete()
		return nil, err
	}
	go func() {
		exited(fmt.Errorf("vmm exited: %v", r.cmd.Wait()))
		close(r.exited)
	}()
	if err := awaitLink(vctx, ns, snapTap); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, r.out.String())
	}
	if err := ns.ConfigureTAP(vctx, snapTap, snapHostIP+"/24"); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, r.out.String())
	}
	if err := netns.Retry(vctx, snapAnswerWait, 20*time.Millisecond, func() error {
		return httpAnswer(ns, snapGuestIP+":80")
	}); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: the guest's httpd: %w\n%s", name, err, r.out.String())
	}
	r.answered = time.Since(start)
	return r, nil
}

// awaitLink waits for the vmm's tap to appear in ns, looking every 2 ms
// (ConfigureTAP's own 100 ms would round a restore's time up by as much).
func awaitLink(ctx context.Context, ns netns.NS, dev string) error {
	return netns.Retry(ctx, time.Minute, 2*time.Millisecond, func() error {
		return ns.Do(func() error { _, err := netlink.LinkByName(dev); return err })
	})
}

// httpAnswer asks http://addr/ from inside ns and wants the page.
func httpAnswer(ns netns.NS, addr string) error {
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, time.Second); return err }); err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(c, 4096))
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.")) || !bytes.Contains(b, []byte("served")) {
		return fmt.Errorf("answer %q", b)
	}
	return nil
}

// stop ends the vmm through its API and reads its --report.
func (r *snapRun) stop() (report, error) {
	defer r.close()
	if _, err := api.Stop(r.sock, "bench over"); err != nil {
		return report{}, err
	}
	select {
	case <-r.exited:
	case <-time.After(time.Minute):
		return report{}, errors.New("the vmm did not exit within a minute of the API's stop")
	}
	return readReport(r.report)
}

// close kills the vmm if it still runs and deletes its namespace.
func (r *snapRun) close() {
	r.cmd.Process.Kill()
	<-r.exited
	if err := r.ns.Delete(); err != nil {
		fmt.Fprintln(os.Stderr, "bench snapshot:", err)
	}
}

// sizeResult is one guest RAM size's numbers.
type sizeResult struct {
	mem                 string
	cold                time.Duration   // cold boot → service answering
	snap                time.Duration   // the snapshot request (guest paused throughout)
	snapDisk, snapBytes uint64          // the memory file: on disk, and its length
	restore, toGuest    []time.Duration // vmm start → restored, → first guest instruction
	answer              []time.Duration // vmm start → service answering
}

// benchSnapshot measures, for each guest RAM size, a cold boot to the
// service (httpd) answering the host, the snapshot of that guest, and n
// restores from it to the guest's first instruction and to the service
// answering; then two clones of the first size's snapshot side by side:
// how much of their resident guest memory they share.
func benchSnapshot(n int, mems []string, dir string) (err error) {
	if n < 1 {
		return fmt.Errorf("-n %d: need at least one restore", n)
	}
	if why := netns.Unusable(); why != "" {
		return fmt.Errorf("needs a network namespace with a tap (the service is asked from the host): %s", why)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-snapshot"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Absolute and without links: the vmm's API takes absolute paths, and
	// /proc/PID/smaps names the memory file by its real path.
	if dir, err = filepath.Abs(dir); err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return err
	}
	var results []sizeResult
	var profile string
	var first string // the first size's snapshot, for the clones
	for _, mem := range mems {
		res := sizeResult{mem: mem}
		fmt.Printf("%s: cold boot...\n", mem)
		orig, err := startSnapRun(ctx, dir, "boot-"+mem, mem, "--", "sh", "-c", snapScript)
		if err != nil {
			return err
		}
		res.cold = orig.answered
		fmt.Printf("%s: cold boot → httpd answering %v; snapshot...\n", mem, orig.answered.Round(time.Millisecond))
		snapDir := filepath.Join(dir, "snap-"+mem)
		r, err := api.Snapshot(orig.sock, snapDir, true)
		if err != nil {
			orig.close()
			return fmt.Errorf("%s: snapshot: %w", mem, err)
		}
		res.snap = time.Duration(r.SnapshotNS)
		if _, err := orig.stop(); err != nil {
			return fmt.Errorf("%s: the booted vmm: %w", mem, err)
		}
		if res.snapDisk, res.snapBytes, err = fileSize(filepath.Join(snapDir, snapshot.MemoryFile)); err != nil {
			return err
		}
		if first == "" {
			first = snapDir
		}
		for i := 0; i < n; i++ {
			c, err := startSnapRun(ctx, dir, fmt.Sprintf("restore-%s-%d", mem, i), mem, "--restore", snapDir)
			if err != nil {
				return err
			}
			rep, err := c.stop()
			if err != nil {
				return fmt.Errorf("%s: restore %d: %w", mem, i+1, err)
			}
			if rep.StartToGuestMS == 0 {
				return fmt.Errorf("%s: restore %d: the report has no first guest entry (%s)", mem, i+1, rep.Ending)
			}
			profile = rep.Profile
			res.restore = append(res.restore, ms(rep.RestoreMS))
			res.toGuest = append(res.toGuest, ms(rep.StartToGuestMS))
			res.answer = append(res.answer, c.answered)
			fmt.Printf("%s: restore %d/%d: restored %v, guest running %v, httpd answering %v\n", mem, i+1, n,
				ms(rep.RestoreMS).Round(10*time.Microsecond), ms(rep.StartToGuestMS).Round(10*time.Microsecond),
				c.answered.Round(time.Millisecond))
		}
		results = append(results, res)
	}
	share, err := benchClones(ctx, dir, first, mems[0])
	if err != nil {
		return err
	}
	printSnapshot(profile, results, share)
	return nil
}

// ms is a report's milliseconds as a duration.
func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// fileSize returns a file's bytes on disk and its length.
func fileSize(path string) (disk, length uint64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return uint64(fi.Size()), uint64(fi.Size()), nil
	}
	return uint64(st.Blocks) * 512, uint64(fi.Size()), nil
}

// cloneShare is how two clones of one snapshot hold its memory.
type cloneShare struct {
	mem        string
	alone      procmem.Use // the first clone, by itself
	a, b       procmem.Use // each, side by side
	aRSS, bRSS uint64      // each process's whole RSS (VmRSS), side by side
}

// benchClones restores two clones of the snapshot in snapDir, one after the
// other, each answering once, and reads how each maps the snapshot's
// memory file.
func benchClones(ctx context.Context, dir, snapDir, mem string) (cloneShare, error) {
	s := cloneShare{mem: mem}
	fmt.Printf("%s: two clones side by side...\n", mem)
	memFile := filepath.Join(snapDir, snapshot.MemoryFile)
	a, err := startSnapRun(ctx, dir, "clone-a", mem, "--restore", snapDir)
	if err != nil {
		return s, err
	}
	defer a.close()
	if s.alone, err = procmem.FileMapping(a.cmd.Process.Pid, memFile); err != nil {
		return s, err
	}
	b, err := startSnapRun(ctx, dir, "clone-b", mem, "--restore", snapDir)
	if err != nil {
		return s, err
	}
	defer b.close()
	// Each answers once more, now that both run.
	for _, r := range []*snapRun{a, b} {
		if err := httpAnswer(r.ns, snapGuestIP+":80"); err != nil {
			return s, fmt.Errorf("a clone beside the other: %w", err)
		}
	}
	if s.a, err = procmem.FileMapping(a.cmd.Process.Pid, memFile); err != nil {
		return s, err
	}
	if s.b, err = procmem.FileMapping(b.cmd.Process.Pid, memFile); err != nil {
		return s, err
	}
	if s.aRSS, err = procmem.RSS(a.cmd.Process.Pid); err != nil {
		return s, err
	}
	if s.bRSS, err = procmem.RSS(b.cmd.Process.Pid); err != nil {
		return s, err
	}
	return s, nil
}
