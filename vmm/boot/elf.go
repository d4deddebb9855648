package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors about a vmlinux file.
var (
	// ErrNotELF is returned by the ELF parser for a file without the ELF
	// magic.
	ErrNotELF = errors.New("not an ELF file")
	// ErrUnsupportedELF is returned for a valid ELF file that is not an
	// x86-64 kernel.
	ErrUnsupportedELF = errors.New("unsupported vmlinux: need a 64-bit little-endian x86-64 ELF executable")
	// ErrBadELF is returned for a truncated or inconsistent ELF file.
	ErrBadELF = errors.New("malformed vmlinux ELF file")
	// ErrNoPVHNote is returned for a vmlinux built without PVH support.
	ErrNoPVHNote = errors.New("vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): build with CONFIG_PVH=y")
)

// ELF sizes (System V gABI, ELF-64 object file format).
const (
	elf64HeaderSize = 64 // sizeof(Elf64_Ehdr)
	elf64PhdrSize   = 56 // sizeof(Elf64_Phdr)
	elfNoteHdrSize  = 12 // Elf64_Nhdr: n_namesz, n_descsz, n_type
)

// PVH entry note, from xen/include/public/elfnote.h.
const (
	// xenNoteName is the owner name of Xen notes.
	xenNoteName = "Xen"
	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the descriptor is
	// the physical address of the 32-bit PVH entry point.
	xenElfnotePhys32Entry = 18
)

// vmlinux is the part of an ELF kernel image that booting it needs.
type vmlinux struct {
	// loads are the PT_LOAD segments with a non-zero p_memsz.
	loads []loadSegment
	// pvhEntry is the physical address of the PVH entry point.
	pvhEntry uint64
}

// loadSegment is one PT_LOAD segment: memsz bytes at paddr, the first
// len(data) of them from the file and the rest zero.
type loadSegment struct {
	paddr uint64
	memsz uint64
	data  []byte
}

// end returns the first physical address after the highest segment.
func (v *vmlinux) end() uint64 {
	var end uint64
	for _, s := range v.loads {
		end = max(end, s.paddr+s.memsz)
	}
	return end
}

// isELF reports whether kernel starts with the ELF magic.
func isELF(kernel []byte) bool {
	return bytes.HasPrefix(kernel, []byte(elf.ELFMAG))
}

// parseVmlinux parses an ELF vmlinux: its loadable segments and its PVH
// entry point, which must lie inside one of them. It checks that every range
// it returns lies inside kernel and that no segment's physical range wraps;
// whether the segments fit in guest RAM is the loader's business.
func parseVmlinux(kernel []byte) (*vmlinux, error) {
	if !isELF(kernel) {
		return nil, ErrNotELF
	}
	if len(kernel) < elf64HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for an ELF header", ErrBadELF, len(kernel))
	}
	if c := elf.Class(kernel[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		return nil, fmt.Errorf("%w: class is %v", ErrUnsupportedELF, c)
	}
	if d := elf.Data(kernel[elf.EI_DATA]); d != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w: data encoding is %v", ErrUnsupportedELF, d)
	}
	var eh elf.Header64
	if _, err := binary.Decode(kernel[:elf64HeaderSize], binary.LittleEndian, &eh); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadELF, err)
	}
	if m := elf.Machine(eh.Machine); m != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: machine is %v", ErrUnsupportedELF, m)
	}
	if t := elf.Type(eh.Type); t != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: type is %v", ErrUnsupportedELF, t)
	}
	phdrs, err := programHeaders(kernel, &eh)
	if err != nil {
		return nil, err
	}

	v := &vmlinux{}
	for i, p := range phdrs {
		if elf.ProgType(p.Type) != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		data, err := segmentData(kernel, i, &p)
		if err != nil {
			return nil, err
		}
		if p.Filesz > p.Memsz {
			return nil, fmt.Errorf("%w: segment %d: p_filesz %#x exceeds p_memsz %#x", ErrBadELF, i, p.Filesz, p.Memsz)
		}
		if p.Paddr+p.Memsz < p.Paddr {
			return nil, fmt.Errorf("%w: segment %d: p_paddr %#x + p_memsz %#x overflows", ErrBadELF, i, p.Paddr, p.Memsz)
		}
		v.loads = append(v.loads, loadSegment{paddr: p.Paddr, memsz: p.Memsz, data: data})
	}
	if len(v.loads) == 0 {
		return nil, fmt.Errorf("%w: no PT_LOAD segment", ErrBadELF)
	}

	entry, err := findPVHEntry(kernel, phdrs)
	if err != nil {
		return nil, err
	}
	if !v.loaded(entry) {
		return nil, fmt.Errorf("%w: PVH entry point %#x is not inside any PT_LOAD segment", ErrBadELF, entry)
	}
	v.pvhEntry = entry
	return v, nil
}

