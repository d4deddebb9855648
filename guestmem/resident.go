package guestmem

import "golang.org/x/sys/unix"

// ResidentBytes returns how much of guest RAM is backed by host pages right
// now (mincore(2) over every region): the guest's share of the process's
// resident memory.
func (m *Memory) ResidentBytes() (uint64, error) {
	var total uint64
	page := uint64(unix.Getpagesize())
	for _, r := range m.regions {
		vec := make([]byte, (r.Size()+page-1)/page)
		if err := mincore(r.Host, vec); err != nil {
			return 0, err
		}
		for _, v := range vec {
			if v&1 != 0 {
				total += page
			}
		}
	}
	return total, nil
}
