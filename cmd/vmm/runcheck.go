package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/vmm"
)

// runPlan is what checkRun makes of the run flags.
type runPlan struct {
	mem     uint64 // guest RAM, bytes
	profile vmm.Profile
	probes  []probe.Spec
	fenceOn []api.FenceRule
}

// checkRun checks every run flag that can be checked without opening a
// file or a device, so that a bad command line fails at once, before
// anything is built: sizes, names, the probe specs and the output paths.
// meminfo reads the host's /proc/meminfo (tests pass their own).
func checkRun(f runFlags, meminfo func() ([]byte, error)) (runPlan, error) {
	var p runPlan
	var err error
	if p.mem, err = parseSize(f.mem); err != nil {
		return p, err
	}
	if err := checkGuestMem(f.mem, p.mem, meminfo); err != nil {
		return p, err
	}
	if f.console != "serial" && f.console != "virtio" {
		return p, fmt.Errorf("--console %q: want serial or virtio", f.console)
	}
	if p.profile, err = vmm.ParseProfile(f.profile); err != nil {
		return p, err
	}
	if p.probes, err = parseProbes(f.probes); err != nil {
		return p, err
	}
	if p.fenceOn, err = parseFenceRules(f.fenceOn); err != nil {
		return p, err
	}
	if err := checkRestore(f); err != nil {
		return p, err
	}
	if err := checkOutputs(f.outputs(), f.inputs()); err != nil {
		return p, err
	}
	return p, nil
}

// checkRestore checks --restore: a directory holding a snapshot, and no
// flag that only a boot uses.
func checkRestore(f runFlags) error {
	if f.restore == "" {
		return nil
	}
	for _, b := range []struct{ flag, value string }{{"--kernel", f.kernel}, {"--initrd", f.initrd}, {"--cmdline", f.cmdline}} {
		if b.value != "" {
			return fmt.Errorf("%s with --restore: a restored guest runs from the snapshot's memory, not from a kernel", b.flag)
		}
	}
	if len(f.probes) > 0 {
		return errors.New("--probe with --restore: the restored guest keeps the probes it had armed; attach more with 'vmm probe attach --api SOCKET'")
	}
	for _, name := range []string{snapshot.StateFile, snapshot.MemoryFile} {
		st, err := os.Stat(filepath.Join(f.restore, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("--restore %s: no snapshot there (no %s); take one with 'vmm snapshot --api SOCKET %s'", f.restore, name, f.restore)
		case err != nil:
			return fmt.Errorf("--restore %s: %w", f.restore, err)
		case !st.Mode().IsRegular():
			return fmt.Errorf("--restore %s: %s is not a regular file", f.restore, name)
		}
	}
	return nil
}

// parseFenceRules checks the --fence-on rules.
func parseFenceRules(flags []string) ([]api.FenceRule, error) {
	if len(flags) > api.MaxFenceRules {
		return nil, fmt.Errorf("--fence-on: %d rules; a vmm arms at most %d", len(flags), api.MaxFenceRules)
	}
	var rules []api.FenceRule
	for _, s := range flags {
		r, err := api.ParseFenceRule(s)
		if err != nil {
			return nil, fmt.Errorf("--fence-on: %w", err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}
