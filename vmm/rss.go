package vmm

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// OverheadRSSKiB returns the VMM process's resident memory beyond the guest
// RAM pages that are resident, in KiB: what running the guest costs on top
// of the RAM it was given. 0 if either number cannot be read.
func (m *Machine) OverheadRSSKiB() uint64 {
	total, ok := processRSSKiB()
	if !ok {
		return 0
	}
	guest, err := m.mem.ResidentBytes()
	if err != nil || guest>>10 > total {
		return 0
	}
	return total - guest>>10
}

// processRSSKiB reads VmRSS from /proc/self/status.
func processRSSKiB() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseUint(fields[0], 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}
