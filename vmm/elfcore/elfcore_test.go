package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// flatMem is guest RAM from GPA 0 for the tests.
type flatMem []byte

func (m flatMem) Read64(gpa uint64) (uint64, error) {
	if !m.Contains(gpa, 8) {
		return 0, errors.New("outside")
	}
	return binary.LittleEndian.Uint64(m[gpa:]), nil
}

func (m flatMem) Contains(gpa, n uint64) bool { return gpa+n >= gpa && gpa+n <= uint64(len(m)) }

func (m flatMem) put(gpa, v uint64) { binary.LittleEndian.PutUint64(m[gpa:], v) }

const (
	pml4, pdpt, pd, pt = 0x1000, 0x2000, 0x3000, 0x4000
	directMap          = 0xffff_8880_0000_0000 // PML4 entry 273
	kernelText         = 0xffff_ffff_8000_0000 // PML4 511, PDPT 510
)

// tables builds 4 MiB of RAM whose page tables map: the direct map's first
// 2 MiB as one 2 MiB page and the next 8 KiB as two 4 KiB pages (one run);
// kernel text as a 2 MiB page onto physical 2 MiB; and entries the walk
// must skip (a page outside RAM, a table outside RAM).
func tables() flatMem {
	m := make(flatMem, 4<<20)
	m.put(pml4+8*273, pdpt|3)
	m.put(pdpt+0, pd|3)
	m.put(pd+0, 0|0x83) // 2 MiB page at phys 0
	m.put(pd+8, pt|3)   // 4 KiB pages for the next 2 MiB
	m.put(pt+0, 0x200000|3)
	m.put(pt+8, 0x201000|3)
	m.put(pt+16, 0x4000_0000|3) // outside RAM: skipped
	m.put(pd+16, 0x9000_0000|3) // a table outside RAM: skipped
	m.put(pml4+8*511, 0x5000|3)
	m.put(0x5000+8*510, 0x6000|3)
	m.put(0x6000, 0x200000|0x83) // kernel text: 2 MiB page at phys 2 MiB
	m.put(0x2ff000, 0xfeedface)  // a word to read back through the core
	return m
}

func TestKernelMappings(t *testing.T) {
	m := tables()
	got, err := KernelMappings(m, pml4|0x5 /* PCID bits */, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Virt: directMap, Phys: 0, Size: 2<<20 + 8192},
		{Virt: kernelText, Phys: 2 << 20, Size: 2 << 20},
	}
	if len(got) != len(want) {
		t.Fatalf("mappings %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := KernelMappings(m, 0, 1<<12); err == nil {
		t.Error("5-level paging walked")
	}
	if _, err := KernelMappings(m, 0x9000_0000, 0); err == nil {
		t.Error("a CR3 outside RAM walked")
	}
}

// TestKernelMappingsHostile: tables that point at themselves at every
// level end the walk with an error, not 512^4 reads or a crash.
func TestKernelMappingsHostile(t *testing.T) {
	m := make(flatMem, 1<<20)
	for i := uint64(0); i < 512; i++ {
		m.put(pml4+8*i, pml4|3)
	}
	_, err := KernelMappings(m, pml4, 0)
	if !errors.Is(err, ErrTooManyTables) && !errors.Is(err, ErrTooManySegments) {
		t.Fatalf("self-referencing tables: %v, want a bound's error", err)
	}
}

