package vmm

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// OverheadRSSKiB returns the VMM process's resident memory outside guest
// RAM, in KiB: what running the guest costs beyond the RAM it was given
// (read from /proc/self/smaps; 0 if that cannot be read).
func (m *Machine) OverheadRSSKiB() uint64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total uint64
	inGuest := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			lo, hi, ok := parseRange(fields[0])
			inGuest = ok && m.isGuestRAM(lo, hi)
			continue
		}
		if inGuest || !strings.HasPrefix(line, "Rss:") {
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				total += kb
			}
		}
	}
	return total
}

func parseRange(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	return lo, hi, err1 == nil && err2 == nil
}

// isGuestRAM reports whether the host mapping [lo, hi) is guest RAM.
func (m *Machine) isGuestRAM(lo, hi uint64) bool {
	for _, r := range m.mem.Regions() {
		base := r.HostAddr()
		if lo >= base && hi <= base+uint64(len(r.Host)) {
			return true
		}
	}
	return false
}
