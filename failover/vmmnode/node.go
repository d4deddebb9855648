package vmmnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover/golden"
	"github.com/tracevisor/tracevisor/failover/netaddr"
)

// DefaultProbes are the probes every node's vmm arms before user space:
// every signal (so that an event for an unwatched process reaches the
// detector, which decides it is nothing), the watched service's exit, and
// the VM-level failures.
func DefaultProbes(service string) []string {
	return []string{
		"catalogue:signal",
		"catalogue:exit:comm=" + service,
		"catalogue:oom",
		"catalogue:panic",
	}
}

// GuestScript is the shell script a node's guest runs: its page (its
// name), its addresses, httpd in the background, the memory hog waiting
// for its trigger, and a loop that keeps the guest up whatever becomes of
// httpd. The loop's sleep runs in the background (a process of its own
// named sleep, which ash does not run inside itself as it may a
// foreground applet): an unwatched process a test can kill.
//
// No step may end the script (no set -e: a command that dies as it starts
// would end the guest); the network set-up and httpd's start are retried
// until they took (httpd still runs a second after it started). The hog (HogTrigger) waits in a usleep; once SIGTERM ends that, it grows
// without bound, with oom_score_adj 1000, so that the OOM killer takes it
// and not the service; another hog then waits. Each step is retried until
// it ends as meant (usleep by SIGTERM, the hog by the OOM killer's
// SIGKILL): on the emulating host a guest process sometimes dies of a
// SIGSEGV as it starts (see README's known problems). Every page the hog
// faults in costs the emulating host milliseconds: a cluster that causes
// OOM gives its guests little memory (HogMem).
func GuestScript(name string, addrs netaddr.Node, service netip.Addr) string {
	return strings.Join([]string{
		"ln -s /bin/busybox /tmp/httpd",
		"mkdir -p /www",
		"echo " + name + " > /www/index.html",
		"until " + addrs.GuestCommands(service) + "; do echo network-setup-failed; sleep 1; done",
		"/tmp/httpd -f -p 80 -h /www & pid=$!; sleep 1",
		"until [ -e /proc/$pid/exe ]; do echo httpd-died-starting; /tmp/httpd -f -p 80 -h /www & pid=$!; sleep 1; done",
		"echo httpd-started $pid",
		"(while :; do (while :; do usleep 2000000000; [ $? = 143 ] && break; done; echo 1000 > /proc/self/oom_score_adj; while :; do awk '" + hogAwk + "'; [ $? = 137 ] && break; done); done) &",
		"while :; do sleep 100000 & wait $!; done",
	}, "\n")
}

// HogTrigger is the comm of the process the guest's memory hog waits in
// (GuestScript): a signal that ends it (SIGTERM) starts the hog. No other
// process of the guest has that name.
const HogTrigger = "usleep"

// HogMem is guest RAM small enough for the hog to reach OOM within about a
// minute on the emulating host (about 27 MiB to fill), and enough for the
// guest's kernel, httpd and the hog's victims to be.
const HogMem = "48M"

// hogAwk allocates and fills 1000-byte strings until the OOM killer ends
// it.
const hogAwk = `BEGIN { for (;;) a[i++] = sprintf("%0999d", i) }`

// Node is one node of a Cluster: its addresses, its files, and the vmm
// process that runs it now (a fresh one after each recovery).
type Node struct {
	Name  string
	Addrs netaddr.Node
	Sock  string // the vmm's control API socket

	c *Cluster

	mu         sync.Mutex
	gen        int // vmms started so far
	proc       *proc
	events     string // the current vmm's events file
	log        string // the current vmm's output
	restored   bool   // the current vmm restored the golden snapshot
	restores   int    // golden restores that served
	restoreErr error  // the last golden restore's failure (a boot followed)
	goldenErr  error  // the last golden snapshot's failure
	cores      []string
	coreErr    error // the last dump's failure (Config.KeepCores)
}

// proc is one vmm process and its end.
type proc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once it exited
	err  error         // its Wait's error, set before done closes
}

// exited reports whether p has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Events returns the path of the current vmm's events file.
func (n *Node) Events() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.events
}

// Log returns the path of the current vmm's output (stdout and stderr).
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log
}

// PID returns the current vmm's process id (0 when none runs).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Restored reports whether the node's current vmm restored its golden
// snapshot (Config.Golden), and how many golden restores have served.
func (n *Node) Restored() (bool, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.restored, n.restores
}

// GoldenErr is why the last golden snapshot could not be taken (the node
// then recovers by booting), or nil.
func (n *Node) GoldenErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.goldenErr
}

