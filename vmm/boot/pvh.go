package boot

import (
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
	"gvisor.dev/gvisor/pkg/hostarch"
)

// PVH boot ABI constants, from xen/include/public/arch-x86/hvm/start_info.h.
const (
	// hvmStartMagicValue is XEN_HVM_START_MAGIC_VALUE, "xEn3" with the
	// high bit of each byte flipped.
	hvmStartMagicValue = 0x336ec578
	// hvmStartInfoVersion 1 adds the memory map to version 0.
	hvmStartInfoVersion = 1

	// Sizes of the version-1 structures.
	startInfoSize    = 56
	modlistEntrySize = 32
	memmapEntrySize  = 24
)

// hvmStartInfo mirrors struct hvm_start_info, version 1. Its address is
// passed in EBX.
type hvmStartInfo struct {
	Magic         uint32 // hvmStartMagicValue
	Version       uint32 // hvmStartInfoVersion
	Flags         uint32 // SIF_xxx flags; none apply
	NrModules     uint32 // number of modules passed to the kernel
	ModlistPaddr  uint64 // physical address of an array of hvmModlistEntry
	CmdlinePaddr  uint64 // physical address of the command line
	RsdpPaddr     uint64 // physical address of the ACPI RSDP; 0: none
	MemmapPaddr   uint64 // physical address of the memory map (version 1)
	MemmapEntries uint32 // number of entries in the memory map (version 1)
	Reserved      uint32 // must be zero
}

// hvmModlistEntry mirrors struct hvm_modlist_entry. Linux takes its first
// module as the initrd.
type hvmModlistEntry struct {
	Paddr        uint64 // physical address of the module
	Size         uint64 // size of the module in bytes
	CmdlinePaddr uint64 // physical address of the module command line
	Reserved     uint64
}

// hvmMemmapTableEntry mirrors struct hvm_memmap_table_entry.
type hvmMemmapTableEntry struct {
	Addr     uint64 // base address of the memory region
	Size     uint64 // size of the memory region in bytes
	Type     uint32 // mapping type (E820Type values)
	Reserved uint32 // must be zero for version 1
}

// loadPVH loads the ELF vmlinux kernel for PVH entry: its PT_LOAD segments
// at their physical addresses, the initrd as module 0, the command line and
// hvm_start_info with the memory map. The returned CPU enters the kernel
// in 32-bit protected mode with paging off, as the PVH ABI requires
// (xen docs/misc/pvh.pandoc): CR0 = PE|ET, flat 32-bit CS and data segments,
// a busy 32-bit TSS, EFLAGS bit 1 only, EBX = &hvm_start_info.
func loadPVH(mem *guestmem.Memory, kernel []byte, cfg *Config, ram [][2]uint64, e820 []E820Entry) (*CPU, error) {
	v, err := parseVmlinux(kernel)
	if err != nil {
		return nil, err
	}
	lowEnd := lowRAMEnd(ram)
	for _, s := range v.loads {
		end := s.paddr + s.memsz
		if s.paddr < HighMemAddr {
			return nil, fmt.Errorf("%w: segment [%#x, %#x) overlaps the boot area below %#x", ErrBadELF, s.paddr, end, HighMemAddr)
		}
		if end > lowEnd || !mem.Contains(s.paddr, s.memsz) {
			if end <= guestmem.MMIOHoleStart {
				return nil, memoryTooSmall("kernel needs", end)
			}
			return nil, fmt.Errorf("%w: segment [%#x, %#x) lies outside low guest RAM [0, %#x)", ErrBadELF, s.paddr, end, lowEnd)
		}
	}
	initrdAddr, err := placeInitrd(lowEnd, v.end(), uint64(len(cfg.Initrd)), lowEnd-1)
	if err != nil {
		return nil, err
	}
	if err := checkCmdline(cfg.Cmdline, CmdlineMaxSize); err != nil {
		return nil, err
	}
	if uint64(len(e820)) > memmapMaxEntries {
		return nil, fmt.Errorf("%w: %d memory map entries, at most %d fit", ErrBadRAMLayout, len(e820), memmapMaxEntries)
	}

	for _, s := range v.loads {
		if err := mem.WriteAt(s.data, s.paddr); err != nil {
			return nil, err
		}
		bss, err := mem.Slice(s.paddr+uint64(len(s.data)), s.memsz-uint64(len(s.data)))
		if err != nil {
			return nil, err
		}
		clear(bss)
	}
	if len(cfg.Initrd) > 0 {
		if err := mem.WriteAt(cfg.Initrd, initrdAddr); err != nil {
			return nil, err
		}
	}
	if err := writeCmdline(mem, cfg.Cmdline); err != nil {
		return nil, err
	}
	if err := mem.WriteAt(startInfoPage(initrdAddr, uint64(len(cfg.Initrd)), e820), StartInfoAddr); err != nil {
		return nil, err
	}

	cpu := newCPU(flatCode32())
	cpu.RIP = v.pvhEntry
	cpu.RBX = StartInfoAddr
	cpu.CR0 = CR0PE | CR0ET
	if err := writeGDT(mem, cpu); err != nil {
		return nil, err
	}
	return cpu, nil
}

// startInfoPage returns the page at StartInfoAddr: hvm_start_info, the
// module list (the initrd, if initrdSize is not 0) at ModlistAddr and the
// memory map at MemmapAddr. The command line is at CmdlineAddr.
func startInfoPage(initrdAddr, initrdSize uint64, e820 []E820Entry) []byte {
	info := hvmStartInfo{
		Magic:         hvmStartMagicValue,
		Version:       hvmStartInfoVersion,
		CmdlinePaddr:  CmdlineAddr,
		MemmapPaddr:   MemmapAddr,
		MemmapEntries: uint32(len(e820)),
	}
	page := make([]byte, hostarch.PageSize)
	if initrdSize > 0 {
		info.NrModules = 1
		info.ModlistPaddr = ModlistAddr
		mod := hvmModlistEntry{Paddr: initrdAddr, Size: initrdSize}
		copy(page[ModlistAddr-StartInfoAddr:], encode(&mod))
	}
	copy(page, encode(&info))
	for i, e := range e820 {
		ent := hvmMemmapTableEntry{Addr: e.Addr, Size: e.Size, Type: uint32(e.Type)}
		copy(page[MemmapAddr-StartInfoAddr+uint64(i)*memmapEntrySize:], encode(&ent))
	}
	return page
}
