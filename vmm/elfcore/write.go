package elfcore

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/internal/sparsefile"
)

// CPU is one vCPU's registers as the core's NT_PRSTATUS note gives them
// (gdb's thread N is vCPU N-1).
type CPU struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
	CS, SS, DS, ES, FS, GS                 uint64 // selectors
	FSBase, GSBase                         uint64
}

const (
	pageSize     = 4096
	prstatusSize = 336 // struct elf_prstatus on x86-64
	prRegOffset  = 112 // its pr_reg
	noteName     = "CORE"
)

// Write writes the core to w: an ELF header, a PT_NOTE with one
// NT_PRSTATUS per CPU, one PT_LOAD per mapping (its bytes are ram's, each
// region written once, page aligned, and shared by every mapping onto
// it), then ram. A mapping that spans regions becomes one segment per
// region; the parts of it in no region are left out, and a mapping wholly
// outside RAM is refused.
func Write(w io.Writer, cpus []CPU, ram []guestmem.Region, maps []Mapping) error {
	l, err := layOut(cpus, ram, maps)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(l.head)
	for _, r := range ram {
		bw.Write(r.Host)
		bw.Write(make([]byte, alignUp(uint64(len(r.Host)), pageSize)-uint64(len(r.Host))))
	}
	return bw.Flush()
}

// WriteFile is Write into a new, empty file, sparse: pages of ram that are
// all zero are left as holes.
func WriteFile(f *os.File, cpus []CPU, ram []guestmem.Region, maps []Mapping) error {
	l, err := layOut(cpus, ram, maps)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(l.size)); err != nil {
		return err
	}
	if _, err := f.WriteAt(l.head, 0); err != nil {
		return err
	}
	for i, r := range ram {
		if err := sparsefile.WriteAt(f, r.Host, int64(l.offs[i])); err != nil {
			return err
		}
	}
	return nil
}

// layout is a core's headers and notes (head, padded to the first
// region), each region's file offset, and the file's size.
type layout struct {
	head []byte
	offs []uint64
	size uint64
}

func layOut(cpus []CPU, ram []guestmem.Region, maps []Mapping) (layout, error) {
	type load struct{ off, virt, phys, size uint64 }
	l := layout{offs: make([]uint64, len(ram))}
	// Where each region goes: after the headers, whose size depends on
	// the number of loads, so offsets are relative to dataOff first.
	var rel uint64
	for i, r := range ram {
		l.offs[i] = rel
		rel += alignUp(uint64(len(r.Host)), pageSize)
	}
	// Each mapping, cut at the regions' bounds; a part in no region is
	// not RAM and is left out.
	var loads []load
	for _, m := range maps {
		kept := uint64(0)
		for i, r := range ram {
			lo, hi := max(m.Phys, r.GPA), min(m.Phys+m.Size, r.GPA+uint64(len(r.Host)))
			if lo >= hi {
				continue
			}
			loads = append(loads, load{off: l.offs[i] + lo - r.GPA, virt: m.Virt + lo - m.Phys, phys: lo, size: hi - lo})
			kept += hi - lo
		}
		if kept == 0 {
			return layout{}, fmt.Errorf("elfcore: mapping %#x -> %#x (+%#x) is not in guest RAM", m.Virt, m.Phys, m.Size)
		}
	}
	if len(loads)+1 > MaxSegments {
		return layout{}, ErrTooManySegments
	}
	notes := prstatusNotes(cpus)
	const ehSize, phSize = 64, 56
	phnum := 1 + len(loads)
	noteOff := uint64(ehSize + phSize*phnum)
	dataOff := alignUp(noteOff+uint64(len(notes)), pageSize)
	for i := range l.offs {
		l.offs[i] += dataOff
	}
	l.size = dataOff + rel

	le := binary.LittleEndian
	head := make([]byte, dataOff)
	eh := head[:ehSize]
	copy(eh, elf.ELFMAG)
	eh[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	eh[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	eh[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	le.PutUint16(eh[16:], uint16(elf.ET_CORE))
	le.PutUint16(eh[18:], uint16(elf.EM_X86_64))
	le.PutUint32(eh[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(eh[32:], ehSize) // e_phoff
	le.PutUint16(eh[52:], ehSize)
	le.PutUint16(eh[54:], phSize)
	le.PutUint16(eh[56:], uint16(phnum))

	n := 0
	putPH := func(typ elf.ProgType, flags elf.ProgFlag, off, vaddr, paddr, size, align uint64) {
		ph := head[ehSize+phSize*n:]
		n++
		le.PutUint32(ph[0:], uint32(typ))
		le.PutUint32(ph[4:], uint32(flags))
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], vaddr)
		le.PutUint64(ph[24:], paddr)
		le.PutUint64(ph[32:], size) // p_filesz
		le.PutUint64(ph[40:], size) // p_memsz
		le.PutUint64(ph[48:], align)
	}
	putPH(elf.PT_NOTE, 0, noteOff, 0, 0, uint64(len(notes)), 4)
	for _, ld := range loads {
		putPH(elf.PT_LOAD, elf.PF_R|elf.PF_W|elf.PF_X, dataOff+ld.off, ld.virt, ld.phys, ld.size, pageSize)
	}
	copy(head[noteOff:], notes)
	l.head = head
	return l, nil
}

// prstatusNotes is one NT_PRSTATUS note per CPU, pr_pid its number from 1.
func prstatusNotes(cpus []CPU) []byte {
	le := binary.LittleEndian
	var out []byte
	for i, c := range cpus {
		var hdr [12]byte
		le.PutUint32(hdr[0:], uint32(len(noteName)+1))
		le.PutUint32(hdr[4:], prstatusSize)
		le.PutUint32(hdr[8:], uint32(elf.NT_PRSTATUS))
		out = append(out, hdr[:]...)
		name := make([]byte, alignUp(uint64(len(noteName)+1), 4))
		copy(name, noteName)
		out = append(out, name...)
		desc := make([]byte, prstatusSize)
		le.PutUint32(desc[32:], uint32(i+1)) // pr_pid
		// struct user_regs_struct, in its order.
		regs := []uint64{c.R15, c.R14, c.R13, c.R12, c.RBP, c.RBX, c.R11, c.R10, c.R9, c.R8,
			c.RAX, c.RCX, c.RDX, c.RSI, c.RDI, ^uint64(0) /* orig_rax */, c.RIP, c.CS, c.RFLAGS,
			c.RSP, c.SS, c.FSBase, c.GSBase, c.DS, c.ES, c.FS, c.GS}
		for j, v := range regs {
			le.PutUint64(desc[prRegOffset+8*j:], v)
		}
		out = append(out, desc...)
	}
	return out
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
