package vmm

import "github.com/tracevisor/tracevisor/internal/procmem"

// OverheadRSSKiB returns the VMM process's resident memory beyond the guest
// RAM pages that are resident, in KiB: what running the guest costs on top
// of the RAM it was given. 0 if either number cannot be read.
func (m *Machine) OverheadRSSKiB() uint64 {
	total, err := procmem.RSS(0)
	if err != nil {
		return 0
	}
	guest, err := m.mem.ResidentBytes()
	if err != nil || guest > total {
		return 0
	}
	return (total - guest) >> 10
}