// TestWrite writes a core of tables' RAM and reads it back with debug/elf:
// each mapping a PT_LOAD whose bytes are the guest's at its physical
// address, and a NT_PRSTATUS per CPU with its registers.
func TestWrite(t *testing.T) {
	m := tables()
	maps, err := KernelMappings(m, pml4, 0)
	if err != nil {
		t.Fatal(err)
	}
	cpus := []CPU{{RIP: kernelText + 0x1234, RSP: directMap + 0x8000, RBP: 0x55}, {RIP: kernelText + 0x99}}
	var buf bytes.Buffer
	if err := Write(&buf, cpus, []guestmem.Region{{GPA: 0, Host: m}}, maps); err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 {
		t.Fatalf("type %v machine %v", f.Type, f.Machine)
	}
	var loads []*elf.Prog
	var note *elf.Prog
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads = append(loads, p)
		case elf.PT_NOTE:
			note = p
		}
	}
	if len(loads) != len(maps) || note == nil {
		t.Fatalf("%d loads and note %v; want %d loads and a note", len(loads), note, len(maps))
	}
	for i, p := range loads {
		if p.Vaddr != maps[i].Virt || p.Paddr != maps[i].Phys || p.Filesz != maps[i].Size || p.Off%4096 != 0 {
			t.Errorf("load %d: %+v; want %+v", i, p.ProgHeader, maps[i])
		}
	}
	// The word at phys 0x2ff000, through the kernel text mapping.
	word := make([]byte, 8)
	if _, err := loads[1].ReadAt(word, 0x2ff000-0x200000); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint64(word); v != 0xfeedface {
		t.Errorf("word through the kernel text segment %#x, want 0xfeedface", v)
	}
	// The notes: namesz, descsz, type, "CORE\0\0\0\0", elf_prstatus.
	nb := make([]byte, note.Filesz)
	if _, err := note.ReadAt(nb, 0); err != nil {
		t.Fatal(err)
	}
	const each = 12 + 8 + prstatusSize
	if len(nb) != len(cpus)*each {
		t.Fatalf("notes %d bytes, want %d", len(nb), len(cpus)*each)
	}
	le := binary.LittleEndian
	for i, c := range cpus {
		n := nb[i*each:]
		if le.Uint32(n[0:]) != 5 || le.Uint32(n[4:]) != prstatusSize || elf.NType(le.Uint32(n[8:])) != elf.NT_PRSTATUS ||
			string(n[12:16]) != "CORE" {
			t.Fatalf("note %d header % x", i, n[:20])
		}
		desc := n[20:]
		reg := func(j int) uint64 { return le.Uint64(desc[prRegOffset+8*j:]) }
		if pid := le.Uint32(desc[32:]); pid != uint32(i+1) {
			t.Errorf("note %d: pid %d", i, pid)
		}
		// user_regs_struct: rbp 4, rip 16, rsp 19.
		if reg(16) != c.RIP || reg(19) != c.RSP || reg(4) != c.RBP {
			t.Errorf("note %d: rip %#x rsp %#x rbp %#x; want %+v", i, reg(16), reg(19), reg(4), c)
		}
	}
}

// A mapping past RAM's end is cut to RAM; one wholly outside is refused.
func TestWriteCutsMappingsToRAM(t *testing.T) {
	ram := []guestmem.Region{{GPA: 0, Host: make([]byte, 8192)}}
	if err := Write(io.Discard, nil, ram, []Mapping{{Virt: directMap, Phys: 1 << 20, Size: 4096}}); err == nil {
		t.Error("a mapping wholly outside RAM was written")
	}
	var buf bytes.Buffer
	if err := Write(&buf, nil, ram, []Mapping{{Virt: directMap, Phys: 4096, Size: 8192}}); err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Progs[1]; p.Vaddr != directMap || p.Paddr != 4096 || p.Filesz != 4096 {
		t.Errorf("the cut mapping: %+v, want %#x -> 0x1000 (+0x1000)", p.ProgHeader, uint64(directMap))
	}
}

// TestWriteFileIsWriteSparse: the file WriteFile makes reads exactly as
// Write's stream, with the zero pages as holes (less on disk than its
// length).
func TestWriteFileIsWriteSparse(t *testing.T) {
	m := tables()
	maps, err := KernelMappings(m, pml4, 0)
	if err != nil {
		t.Fatal(err)
	}
	cpus := []CPU{{RIP: kernelText + 7}}
	ram := []guestmem.Region{{GPA: 0, Host: m[:2<<20]}, {GPA: 2 << 20, Host: m[2<<20:]}}
	var want bytes.Buffer
	if err := Write(&want, cpus, ram, maps); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "core"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteFile(f, cpus, ram, maps); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("WriteFile's %d bytes differ from Write's %d", len(got), want.Len())
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 >= st.Size/2 {
		t.Errorf("%d bytes on disk for a %d-byte core of mostly zero RAM: not sparse", st.Blocks*512, st.Size)
	}
}

// TestKernelMappingsBounded: a walk that reaches MaxSegments stops with
// what it gathered and the bound's error, within what Write accepts.
func TestKernelMappingsBounded(t *testing.T) {
	// 4 KiB pages mapped in reverse physical order never merge: 512 page
	// tables of 512 such entries each pass MaxSegments.
	const tablesAt = 0x10000
	m := make(flatMem, tablesAt+(2+512)*4096+4096)
	m.put(pml4+8*273, pdpt|3)
	m.put(pdpt, tablesAt|3)
	for i := uint64(0); i < 512; i++ {
		ptAt := tablesAt + 4096*(1+i)
		m.put(tablesAt+8*i, ptAt|3)
		for j := uint64(0); j < 512; j++ {
			m.put(ptAt+8*j, (uint64(len(m))/4096-1-j%4)*4096|3)
		}
	}
	maps, err := KernelMappings(m, pml4, 0)
	if !errors.Is(err, ErrTooManySegments) || len(maps) != MaxSegments-1 {
		t.Fatalf("%d mappings, %v; want %d and ErrTooManySegments", len(maps), err, MaxSegments-1)
	}
	if err := Write(io.Discard, nil, []guestmem.Region{{GPA: 0, Host: m}}, maps); err != nil {
		t.Errorf("Write refused the walk's mappings: %v", err)
	}
}