// loaded reports whether the byte at physical address pa is part of a
// loaded segment.
func (v *vmlinux) loaded(pa uint64) bool {
	for _, s := range v.loads {
		if pa >= s.paddr && pa-s.paddr < s.memsz {
			return true
		}
	}
	return false
}

// programHeaders decodes the program header table.
func programHeaders(kernel []byte, eh *elf.Header64) ([]elf.Prog64, error) {
	if eh.Phnum == 0 {
		return nil, fmt.Errorf("%w: no program headers", ErrBadELF)
	}
	if eh.Phentsize != elf64PhdrSize {
		return nil, fmt.Errorf("%w: e_phentsize %d, want %d", ErrBadELF, eh.Phentsize, elf64PhdrSize)
	}
	size := uint64(eh.Phnum) * elf64PhdrSize
	if eh.Phoff > uint64(len(kernel)) || size > uint64(len(kernel))-eh.Phoff {
		return nil, fmt.Errorf("%w: program header table [%#x, +%#x) extends past the end of the %#x-byte file",
			ErrBadELF, eh.Phoff, size, len(kernel))
	}
	phdrs := make([]elf.Prog64, eh.Phnum)
	if _, err := binary.Decode(kernel[eh.Phoff:eh.Phoff+size], binary.LittleEndian, phdrs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadELF, err)
	}
	return phdrs, nil
}

// segmentData returns the file bytes of program header i.
func segmentData(kernel []byte, i int, p *elf.Prog64) ([]byte, error) {
	if p.Off > uint64(len(kernel)) || p.Filesz > uint64(len(kernel))-p.Off {
		return nil, fmt.Errorf("%w: segment %d [%#x, +%#x) extends past the end of the %#x-byte file",
			ErrBadELF, i, p.Off, p.Filesz, len(kernel))
	}
	return kernel[p.Off : p.Off+p.Filesz], nil
}

// findPVHEntry walks the notes of every PT_NOTE segment and returns the
// descriptor of the first XEN_ELFNOTE_PHYS32_ENTRY note: a 32- or 64-bit
// physical address (Linux emits it with _ASM_PTR, so 8 bytes on x86-64),
// which must be below 4 GiB since the entry runs in 32-bit mode.
func findPVHEntry(kernel []byte, phdrs []elf.Prog64) (uint64, error) {
	for i, p := range phdrs {
		if elf.ProgType(p.Type) != elf.PT_NOTE {
			continue
		}
		notes, err := segmentData(kernel, i, &p)
		if err != nil {
			return 0, err
		}
		// Notes are 4-byte aligned in practice, including in ELF64
		// vmlinux; a segment that says 8 (.note.gnu.property) uses 8.
		align := uint64(4)
		if p.Align == 8 {
			align = 8
		}
		desc, found, err := findNote(notes, align, xenNoteName, xenElfnotePhys32Entry)
		if err != nil {
			return 0, fmt.Errorf("%w: segment %d: %v", ErrBadELF, i, err)
		}
		if !found {
			continue
		}
		var entry uint64
		switch len(desc) {
		case 4:
			entry = uint64(binary.LittleEndian.Uint32(desc))
		case 8:
			entry = binary.LittleEndian.Uint64(desc)
		default:
			return 0, fmt.Errorf("%w: PVH entry note has a %d-byte descriptor, want 4 or 8", ErrBadELF, len(desc))
		}
		if entry >= 1<<32 {
			return 0, fmt.Errorf("%w: PVH entry point %#x is above 4 GiB", ErrBadELF, entry)
		}
		return entry, nil
	}
	return 0, ErrNoPVHNote
}

// findNote returns the descriptor of the first note named name with type
// typ in notes, a sequence of Elf_Nhdr records whose name and descriptor are
// each padded to align bytes. Trailing padding after the last note is
// allowed.
func findNote(notes []byte, align uint64, name string, typ uint32) ([]byte, bool, error) {
	pad := func(n uint32) uint64 { return (uint64(n) + align - 1) &^ (align - 1) }
	for len(notes) >= elfNoteHdrSize {
		namesz := binary.LittleEndian.Uint32(notes[0:])
		descsz := binary.LittleEndian.Uint32(notes[4:])
		ntype := binary.LittleEndian.Uint32(notes[8:])
		notes = notes[elfNoteHdrSize:]
		if pad(namesz) > uint64(len(notes)) {
			return nil, false, fmt.Errorf("note name (%d bytes) runs past the segment", namesz)
		}
		nname := notes[:namesz]
		notes = notes[pad(namesz):]
		if uint64(descsz) > uint64(len(notes)) {
			return nil, false, fmt.Errorf("note descriptor (%d bytes) runs past the segment", descsz)
		}
		desc := notes[:descsz]
		notes = notes[min(pad(descsz), uint64(len(notes))):]
		if ntype == typ && string(bytes.TrimRight(nname, "\x00")) == name {
			return desc, true, nil
		}
	}
	return nil, false, nil
}
