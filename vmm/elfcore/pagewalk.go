// Package elfcore writes a guest's memory and vCPU registers as an ELF core
// file (ET_CORE, x86-64) for a post-mortem: `gdb vmlinux CORE` shows each
// vCPU's registers and backtrace (one thread per vCPU) and reads the
// kernel's variables, because each PT_LOAD segment maps a range of the
// kernel's virtual address space (found by walking the guest's page tables)
// onto the guest-physical pages it held; p_paddr keeps the physical
// address for tools that read physical memory.
//
// The page tables are the guest's, hence hostile: the walk has a fixed
// depth, skips entries that point outside guest RAM, and stops at
// MaxSegments segments.
package elfcore

import (
	"errors"
	"fmt"
)

// Mapping is a range of guest-virtual addresses mapped onto contiguous
// guest-physical memory.
type Mapping struct {
	Virt, Phys, Size uint64
}

// PhysReader reads guest-physical memory.
type PhysReader interface {
	Read64(gpa uint64) (uint64, error)
	Contains(gpa, n uint64) bool
}

// MaxSegments bounds a core's program headers, its PT_NOTE and one PT_LOAD
// per mapping (ELF's count is 16 bits): a walk returns at most
// MaxSegments-1 mappings.
const MaxSegments = 60000

// MaxTables bounds the page tables one walk reads (each 512 entries): 4 KiB
// pages over 128 GiB. Tables that point back at themselves would otherwise
// make a walk of 512^4 entries.
const MaxTables = 1 << 16

// maxTables is MaxTables, lowered by the fuzz test so that each input's
// walk stays cheap.
var maxTables = MaxTables

// ErrTooManySegments: the guest's page tables map the kernel half in more
// pieces than MaxSegments.
var ErrTooManySegments = errors.New("elfcore: the kernel's mappings need too many segments")

// ErrTooManyTables: the walk met more than MaxTables tables (corrupt or
// hostile page tables).
var ErrTooManyTables = errors.New("elfcore: the guest's page tables are larger than a walk reads (corrupt or hostile)")

const (
	ptePresent  = 1 << 0
	ptePageSize = 1 << 7                // a 1 GiB (PDPT) or 2 MiB (PD) page
	pteAddrMask = 0x000f_ffff_ffff_f000 // bits 12-51
	cr4LA57     = 1 << 12               // 5-level paging
	kernelHalf  = 0xffff_8000_0000_0000 // the first canonical kernel address
)

// KernelMappings walks the 4-level page tables at cr3 and returns the
// kernel half's present mappings (PML4 entries 256-511), virtually and
// physically contiguous runs merged, in address order. Entries whose page
// or table lies outside guest RAM are skipped. A walk stopped by a bound
// (ErrTooManySegments, ErrTooManyTables) returns what it gathered with the
// error: a core of those still serves.
func KernelMappings(mem PhysReader, cr3, cr4 uint64) ([]Mapping, error) {
	if cr4&cr4LA57 != 0 {
		return nil, errors.New("elfcore: the guest uses 5-level paging, which this walk does not read")
	}
	w := walker{mem: mem}
	root := cr3 & pteAddrMask
	if !mem.Contains(root, 4096) {
		return nil, fmt.Errorf("elfcore: CR3 %#x points outside guest RAM", cr3)
	}
	for i := uint64(256); i < 512; i++ {
		virt := kernelHalf + (i-256)<<39
		if err := w.table(root, i, 4, virt); err != nil {
			return w.out, err
		}
	}
	return w.out, nil
}

// walker gathers the mappings of one walk.
type walker struct {
	mem    PhysReader
	out    []Mapping
	tables int // tables below the PML4 read so far
}

// table visits entry i of the table at gpa, at level (4: PML4 ... 1: PT),
// whose range starts at virt.
func (w *walker) table(gpa, i uint64, level int, virt uint64) error {
	e, err := w.mem.Read64(gpa + 8*i)
	if err != nil || e&ptePresent == 0 {
		return nil
	}
	shift := uint(12 + 9*(level-1)) // the bits one entry at this level covers
	size := uint64(1) << shift
	if level == 1 || (level <= 3 && e&ptePageSize != 0) {
		phys := e & pteAddrMask &^ (size - 1)
		if !w.mem.Contains(phys, size) {
			return nil // a device's MMIO or garbage: not RAM
		}
		return w.add(Mapping{Virt: virt, Phys: phys, Size: size})
	}
	next := e & pteAddrMask
	if !w.mem.Contains(next, 4096) {
		return nil
	}
	if w.tables++; w.tables > maxTables {
		return ErrTooManyTables
	}
	for j := uint64(0); j < 512; j++ {
		if err := w.table(next, j, level-1, virt+j<<(shift-9)); err != nil {
			return err
		}
	}
	return nil
}

// add appends m, merged into the last mapping where both run on.
func (w *walker) add(m Mapping) error {
	if n := len(w.out); n > 0 {
		last := &w.out[n-1]
		if last.Virt+last.Size == m.Virt && last.Phys+last.Size == m.Phys {
			last.Size += m.Size
			return nil
		}
	}
	if len(w.out) >= MaxSegments-1 {
		return ErrTooManySegments
	}
	w.out = append(w.out, m)
	return nil
}
