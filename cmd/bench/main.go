// Command bench runs tracevisor's benchmarks and prints their numbers.
//
//	bench boot [-n N]   boot the project's guest N times: median boot-to-init
//	                    time and the VMM's RSS beyond guest RAM
//	bench virtio        virtio-blk read throughput in the guest, as a ratio
//	                    to the host reading the same image in the same run;
//	                    then virtio-net TCP throughput host <-> guest over a
//	                    tap (in a netns of its own), as a ratio to TCP over
//	                    loopback in the same run (root only, else skipped)
//	bench probe [-n N] [--requests M] [--rounds R]
//	                    the probe channel in one guest: the armed
//	                    catalogue's overhead (throughput with/without, R
//	                    interleaved rounds, median ratio and its spread) on
//	                    a syscall loop of N iterations and on M HTTP
//	                    requests to busybox httpd in the guest;
//	                    probe-hit -> VMM latency over N hits; an event
//	                    storm's throughput and drops
//	bench snapshot [-n N] [--mem SIZES] [--dir DIR]
//	                    for each guest RAM size: a cold boot to busybox
//	                    httpd answering the host (over a tap in a netns of
//	                    its own; root only), its snapshot, and N restores
//	                    to the guest's first instruction and to httpd
//	                    answering (ratio to the cold boot); then two clones
//	                    of one snapshot side by side: how much of their
//	                    resident guest memory they share
//
// Targets are printed beside the numbers; nothing here asserts them.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/spf13/pflag"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "virtio" {
		if err := benchVirtio(64, 1); err != nil {
			fmt.Fprintln(os.Stderr, "bench virtio:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == "probe" {
		fs := pflag.NewFlagSet("bench probe", pflag.ContinueOnError)
		n := fs.IntP("n", "n", 1000, "syscall-loop iterations per phase (probe hits for the latency numbers)")
		requests := fs.Int("requests", 10, "HTTP requests per web phase (each forks in the guest: about a second on emulating hosts)")
		rounds := fs.Int("rounds", 5, "rounds of each workload with and without the catalogue")
		if err := fs.Parse(os.Args[2:]); err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				return
			}
			os.Exit(2)
		}
		if *rounds < 5 {
			fmt.Fprintf(os.Stderr, "bench probe: --rounds %d: at least 5, for a median and a spread that mean something\n", *rounds)
			os.Exit(2)
		}
		if err := benchProbe(*n, *requests, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "bench probe:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == "snapshot" {
		fs := pflag.NewFlagSet("bench snapshot", pflag.ContinueOnError)
		n := fs.IntP("n", "n", 5, "restores per guest RAM size")
		mems := fs.StringSlice("mem", []string{"256M", "2G"}, "guest RAM sizes, each booted once and restored N times (comma-separated)")
		dir := fs.String("dir", "", "keep the snapshots and the vmm reports here (default: a temporary directory, removed)")
		if err := fs.Parse(os.Args[2:]); err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				return
			}
			os.Exit(2)
		}
		if len(*mems) == 0 {
			fmt.Fprintln(os.Stderr, "bench snapshot: --mem: give at least one size")
			os.Exit(2)
		}
		if err := benchSnapshot(*n, *mems, *dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench snapshot:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "boot" {
		fmt.Fprintln(os.Stderr, "usage: bench boot [-n N] [--cpus C] [--mem SIZE] | bench virtio | bench probe [-n N] [--requests M] [--rounds R] | bench snapshot [-n N] [--mem SIZES] [--dir DIR]")
		os.Exit(2)
	}
	fs := pflag.NewFlagSet("bench boot", pflag.ContinueOnError)
	n := fs.IntP("n", "n", 5, "number of boots")
	cpus := fs.Int("cpus", 1, "vCPUs per guest")
	mem := fs.String("mem", "256M", "guest RAM")
	if err := fs.Parse(os.Args[2:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if err := benchBoot(*n, *cpus, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "bench boot:", err)
		os.Exit(1)
	}
}

// report is the subset of `vmm run --report` the benchmarks read.
type report struct {
	BootToInitMS   float64 `json:"boot_to_init_ms"`
	ExitCode       int     `json:"exit_code"`
	Ending         string  `json:"ending"`
	VMMOverheadKiB uint64  `json:"vmm_rss_beyond_guest_ram_kib"`
	Profile        string  `json:"host_profile"`
	RestoreMS      float64 `json:"restore_ms"`
	StartToGuestMS float64 `json:"start_to_guest_ms"`
}

// readReport reads the --report a vmm wrote at path.
func readReport(path string) (report, error) {
	var r report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

func vmmBinary() string {
	if d := os.Getenv("TRACEVISOR_BUILD"); d != "" {
		return filepath.Join(d, "vmm")
	}
	return filepath.Join("build", "vmm")
}

func benchBoot(n, cpus int, mem string) error {
	if n < 1 {
		return fmt.Errorf("-n %d: need at least one boot", n)
	}
	dir, err := os.MkdirTemp("", "bench-boot")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var boots, rss []float64
	var profile string
	for i := 0; i < n; i++ {
		rp := filepath.Join(dir, fmt.Sprintf("boot%d.json", i))
		cmd := exec.Command(vmmBinary(), "run", "--cpus", fmt.Sprint(cpus), "--mem", mem, "--report", rp, "--", "true")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("boot %d: %v", i+1, err)
		}
		r, err := readReport(rp)
		if err != nil {
			return err
		}
		if r.BootToInitMS == 0 {
			return fmt.Errorf("boot %d: init never reported (%s)", i+1, r.Ending)
		}
		profile = r.Profile
		boots = append(boots, r.BootToInitMS/1000)
		rss = append(rss, float64(r.VMMOverheadKiB)/1024)
		fmt.Printf("boot %d/%d: boot-to-init %.2f s, VMM RSS beyond guest RAM %.2f MiB\n", i+1, n, r.BootToInitMS/1000, float64(r.VMMOverheadKiB)/1024)
	}
	fmt.Printf("\nhost profile %s, %d vCPU, %s RAM, %d boots\n", profile, cpus, mem, n)
	fmt.Printf("boot-to-init   median %.2f s  min %.2f s  max %.2f s   (target <= 30 s on emulating hosts)\n",
		median(boots), minOf(boots), maxOf(boots))
	fmt.Printf("VMM RSS beyond guest RAM   median %.2f MiB  max %.2f MiB   (target <= 5 MiB)\n", median(rss), maxOf(rss))
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
