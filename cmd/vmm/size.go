package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseSize parses a memory size: a number with an optional K, M or G suffix
// (binary units, optional "iB"/"B"); a bare number means MiB.
func parseSize(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	shift := 20
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift, t = 10, t[:n-1]
		case 'M':
			shift, t = 20, t[:n-1]
		case 'G':
			shift, t = 30, t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("bad memory size %q (examples: 256M, 1G, 512)", s)
	}
	if v > (1<<40)>>shift {
		return 0, fmt.Errorf("memory size %q is larger than 1 TiB", s)
	}
	return v << shift, nil
}