// RestoreErr is why the last restore of the golden snapshot failed (a
// boot followed, which took a new one), or nil.
func (n *Node) RestoreErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.restoreErr
}

// args is the vmm command line for a start whose events go to events: a
// boot, or the restore of snapshot directory from. A restore gives the boot's
// --net and --mem in the same order (vmm refuses a snapshot whose
// configuration differs) and no probes or guest command: they come back
// with the snapshot.
func (n *Node) args(events, from string) []string {
	cfg := n.c.cfg
	a := []string{"run", "--api", n.Sock, "--net", "tap:" + n.Addrs.Link, "--mem", cfg.Mem, "--events", events}
	if from != "" {
		return append(append(a, cfg.ExtraArgs...), "--restore", from)
	}
	for _, p := range cfg.Probes {
		a = append(a, "--probe", p)
	}
	a = append(a, cfg.ExtraArgs...)
	return append(a, "--", "sh", "-c", GuestScript(n.Name, n.Addrs, cfg.Service))
}

// boot starts a fresh vmm for the node, sets its link up and waits until
// its httpd answers on the node's own address. With Config.Golden it
// restores the golden snapshot of the node's boot configuration when the
// store has one, and boots if that fails (the snapshot is discarded if
// the vmm refused it: it ended by itself); a boot takes the snapshot. The store's lock on the configuration is
// held throughout, so a cluster that shares the store (Config.GoldenDir)
// waits for the boot of another and then restores its snapshot.
func (n *Node) boot(ctx context.Context) error {
	if !n.c.cfg.Golden {
		return n.start(ctx, "", "")
	}
	store := n.c.golden
	key := golden.Key(n.args("", ""), golden.GuestFiles(n.c.cfg.VMM, n.c.cfg.Env)...)
	unlock, err := store.Lock(ctx, key)
	if err != nil {
		return fmt.Errorf("vmmnode: %s: %w", n.Name, err)
	}
	defer unlock()
	if dir, ok := store.Lookup(key); ok {
		err := n.start(ctx, dir, key)
		n.mu.Lock()
		n.restored, n.restoreErr = err == nil, err
		if err == nil {
			n.restores++
		}
		n.mu.Unlock()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) && ctx.Err() == nil {
			store.Discard(key) // the vmm refused it: the boot below takes a new one
		}
	}
	if err := n.start(ctx, "", key); err != nil {
		return err
	}
	n.mu.Lock()
	n.restored = false
	n.mu.Unlock()
	return nil
}

// start starts a vmm for the node, booting (from empty) or restoring
// snapshot directory from, and returns once its httpd answers with the
// fence rules armed. A boot with a key (Config.Golden) takes key's golden
// snapshot before the rules are armed.
func (n *Node) start(ctx context.Context, from, key string) error {
	cfg := n.c.cfg
	if cfg.BootSlots != nil && from == "" { // a restore keeps no core busy for long
		select {
		case cfg.BootSlots <- struct{}{}:
			defer func() { <-cfg.BootSlots }()
		case <-ctx.Done():
			return fmt.Errorf("vmmnode: boot %s: waiting for a boot slot: %w", n.Name, context.Cause(ctx))
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.BootTimeout, fmt.Errorf("%s did not boot in %v", n.Name, cfg.BootTimeout))
	defer cancel()
	n.mu.Lock()
	if n.proc != nil && !n.proc.exited() {
		n.mu.Unlock()
		return fmt.Errorf("vmmnode: %s: a vmm runs already", n.Name)
	}
	n.gen++
	base := filepath.Join(cfg.Dir, fmt.Sprintf("%s.%d", n.Name, n.gen))
	n.events, n.log = base+".events.jsonl", base+".log"
	os.Remove(n.Sock)
	log, err := os.Create(n.log)
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("vmmnode: %s: %w", n.Name, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.c.ns.Name(), cfg.VMM}, n.args(n.events, from)...)...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	// No Pdeathsig: it fires when the forking thread exits, and the
	// namespace's Do ends the threads it locks, any of which may be the
	// one that forked. Close stops every vmm.
	if err := cmd.Start(); err != nil {
		log.Close()
		n.mu.Unlock()
		return fmt.Errorf("vmmnode: %s: start vmm: %w", n.Name, err)
	}
	p := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	n.proc = p
	n.mu.Unlock()

	ctx, stopOnExit := n.cancelOnExit(ctx, p)
	defer stopOnExit()
	if err := n.c.ns.SetupLink(ctx, n.Addrs.Link, n.Addrs.Host); err != nil {
		return n.bootFailed(p, err)
	}
	if _, err := n.c.client.AwaitAnswer(ctx, n.Addrs.Guest.Addr().String(), n.Name, 500*time.Millisecond, 10*time.Second); err != nil {
		return n.bootFailed(p, err)
	}
	if key != "" && from == "" {
		// A snapshot that fails leaves the node serving, without one:
		// its recoveries boot (GoldenErr says why).
		err := n.c.golden.Take(ctx, n.Sock, key, n.args("", ""))
		n.mu.Lock()
		n.goldenErr = err
		n.mu.Unlock()
	}
	for _, r := range cfg.FenceRules {
		if err := fenceOn(ctx, n.Sock, r); err != nil {
			return n.bootFailed(p, err)
		}
	}
	return nil
}

