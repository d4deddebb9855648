package boot

import (
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// E820Type is the type of an E820 memory map entry (enum e820_type in
// arch/x86/include/asm/e820/types.h). PVH's hvm_memmap_table_entry uses the
// same values (XEN_HVM_MEMMAP_TYPE_*).
type E820Type uint32

// E820 entry types used by the boot map.
const (
	// E820RAM is usable RAM (E820_TYPE_RAM).
	E820RAM E820Type = 1
	// E820Reserved is memory the kernel must not use (E820_TYPE_RESERVED).
	E820Reserved E820Type = 2
)

// String returns the kernel's name for t.
func (t E820Type) String() string {
	switch t {
	case E820RAM:
		return "RAM"
	case E820Reserved:
		return "reserved"
	}
	return fmt.Sprintf("E820Type(%d)", uint32(t))
}

// E820Entry is one range of the guest's physical memory map. It mirrors
// struct boot_e820_entry (arch/x86/include/uapi/asm/setup_data.h) and struct
// hvm_memmap_table_entry (xen/include/public/arch-x86/hvm/start_info.h),
// which differ only in padding.
type E820Entry struct {
	Addr uint64
	Size uint64
	Type E820Type
}

// End returns the first address after e.
func (e E820Entry) End() uint64 { return e.Addr + e.Size }

// ErrBadRAMLayout is returned when the guest RAM regions do not start with a
// low region at address 0 that reaches past 1 MiB.
var ErrBadRAMLayout = errors.New("guest RAM layout unusable for booting")

// baseMemEnd is the end of the usable part of base memory: 640 KiB minus the
// KiB the MP table occupies.
const baseMemEnd = MPTableAddr

// legacyEnd is the end of the legacy area below 1 MiB (VGA memory, option
// ROMs, BIOS) that is not advertised as RAM.
const legacyEnd = HighMemAddr

// E820Map returns the memory map the kernel is given for guest RAM made of
// the regions ram, each a {guest-physical address, size} pair as returned by
// guestmem.Layout, in address order. The first region must start at 0 and
// extend past 1 MiB. The map is:
//
//	[0, 0x9fc00)              RAM       base memory
//	[0x9fc00, 0xa0000)        reserved  the MP table
//	[0xf0000, 0x100000)       reserved  BIOS area
//	[0x100000, end of low)    RAM
//	each further region       RAM
//
// [0xa0000, 0xf0000) (VGA memory and option ROMs on a PC) is left out of the
// map, as on real hardware.
func E820Map(ram [][2]uint64) ([]E820Entry, error) {
	if len(ram) == 0 {
		return nil, fmt.Errorf("%w: no RAM regions", ErrBadRAMLayout)
	}
	low := ram[0]
	if low[0] != 0 || low[1] <= legacyEnd {
		return nil, fmt.Errorf("%w: first region [%#x, +%#x) must start at 0 and extend past %#x",
			ErrBadRAMLayout, low[0], low[1], legacyEnd)
	}
	m := []E820Entry{
		{Addr: 0, Size: baseMemEnd, Type: E820RAM},
		{Addr: MPTableAddr, Size: MPTableSize, Type: E820Reserved},
		{Addr: BIOSAreaAddr, Size: BIOSAreaSize, Type: E820Reserved},
		{Addr: legacyEnd, Size: low[1] - legacyEnd, Type: E820RAM},
	}
	prevEnd := low[1]
	for _, r := range ram[1:] {
		if r[0] < prevEnd || r[0]+r[1] < r[0] {
			return nil, fmt.Errorf("%w: region [%#x, +%#x) overlaps or is out of order", ErrBadRAMLayout, r[0], r[1])
		}
		m = append(m, E820Entry{Addr: r[0], Size: r[1], Type: E820RAM})
		prevEnd = r[0] + r[1]
	}
	return m, nil
}

// ramRanges returns mem's regions as {address, size} pairs for E820Map.
func ramRanges(mem *guestmem.Memory) [][2]uint64 {
	var ram [][2]uint64
	for _, r := range mem.Regions() {
		ram = append(ram, [2]uint64{r.GPA, r.Size()})
	}
	return ram
}

// lowRAMEnd returns the end of the RAM region that starts at 0; E820Map has
// checked it exists.
func lowRAMEnd(ram [][2]uint64) uint64 { return ram[0][1] }
