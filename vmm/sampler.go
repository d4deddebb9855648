package vmm

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// sampler is a sampling profiler of the guest: at each kick it records the
// function (System.map symbol) a vCPU was executing. It answers "where does
// the guest's time go" — boot stalls on an emulating host above all —
// without any guest cooperation.
type sampler struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

func newSampler() *sampler { return &sampler{counts: map[string]int{}} }

// record counts one sample of vCPU cpu at rip, named by syms; prefix tells
// the vCPUs apart (empty for a one-vCPU guest).
func (s *sampler) record(syms *Symbols, prefix string, rip uint64, user bool) {
	name := "[user space]"
	if !user {
		name = syms.Lookup(rip)
		if i := strings.IndexByte(name, '+'); i >= 0 {
			name = name[:i]
		}
		if name == "" {
			name = fmt.Sprintf("[%#x]", rip)
		}
	}
	name = prefix + name
	s.mu.Lock()
	s.counts[name]++
	s.total++
	s.mu.Unlock()
}

// report writes the n most sampled functions with their share of samples.
func (s *sampler) report(w io.Writer, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type kv struct {
		name  string
		count int
	}
	var all []kv
	for k, v := range s.counts {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].count != all[j].count {
			return all[i].count > all[j].count
		}
		return all[i].name < all[j].name
	})
	fmt.Fprintf(w, "vmm: guest profile, %d samples every %v:\n", s.total, profilePeriod)
	for i, e := range all {
		if i == n {
			break
		}
		fmt.Fprintf(w, "  %5.1f%%  %6d  %s\n", 100*float64(e.count)/float64(s.total), e.count, e.name)
	}
}
