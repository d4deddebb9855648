package pcmk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover/golden"
	"github.com/tracevisor/tracevisor/failover/netaddr"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
	"github.com/tracevisor/tracevisor/vmm"
)

// Promotion scores the agent gives its instances: a promoted instance
// keeps its role against an unpromoted one that came back. A failed one
// gets ScoreFailed (-INFINITY), not merely none: a promoted instance's
// role is sticky (resource-stickiness adds to its score), and without it
// Pacemaker restarts a failed promoted instance in place and promotes it
// there again — a reboot's wait — instead of promoting the standby at
// once. The next start gives it ScoreUnpromoted.
const (
	ScorePromoted   = 10
	ScoreUnpromoted = 5
	ScoreFailed     = -1000000 // Pacemaker's -INFINITY
)

// Timeouts of the agent's own steps (Pacemaker's op timeout bounds the
// whole action; start's wait for the guest takes what is left of it).
const (
	apiTimeout      = 5 * time.Second
	serviceTimeout  = 3 * time.Second // each of start's tries
	defaultStartFor = 5 * time.Minute
	stopGrace       = 10 * time.Second
)

// Agent runs the actions of one resource instance.
type Agent struct {
	P      Params
	CRM    CRM
	Stderr io.Writer
}

// state is the instance's state directory.
func (a *Agent) state() State { return StateFor(a.P.StateDir, a.P.Node, a.P.Name) }

func (a *Agent) logf(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "tracevisor vm %s: %s\n", a.P.Name, fmt.Sprintf(format, args...))
}

// fail reports why an action failed and returns code.
func (a *Agent) fail(code ExitCode, format string, args ...any) ExitCode {
	exitReason(a.Stderr, fmt.Sprintf(format, args...))
	return code
}

// Validate checks what start needs: the vmm binary and fence rules the
// vmm accepts.
func (a *Agent) Validate() ExitCode {
	st, err := os.Stat(a.P.VMM)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return a.fail(ErrInstalled, "vmm %s is not an executable here (make install-pcmk installs it)", a.P.VMM)
	}
	for _, r := range a.P.FenceRules {
		if _, err := api.ParseFenceRule(r); err != nil {
			return a.fail(ErrConfigured, "fence_rules: %v", err)
		}
	}
	return Success
}

// vmmPID is the running vmm of this instance (0: none).
func (a *Agent) vmmPID() int { return a.state().PID("vmm.pid", a.state().Sock()) }

// Monitor reports the instance's state: 7 when cleanly stopped; 0 (8 when
// promoted) when the vmm runs, its guest is not fenced, no failure
// verdict stands and (check_service) the service accepts; else 1 (9 when
// promoted) with the reason. A failed instance gives up its promotion
// score at once.
func (a *Agent) Monitor(ctx context.Context) ExitCode {
	s := a.state()
	promoted := s.Has("promoted")
	failed := func(format string, args ...any) ExitCode {
		if a.P.Promotable {
			a.CRM.SetPromotion(ctx, a.P.Resource, ScoreFailed)
		}
		code := ErrGeneric
		if promoted {
			code = FailedPromoted
		}
		return a.fail(code, format, args...)
	}
	if a.vmmPID() == 0 {
		if !s.Has("started") {
			return NotRunning
		}
		if a.P.Interval == 0 {
			// A probe (a node that joins, a cleanup) asks what runs
			// now: nothing does. The marks are a crash's leftovers
			// (the node was lost with its VMs), and a fast path
			// that may still wait for a vmm that will not come.
			if pid := s.PID("fastpath.pid", "fastpath"); pid != 0 {
				syscall.Kill(pid, syscall.SIGTERM)
			}
			for _, f := range []string{"started", "promoted", "vmm.pid", "fastpath.pid"} {
				s.Unmark(f)
			}
			return NotRunning
		}
		return failed("the vmm is gone (it exited or was killed); its output is in %s", s.Path("vmm.log"))
	}
	if v, ok := s.Verdict(); ok {
		return failed("failure verdict: %s", v)
	}
	st, err := a.status(ctx)
	if err != nil {
		return failed("the vmm's API does not answer: %v", err)
	}
	if st.State == vmm.StateFenced {
		return failed("the VMM fenced its guest: %s", st.FenceReason)
	}
	if a.P.Check {
		if err := dialService(ctx, a.P.GuestAddr.Addr(), a.P.Port, a.P.ServiceWait); err != nil {
			return failed("service %s does not accept: %v", a.P.Watch, err)
		}
	}
	if a.P.Promotable {
		score := ScoreUnpromoted
		if promoted {
			score = ScorePromoted
		}
		if err := a.CRM.SetPromotion(ctx, a.P.Resource, score); err != nil {
			a.logf("set promotion score: %v", err)
		}
	}
	if promoted {
		return RunningPromote
	}
	return Success
}

