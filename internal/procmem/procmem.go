// Package procmem reads a process's memory use from /proc: its resident
// set (status) and how it maps one file (smaps).
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procPath is /proc/PID/name, or /proc/self/name for pid 0.
func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return fmt.Sprintf("/proc/%d/%s", pid, name)
}

// RSS returns the resident set (VmRSS) of process pid (0: this process),
// in bytes.
func RSS(pid int) (uint64, error) {
	f, err := os.Open(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.ParseUint(fields[0], 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in %s", procPath(pid, "status"))
}

// Use is how a process maps one file, summed over its mappings of it, in
// bytes.
type Use struct {
	RSS, PSS        uint64
	Shared, Private uint64 // resident pages mapped by others too, and by this process alone
}

// FileMapping reads how process pid (0: this process) maps file (its path
// as the kernel names it), every mapping of it summed; it is an error if
// the process does not map it.
func FileMapping(pid int, file string) (Use, error) {
	f, err := os.Open(procPath(pid, "smaps"))
	if err != nil {
		return Use{}, err
	}
	defer f.Close()
	var u Use
	found, in := false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line
			in = len(fields) >= 6 && fields[5] == file
			found = found || in
			continue
		}
		if !in || len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			u.RSS += kb << 10
		case "Pss:":
			u.PSS += kb << 10
		case "Shared_Clean:", "Shared_Dirty:":
			u.Shared += kb << 10
		case "Private_Clean:", "Private_Dirty:":
			u.Private += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return u, err
	}
	if !found {
		return u, fmt.Errorf("process %d does not map %s", pid, file)
	}
	return u, nil
}
