package guestmem

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/hostarch"
)

// FromMappings wraps host mappings that already exist as guest RAM: a
// snapshot's memory file mapped copy-on-write (snapshot.MapMemory), one
// mapping per region. The result is used exactly like New's: KVM memory
// slots from Regions and HostAddr, the same bounds-checked accessors.
//
// The regions must be laid out as New lays out a guest of their total size
// (see Layout): in address order, each page-aligned in guest-physical and
// host address, none empty, none overlapping another or the MMIO hole. A
// region set that is not is refused with an error naming the region, and
// then nothing is released: the caller still owns the mappings.
//
// Close calls release once (nil: nothing to release), which unmaps them;
// Memory never unmaps them itself. The region list is copied; the host
// slices are not.
func FromMappings(regions []Region, release func() error) (*Memory, error) {
	if err := checkMappings(regions); err != nil {
		return nil, err
	}
	return &Memory{regions: append([]Region(nil), regions...), release: release}, nil
}

// checkMappings refuses a region set that New would not have made.
func checkMappings(regions []Region) error {
	if len(regions) == 0 {
		return fmt.Errorf("guest RAM: no regions")
	}
	var total uint64
	for i, r := range regions {
		size, end := r.Size(), r.GPA+r.Size()
		switch {
		case size == 0:
			return fmt.Errorf("guest RAM region %d at %#x is empty", i, r.GPA)
		case r.GPA%hostarch.PageSize != 0 || size%hostarch.PageSize != 0:
			return fmt.Errorf("guest RAM region %d [%#x, +%#x) is not page-aligned", i, r.GPA, size)
		case r.HostAddr()%hostarch.PageSize != 0:
			return fmt.Errorf("guest RAM region %d at %#x: host mapping at %#x is not page-aligned", i, r.GPA, r.HostAddr())
		case end < r.GPA:
			return fmt.Errorf("guest RAM region %d [%#x, +%#x) wraps around", i, r.GPA, size)
		case i > 0 && r.GPA < regions[i-1].End():
			return fmt.Errorf("guest RAM region %d at %#x overlaps region %d or is out of order", i, r.GPA, i-1)
		case r.GPA < MMIOHoleEnd && end > MMIOHoleStart:
			return fmt.Errorf("guest RAM region %d [%#x, %#x) overlaps the MMIO hole [%#x, %#x)", i, r.GPA, end, MMIOHoleStart, MMIOHoleEnd)
		}
		total += size
	}
	layout, err := Layout(total)
	if err != nil {
		return err
	}
	if len(layout) != len(regions) {
		return fmt.Errorf("guest RAM of %d MiB comes in %d regions, New lays it out in %d", total>>20, len(regions), len(layout))
	}
	for i, l := range layout {
		if r := regions[i]; r.GPA != l[0] || r.Size() != l[1] {
			return fmt.Errorf("guest RAM region %d is [%#x, +%#x), New lays out [%#x, +%#x) for %d MiB", i, r.GPA, r.Size(), l[0], l[1], total>>20)
		}
	}
	return nil
}
