package main

import (
	"fmt"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
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
	if err := checkOutputs(f.outputs(), f.inputs()); err != nil {
		return p, err
	}
	return p, nil
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