// cancelOnExit returns ctx cancelled, with the vmm's exit as the cause,
// when p exits.
func (n *Node) cancelOnExit(ctx context.Context, p *proc) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-p.done:
			cancel(fmt.Errorf("%s's vmm exited (%v); its output is in %s", n.Name, p.err, p.log.Name()))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// bootFailed stops a vmm whose boot failed and says why, with the tail of
// its output.
func (n *Node) bootFailed(p *proc, err error) error {
	if p.exited() {
		err = fmt.Errorf("%w: %w", errExited, err)
	}
	n.kill(p)
	return fmt.Errorf("vmmnode: boot %s: %w\n--- vmm output (tail) ---\n%s", n.Name, err, Tail(p.log.Name(), 2000))
}

// errExited marks a start that failed because its vmm ended by itself
// (a snapshot it refused ends it at once), not one it gave up on.
var errExited = errors.New("the vmm exited")

// stop ends the node's vmm: the API's stop, then SIGTERM, then SIGKILL,
// each given part of ctx's time; it returns once the process exited (its
// tap is gone with it).
func (n *Node) stop(ctx context.Context, why string) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	grace := n.c.cfg.StopTimeout / 2
	sctx, cancel := context.WithTimeout(ctx, grace)
	err := stop(sctx, n.Sock, why)
	cancel()
	if err == nil && waitDone(ctx, p, grace) {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if waitDone(ctx, p, grace) {
		return nil
	}
	if n.kill(p) {
		return nil
	}
	return fmt.Errorf("vmmnode: %s: vmm (pid %d) did not exit after the API stop, SIGTERM and SIGKILL", n.Name, p.cmd.Process.Pid)
}

// exitedWithin reports whether the node's current vmm has exited, or does
// within d (and ctx).
func (n *Node) exitedWithin(ctx context.Context, d time.Duration) bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	return p == nil || waitDone(ctx, p, d)
}

// kill SIGKILLs p and waits up to killWait for it; it reports whether it
// exited.
func (n *Node) kill(p *proc) bool {
	p.cmd.Process.Kill()
	return waitDone(context.Background(), p, killWait)
}

// killWait bounds the wait for a SIGKILLed vmm to be reaped.
const killWait = 30 * time.Second

// waitDone waits up to d (and ctx) for p to exit.
func waitDone(ctx context.Context, p *proc, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return p.exited()
}

// errNoVMM: the node has no vmm running.
var errNoVMM = errors.New("no vmm runs for this node")

// Tail returns the last n bytes of a vmm's output file, for an error
// message. The file holds the guest's console, so only its end is read.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(n) {
		f.Seek(-int64(n), io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, int64(n)))
	return string(b)
}

// keepCore writes the current (failed, fenced) guest as an ELF core
// beside its log, recording it in Cores, or the failure in CoreErr.
func (n *Node) keepCore(ctx context.Context) {
	n.mu.Lock()
	p, gen := n.proc, n.gen
	n.mu.Unlock()
	if p == nil || p.exited() {
		return
	}
	path := filepath.Join(n.c.cfg.Dir, fmt.Sprintf("%s.%d.core", n.Name, gen)) // Dir is absolute (New)
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := call(dctx, n.Sock, api.Request{Op: api.OpDump, Path: path})
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.coreErr = err
		return
	}
	n.cores = append(n.cores, path)
}

// Cores lists the ELF cores kept of the node's failed guests
// (Config.KeepCores), oldest first.
func (n *Node) Cores() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.cores...)
}

// CoreErr is why the last core of a failed guest could not be written, or
// nil.
func (n *Node) CoreErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.coreErr
}