// status asks the vmm for its machine status.
func (a *Agent) status(ctx context.Context) (*vmm.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	r, err := api.CallContext(ctx, a.state().Sock(), api.Request{Op: api.OpStatus})
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	if r.Machine == nil {
		return nil, errors.New("status answer without the machine")
	}
	return r.Machine, nil
}

// dialService connects to the guest's service port within wait (the
// kernel retransmits an unanswered SYN meanwhile) and closes again.
func dialService(ctx context.Context, addr netip.Addr, port int, wait time.Duration) error {
	d := net.Dialer{Timeout: wait}
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		return err
	}
	return c.Close()
}

// Start boots the VM, sets up its link (and the service address's DNAT),
// waits until the service accepts, arms the fence rules and starts the
// fast path. A running healthy instance is left as it is.
func (a *Agent) Start(ctx context.Context) ExitCode {
	if code := a.Validate(); code != Success {
		return code
	}
	switch a.Monitor(ctx) {
	case Success, RunningPromote:
		return Success
	case NotRunning:
	default: // a failed instance: Pacemaker stops before it starts, but be sure
		a.Stop(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, startBudget())
	defer cancel()
	s := a.state()
	for _, f := range []string{"verdict.json", "promoted", "api.sock"} {
		s.Unmark(f)
	}
	s.KeepPrevious()
	if err := s.Mark("started"); err != nil {
		return a.fail(ErrGeneric, "state directory: %v", err)
	}
	boot := a.vmmArgs("")
	store, key := a.golden(), ""
	if a.P.Golden {
		key = golden.Key(boot, golden.GuestFiles(a.P.VMM, os.Environ())...)
		if dir, ok := store.Lookup(key); ok {
			// A restore that fails leaves the rest of the budget to a
			// boot; a snapshot the vmm refused (it ended at once) is
			// discarded, and the boot takes a new one.
			rctx, cancel := context.WithTimeout(ctx, restoreFor)
			err := a.launch(rctx, a.vmmArgs(dir), "")
			cancel()
			if err == nil {
				a.logf("start: restored the golden snapshot %s", dir)
				return a.started(ctx)
			}
			refused := errors.Is(err, errVMMExited) && ctx.Err() == nil
			if code := a.Stop(context.Background()); code != Success {
				return a.fail(code, "start: the golden snapshot %s did not restore (%v), and its vmm did not stop", dir, err)
			}
			if refused {
				store.Discard(key)
			}
			a.logf("start: the golden snapshot %s did not restore (%v; discarded: %v): booting", dir, err, refused)
			if err := s.Mark("started"); err != nil {
				return a.fail(ErrGeneric, "state directory: %v", err)
			}
		}
	}
	if err := a.launch(ctx, boot, key); err != nil {
		a.Stop(context.Background())
		return a.fail(ErrGeneric, "start: %v (vmm output: %s)", err, vmmnode.Tail(s.Path("vmm.log"), 600))
	}
	return a.started(ctx)
}

// restoreFor bounds start's restore of a golden snapshot, from the vmm's
// start until the service accepts (about a second here).
const restoreFor = time.Minute

// golden is the instance's golden snapshot store, in its state directory.
func (a *Agent) golden() golden.Store { return golden.Store{Dir: a.state().Path("golden")} }

// launch starts the vmm with args and brings the instance up (bringUp);
// a boot with a golden key snapshots the guest once its service accepts.
// A vmm that ends by itself meanwhile ends the bring-up at once, with an
// error that is errVMMExited.
func (a *Agent) launch(ctx context.Context, args []string, key string) error {
	s := a.state()
	pid, err := a.spawn("vmm.log", a.P.VMM, args...)
	if err != nil {
		return fmt.Errorf("start vmm: %w", err)
	}
	if err := s.WritePID("vmm.pid", pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("state directory: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for ctx.Err() == nil {
			if a.vmmPID() == 0 {
				cancel(errVMMExited)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	err = a.bringUp(ctx, args, key)
	if err != nil && !errors.Is(err, errVMMExited) && errors.Is(context.Cause(ctx), errVMMExited) {
		err = fmt.Errorf("%w: %w", errVMMExited, err) // a step that failed on the cancel without saying why
	}
	return err
}

// errVMMExited marks a start whose vmm ended by itself while the agent
// brought it up.
var errVMMExited = errors.New("the vmm exited while starting")

// started ends a start that brought the instance up.
func (a *Agent) started(ctx context.Context) ExitCode {
	if a.P.Promotable {
		if err := a.CRM.SetPromotion(ctx, a.P.Resource, ScoreUnpromoted); err != nil {
			a.logf("set promotion score: %v", err)
		}
	}
	return Success
}

// bringUp does start's steps after the vmm runs. With a golden key (a
// boot of a golden instance) the guest is snapshotted as key's golden
// snapshot once its service accepts, before the fence rules are armed
// (they are armed again after each restore); a snapshot that fails is
// logged, and the next start boots again.
func (a *Agent) bringUp(ctx context.Context, args []string, key string) error {
	s := a.state()
	ns, err := netaddr.Here(a.P.Node)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := ns.SetupLink(ctx, a.P.Tap, a.P.HostAddr); err != nil {
		return err
	}
	if a.P.Service.IsValid() {
		if err := ns.DNAT(a.P.Service, a.P.GuestAddr.Addr()); err != nil {
			return err
		}
	}
	for {
		if dialService(ctx, a.P.GuestAddr.Addr(), a.P.Port, serviceTimeout) == nil {
			break
		}
		select {
		case <-ctx.Done(): // the start's timeout, or launch's watch saw the vmm exit
			return fmt.Errorf("service %s at %v:%d did not accept: %w", a.P.Watch, a.P.GuestAddr.Addr(), a.P.Port, context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
	if key != "" {
		if err := a.golden().Take(ctx, s.Sock(), key, args); err != nil {
			a.logf("start: no golden snapshot: %v", err)
		} else {
			a.logf("start: golden snapshot taken in %s", a.golden().Path(key))
		}
	}
	for _, r := range a.P.FenceRules {
		cctx, cancel := context.WithTimeout(ctx, apiTimeout)
		resp, err := api.CallContext(cctx, s.Sock(), api.Request{Op: api.OpFenceOn, Rule: r})
		cancel()
		if err == nil && resp.Error != "" {
			err = errors.New(resp.Error)
		}
		if err != nil {
			return fmt.Errorf("arm fence rule %q: %w", r, err)
		}
	}
	if a.P.FastPath {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		pid, err := a.spawn("fastpath.log", self, "fastpath", "--state", string(s),
			"--resource", a.P.Resource, "--node", a.P.Node, "--service", a.P.Watch)
		if err != nil {
			return fmt.Errorf("start the fast path: %w", err)
		}
		if err := s.WritePID("fastpath.pid", pid); err != nil {
			return err
		}
	}
	return nil
}

// startBudget is the time start may take: Pacemaker's op timeout (passed
// in ms) less a margin to report a failure in, or defaultStartFor.
func startBudget() time.Duration {
	ms, err := strconv.ParseInt(os.Getenv("OCF_RESKEY_CRM_meta_timeout"), 10, 64)
	if err != nil || ms <= 0 {
		return defaultStartFor
	}
	d := time.Duration(ms) * time.Millisecond
	if d > 4*time.Second {
		d -= 2 * time.Second
	}
	return d
}

// vmmArgs is the vmm command line of the instance: a boot, or the
// restore of the golden snapshot in directory from (the boot's --net and
// --mem, as the vmm wants them; the probes and the guest's command come
// back with the snapshot).
func (a *Agent) vmmArgs(from string) []string {
	s := a.state()
	args := []string{"run", "--api", s.Sock(), "--net", "tap:" + a.P.Tap, "--mem", a.P.Mem,
		"--events", s.Path("events.jsonl")}
	if from != "" {
		return append(args, "--restore", from)
	}
	for _, p := range a.P.Probes {
		args = append(args, "--probe", p)
	}
	script := a.P.GuestCmd
	if script == "" {
		script = vmmnode.GuestScript(a.P.Name+"@"+a.P.Node,
			netaddr.Node{Link: a.P.Tap, Host: a.P.HostAddr, Guest: a.P.GuestAddr}, netip.Addr{})
	}
	return append(args, "--", "sh", "-c", script)
}

// spawn starts a daemon of the instance in a session of its own, its
// output appended to the state's file log; it returns its pid. The agent
// exits long before it does.
func (a *Agent) spawn(log, name string, args ...string) (int, error) {
	s := a.state()
	if err := os.MkdirAll(string(s), 0o755); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(s.Path(log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fmt.Fprintf(f, "--- %s: %s started by the resource agent\n", time.Now().UTC().Format(time.RFC3339Nano), name)
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	// Reap it if it ends while the agent still runs; otherwise init does.
	go cmd.Wait()
	return pid, nil
}

// Stop ends the fast path and the vmm (API stop, then SIGTERM, then
// SIGKILL), removes the DNAT and the promotion score. Stopping a stopped
// or failed instance succeeds.
func (a *Agent) Stop(ctx context.Context) ExitCode {
	s := a.state()
	if pid := s.PID("fastpath.pid", "fastpath"); pid != 0 {
		endProcess(pid, func() { syscall.Kill(pid, syscall.SIGTERM) }, 2*time.Second)
	}
	if pid := a.vmmPID(); pid != 0 {
		ok := endProcess(pid, func() {
			cctx, cancel := context.WithTimeout(ctx, apiTimeout)
			defer cancel()
			api.CallContext(cctx, s.Sock(), api.Request{Op: api.OpStop, Reason: "pacemaker stop"})
		}, stopGrace)
		if !ok {
			return a.fail(ErrGeneric, "vmm pid %d did not exit after the API stop, SIGTERM and SIGKILL", pid)
		}
	}
	if a.P.Service.IsValid() {
		if ns, err := netaddr.Here(a.P.Node); err == nil {
			if err := ns.RemoveDNAT(a.P.Service); err != nil {
				a.logf("remove DNAT: %v", err)
			}
			ns.Close()
		}
	}
	if a.P.Promotable {
		a.CRM.DelPromotion(ctx, a.P.Resource)
	}
	if s.Has("verdict.json") {
		os.Rename(s.Path("verdict.json"), s.Path("verdict.last.json"))
	}
	for _, f := range []string{"promoted", "started", "api.sock", "vmm.pid", "fastpath.pid"} {
		s.Unmark(f)
	}
	return Success
}

// endProcess asks pid to end (ask, then SIGTERM after grace, then
// SIGKILL) and reports whether it is gone.
func endProcess(pid int, ask func(), grace time.Duration) bool {
	gone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			if syscall.Kill(pid, 0) != nil || isZombie(pid) {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ask()
	if gone(grace) {
		return true
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if gone(grace) {
		return true
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return gone(grace)
}

func isZombie(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && zombie(st)
}

// Promote makes this instance the one that serves: it is marked promoted
// and given the promoted score.
func (a *Agent) Promote(ctx context.Context) ExitCode {
	switch code := a.Monitor(ctx); code {
	case Success, RunningPromote:
	default:
		return a.fail(ErrGeneric, "cannot promote an instance that is not healthy (monitor said %d)", code)
	}
	if err := a.state().Mark("promoted"); err != nil {
		return a.fail(ErrGeneric, "state directory: %v", err)
	}
	if a.P.Promotable {
		if err := a.CRM.SetPromotion(ctx, a.P.Resource, ScorePromoted); err != nil {
			a.logf("set promotion score: %v", err)
		}
	}
	return Success
}

// Demote takes the promoted mark away (the next monitor gives a healthy
// instance the unpromoted score; a failed one keeps none). A stopped
// instance is demoted already.
func (a *Agent) Demote(context.Context) ExitCode {
	if err := a.state().Unmark("promoted"); err != nil {
		return a.fail(ErrGeneric, "state directory: %v", err)
	}
	return Success
}
