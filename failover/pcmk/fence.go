package pcmk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/vmm"
)

// Fence agent exit codes (fence-agents conventions).
const (
	FenceOK     = 0 // the action succeeded; status: on
	FenceFailed = 1
	FenceOff    = 2 // status: off
)

// FenceActions are the fence agent's actions.
const FenceActions = "on, off, reboot, status, list, monitor, metadata, validate-all"

// maxFenceInput bounds what the fence agent reads from stdin.
const maxFenceInput = 64 << 10

// FenceRequest is one call of the fence agent: its action, its target
// and the device's state directory.
type FenceRequest struct {
	Action   string
	Plug     string // a node (all its VMs) or NODE/VM
	StateDir string
}

// ParseFenceArgs reads the request from the command line (-o ACTION, -n
// PLUG, --state-dir DIR, or their long forms) and from stdin's key=value
// lines as Pacemaker's fencer writes them (action, port or plug or
// nodename, state_dir); the command line wins.
func ParseFenceArgs(args []string, stdin io.Reader) (FenceRequest, error) {
	r := FenceRequest{Action: "reboot", StateDir: "/run/tracevisor"}
	if stdin != nil {
		sc := bufio.NewScanner(io.LimitReader(stdin, maxFenceInput))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return r, fmt.Errorf("stdin line %q: want key=value", line)
			}
			switch k = strings.TrimSpace(k); k {
			case "action", "option":
				r.Action = strings.TrimSpace(v)
			case "port", "plug":
				r.Plug = strings.TrimSpace(v)
			case "nodename":
				if r.Plug == "" {
					r.Plug = strings.TrimSpace(v)
				}
			case "state_dir":
				r.StateDir = strings.TrimSpace(v)
			}
			// Other keys (pcmk_* and the fencer's own) are not ours.
		}
		if err := sc.Err(); err != nil {
			return r, err
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() (string, error) {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch k, _, _ := strings.Cut(a, "="); k {
		case "-o", "--action":
			r.Action, err = val()
		case "-n", "--plug", "--port":
			r.Plug, err = val()
		case "--state-dir":
			r.StateDir, err = val()
		default:
			return r, fmt.Errorf("unknown argument %q (want -o ACTION, -n PLUG, --state-dir DIR)", a)
		}
		if err != nil {
			return r, err
		}
	}
	if r.Action == "metadata" || r.Action == "meta-data" {
		r.Action = "metadata"
		return r, nil
	}
	if !filepath.IsAbs(r.StateDir) {
		return r, fmt.Errorf("state_dir %q: want an absolute path", r.StateDir)
	}
	switch r.Action {
	case "on", "off", "reboot", "status":
		if r.Plug == "" {
			return r, fmt.Errorf("action %s needs a plug (-n NODE or NODE/VM, or port= on stdin)", r.Action)
		}
		if strings.Contains(r.Plug, "..") || strings.HasPrefix(r.Plug, "/") || strings.Count(r.Plug, "/") > 1 {
			return r, fmt.Errorf("plug %q: want NODE or NODE/VM", r.Plug)
		}
	case "list", "monitor", "validate-all":
	default:
		return r, fmt.Errorf("unknown action %q (want one of %s)", r.Action, FenceActions)
	}
	return r, nil
}

// RunFence carries out a fence request and returns the agent's exit code.
func RunFence(ctx context.Context, r FenceRequest, stdout, stderr io.Writer) int {
	switch r.Action {
	case "metadata":
		if err := WriteFenceMetadata(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return FenceFailed
		}
		return FenceOK
	case "monitor", "validate-all":
		// A device starts (monitor) before any VM has made the tree.
		if err := os.MkdirAll(r.StateDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "fence_tracevisor: state_dir %s: %v\n", r.StateDir, err)
			return FenceFailed
		}
		return FenceOK
	case "list":
		nodes, err := os.ReadDir(r.StateDir)
		if err != nil {
			fmt.Fprintf(stderr, "fence_tracevisor: %v\n", err)
			return FenceFailed
		}
		for _, n := range nodes {
			if n.IsDir() {
				fmt.Fprintf(stdout, "%s,\n", n.Name())
			}
		}
		return FenceOK
	case "status":
		on, err := plugOn(ctx, r)
		if err != nil {
			fmt.Fprintf(stderr, "fence_tracevisor: %v\n", err)
			return FenceFailed
		}
		if on {
			fmt.Fprintln(stdout, "Status: ON")
			return FenceOK
		}
		fmt.Fprintln(stdout, "Status: OFF")
		return FenceOff
	case "on":
		// A node's VMs are the cluster's resources: Pacemaker starts
		// them where it places them once the node is back.
		fmt.Fprintf(stdout, "Success: Powered ON (%s: its VMs are started by the cluster manager)\n", r.Plug)
		return FenceOK
	case "off", "reboot":
		if err := plugOff(ctx, r, stderr); err != nil {
			fmt.Fprintf(stderr, "fence_tracevisor: %v\n", err)
			return FenceFailed
		}
		fmt.Fprintf(stdout, "Success: Powered OFF (%s)\n", r.Plug)
		return FenceOK
	}
	fmt.Fprintf(stderr, "fence_tracevisor: unknown action %q\n", r.Action)
	return FenceFailed
}

