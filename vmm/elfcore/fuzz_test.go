package elfcore

import (
	"io"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// FuzzKernelMappings walks page tables the fuzzer writes (the guest's are
// hostile): the walk never panics, stays within its bounds, returns only
// mappings inside RAM, and Write takes whatever it returns.
func FuzzKernelMappings(f *testing.F) {
	seed := tables()
	f.Add([]byte(seed[:0x7000]), uint64(pml4))
	f.Add(make([]byte, 0x2000), uint64(0))
	// A bound of 64 tables keeps each input cheap (MaxTables lets a
	// hostile input cost 33M reads); the bound's handling is the same.
	defer func(n int) { maxTables = n }(maxTables)
	maxTables = 64
	f.Fuzz(func(t *testing.T, b []byte, cr3 uint64) {
		m := make(flatMem, 1<<16)
		copy(m, b)
		maps, err := KernelMappings(m, cr3, 0)
		if len(maps) > MaxSegments-1 {
			t.Fatalf("%d mappings", len(maps))
		}
		for _, mp := range maps {
			if !m.Contains(mp.Phys, mp.Size) || mp.Virt < kernelHalf {
				t.Fatalf("mapping %+v outside RAM or the kernel half", mp)
			}
		}
		if err == nil || len(maps) > 0 {
			if werr := Write(io.Discard, []CPU{{}}, []guestmem.Region{{GPA: 0, Host: m}}, maps); werr != nil {
				t.Fatalf("Write refused the walk's %d mappings: %v", len(maps), werr)
			}
		}
	})
}
