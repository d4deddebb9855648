package boot

import "gvisor.dev/gvisor/pkg/hostarch"

// Guest-physical layout of the boot structures.
//
//	0x0000_0000 - 0x0000_0fff  untouched (real-mode IVT and BIOS data area)
//	0x0000_1000 - 0x0000_1fff  boot GDT (GDTEntries descriptors)
//	0x0000_2000 - 0x0000_2fff  PVH: hvm_start_info, modlist, memmap
//	0x0000_3000 - 0x0000_3fff  bzImage: boot_params ("zero page")
//	0x0000_4000 - 0x0000_4fff  PML4       \
//	0x0000_5000 - 0x0000_5fff  PDPT        > identity map of [0, 4 GiB),
//	0x0000_6000 - 0x0000_9fff  4 PDs      /  2 MiB pages (bzImage only)
//	0x0000_a000 - 0x0000_afff  kernel command line (CmdlineMaxSize bytes)
//	0x0000_b000 - 0x0000_efff  boot stack, growing down from BootStackTop
//	0x0009_fc00 - 0x0009_ffff  MP floating pointer + configuration table
//	0x000f_0000 - 0x000f_ffff  reserved in the E820 map (BIOS area)
//	0x0010_0000 - ...          kernel (vmlinux at its p_paddr, bzImage at
//	                           pref_address or 1 MiB), then free RAM; the
//	                           initrd goes at the top of the low RAM region
//
// Each structure owns whole pages, so none can overlap another whatever its
// contents. Only one of the PVH and zero-page areas is used per boot.
const (
	// GDTAddr is the boot GDT: the descriptors the CPU's segment
	// registers were loaded from.
	GDTAddr uint64 = 0x1000

	// StartInfoAddr is the PVH struct hvm_start_info.
	StartInfoAddr uint64 = 0x2000
	// ModlistAddr is the PVH struct hvm_modlist_entry array (the initrd).
	ModlistAddr uint64 = StartInfoAddr + 0x40
	// MemmapAddr is the PVH struct hvm_memmap_table_entry array.
	MemmapAddr uint64 = StartInfoAddr + 0x80

	// ZeroPageAddr is the bzImage struct boot_params, the "zero page".
	ZeroPageAddr uint64 = 0x3000

	// PML4Addr is the page-map level 4 table for the 64-bit boot protocol;
	// it is CR3.
	PML4Addr uint64 = 0x4000
	// PDPTAddr is the page-directory-pointer table below PML4 entry 0.
	PDPTAddr uint64 = 0x5000
	// PDAddr is the first of the identityPDs page directories, one per GiB.
	PDAddr uint64 = 0x6000

	// CmdlineAddr is the NUL-terminated kernel command line.
	CmdlineAddr uint64 = 0xa000

	// BootStackTop is the initial stack pointer. Linux sets up its own
	// stack before it uses one; this is a valid stack in case it does not.
	BootStackTop uint64 = 0xf000

	// MPTableAddr is the Intel MP floating pointer structure, followed by
	// the MP configuration table. It is the last KiB of 640 KiB base
	// memory, one of the areas Linux scans for "_MP_".
	MPTableAddr uint64 = 0x9fc00
	// MPTableSize is the room reserved for the MP table.
	MPTableSize uint64 = 0x400

	// BIOSAreaAddr and BIOSAreaSize bound the top 64 KiB below 1 MiB, the
	// system BIOS area, reported reserved in the E820 map.
	BIOSAreaAddr uint64 = 0xf0000
	BIOSAreaSize uint64 = 0x10000

	// HighMemAddr is the start of "high" memory, 1 MiB: everything from
	// here to the end of the low RAM region is free for the kernel.
	HighMemAddr uint64 = 0x100000
)

// Sizes of the areas above.
const (
	// GDTEntries is the number of 8-byte GDT slots: null, unused, code,
	// data and a 16-byte TSS descriptor (two slots in long mode).
	GDTEntries = 6

	// memmapMaxEntries is how many hvm_memmap_table_entry fit between
	// MemmapAddr and the end of the PVH page.
	memmapMaxEntries = (StartInfoAddr + hostarch.PageSize - MemmapAddr) / memmapEntrySize

	// identityPDs is the number of page directories, each mapping 1 GiB.
	identityPDs = 4

	// bootStackSize is the room below BootStackTop.
	bootStackSize uint64 = 0x4000
)

// area is one boot structure's reserved guest-physical range.
type area struct {
	name       string
	addr, size uint64
}

// bootAreas lists every range Load may write below 1 MiB, for the layout
// test.
var bootAreas = []area{
	{"GDT", GDTAddr, hostarch.PageSize},
	{"PVH start info", StartInfoAddr, hostarch.PageSize},
	{"zero page", ZeroPageAddr, hostarch.PageSize},
	{"PML4", PML4Addr, hostarch.PageSize},
	{"PDPT", PDPTAddr, hostarch.PageSize},
	{"page directories", PDAddr, identityPDs * hostarch.PageSize},
	{"command line", CmdlineAddr, hostarch.PageSize},
	{"boot stack", BootStackTop - bootStackSize, bootStackSize},
	{"MP table", MPTableAddr, MPTableSize},
}
