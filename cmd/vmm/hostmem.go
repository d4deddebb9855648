package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tracevisor/tracevisor/guestmem"
)

// procMeminfo reads the host's /proc/meminfo; tests pass their own text.
func procMeminfo() ([]byte, error) { return os.ReadFile("/proc/meminfo") }

// memTotal returns MemTotal, in bytes, from /proc/meminfo text.
func memTotal(meminfo []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("meminfo: odd MemTotal line %q", sc.Text())
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb == 0 || kb > 1<<44 {
			return 0, fmt.Errorf("meminfo: odd MemTotal line %q", sc.Text())
		}
		return kb << 10, nil
	}
	return 0, errors.New("meminfo: no MemTotal line")
}

// checkGuestMem refuses a --mem the guest memory layout cannot hold (below
// its minimum, not whole pages) or more than the host's RAM, before any
// KVM work. When the host's RAM cannot be read, only the layout is checked.
func checkGuestMem(flag string, mem uint64, meminfo func() ([]byte, error)) error {
	if _, err := guestmem.Layout(mem); err != nil {
		return fmt.Errorf("--mem %s: %w", flag, err)
	}
	b, err := meminfo()
	if err != nil {
		return nil
	}
	total, err := memTotal(b)
	if err != nil {
		return nil
	}
	if mem > total {
		return fmt.Errorf("--mem %s: the host has only %d MiB of RAM (MemTotal in /proc/meminfo)", flag, total>>20)
	}
	return nil
}