// plugVMs returns the state directories of the plug's VMs: NODE/VM, or
// every VM under NODE.
//
// A state_dir that is not there is an error (a typo, a share not
// mounted: nothing could confirm the node is off); a node with no
// directory in it never ran a VM of this tree, and is off.
func plugVMs(r FenceRequest) ([]State, error) {
	node, vm, one := strings.Cut(r.Plug, "/")
	if node == "" || (one && vm == "") {
		return nil, fmt.Errorf("plug %q: want NODE or NODE/VM", r.Plug)
	}
	if st, err := os.Stat(r.StateDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("state_dir %s is not a directory here: cannot confirm %s is off", r.StateDir, r.Plug)
	}
	if one {
		return []State{StateFor(r.StateDir, node, vm)}, nil
	}
	ents, err := os.ReadDir(filepath.Join(r.StateDir, node))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no VM was ever started there
	}
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, StateFor(r.StateDir, node, e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// fenceTimeout bounds each VMM call of the fence agent.
const fenceTimeout = 5 * time.Second

// vmOn asks one VM's vmm whether its guest runs. No socket, or nobody
// listening on it (the vmm holds it for its whole life), is off.
func vmOn(ctx context.Context, s State) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	resp, err := api.CallContext(ctx, s.Sock(), api.Request{Op: api.OpStatus})
	if gone(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", s, err)
	}
	if resp.Error != "" {
		return false, fmt.Errorf("%s: %s", s, resp.Error)
	}
	// A paused guest (a snapshot's) is on: a resume lets it answer again.
	return resp.Machine != nil && (resp.Machine.State == vmm.StateRunning || resp.Machine.State == vmm.StatePaused), nil
}

// gone reports whether a call's error says no vmm is there.
func gone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

func plugOn(ctx context.Context, r FenceRequest) (bool, error) {
	vms, err := plugVMs(r)
	if err != nil {
		return false, err
	}
	for _, s := range vms {
		on, err := vmOn(ctx, s)
		if err != nil || on {
			return on, err
		}
	}
	return false, nil
}

// plugOff fences every VM of the plug (its vCPUs stop at once, for
// good), then ends its vmm. A VM whose vmm is gone is off already.
func plugOff(ctx context.Context, r FenceRequest, log io.Writer) error {
	vms, err := plugVMs(r)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range vms {
		cctx, cancel := context.WithTimeout(ctx, fenceTimeout)
		resp, err := api.CallContext(cctx, s.Sock(), api.Request{Op: api.OpFence, Reason: "fence_tracevisor off " + r.Plug})
		cancel()
		switch {
		case gone(err):
			fmt.Fprintf(log, "fence_tracevisor: %s: no vmm runs: off\n", s)
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: fence: %w", s, err))
			continue
		case resp.Error != "":
			errs = append(errs, fmt.Errorf("%s: fence: %s", s, resp.Error))
			continue
		}
		cctx, cancel = context.WithTimeout(ctx, fenceTimeout)
		api.CallContext(cctx, s.Sock(), api.Request{Op: api.OpStop, Reason: "fence_tracevisor off " + r.Plug})
		cancel()
		fmt.Fprintf(log, "fence_tracevisor: %s: fenced and stopped\n", s)
	}
	return errors.Join(errs...)
}

// PlugOn reports whether any VM of plug (NODE or NODE/VM) under stateDir
// still runs its guest: what the fence agent's status says.
func PlugOn(ctx context.Context, stateDir, plug string) (bool, error) {
	return plugOn(ctx, FenceRequest{Plug: plug, StateDir: stateDir})
}
