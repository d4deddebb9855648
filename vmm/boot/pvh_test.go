package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

func TestPVHStructSizes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{hvmStartInfo{}, startInfoSize},
		{hvmModlistEntry{}, modlistEntrySize},
		{hvmMemmapTableEntry{}, memmapEntrySize},
	} {
		if got := binary.Size(tc.v); got != tc.want {
			t.Errorf("%T is %d bytes, want %d", tc.v, got, tc.want)
		}
	}
}

func TestLoadPVH(t *testing.T) {
	const memSize = 32 << 20
	mem := newMem(memSize, 0xaa)
	initrd := bytes.Repeat([]byte{0x17}, 5000)
	cmdline := "console=ttyS0 panic=-1"
	cpu, err := Load(mem, testVmlinux(nil), Config{Cmdline: cmdline, Initrd: initrd, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}

	// Segments, with the bss cleared.
	if got := read(t, mem, testTextAddr, testTextSize); !bytes.Equal(got, bytes.Repeat([]byte{0x90}, testTextSize)) {
		t.Error("text segment not loaded")
	}
	if got := read(t, mem, testDataAddr, testDataFile); !bytes.Equal(got, bytes.Repeat([]byte{0xd0}, testDataFile)) {
		t.Error("data segment not loaded")
	}
	if got := read(t, mem, testDataAddr+testDataFile, testDataMem-testDataFile); !bytes.Equal(got, make([]byte, testDataMem-testDataFile)) {
		t.Error("bss not cleared")
	}

	// hvm_start_info, at the offsets of start_info.h.
	si := StartInfoAddr
	const wantInitrd = memSize - 0x2000 // 5000 bytes, page-aligned below the top
	for _, f := range []struct {
		name string
		off  uint64
		size int
		want uint64
	}{
		{"magic", 0, 4, 0x336ec578},
		{"version", 4, 4, 1},
		{"flags", 8, 4, 0},
		{"nr_modules", 12, 4, 1},
		{"modlist_paddr", 16, 8, ModlistAddr},
		{"cmdline_paddr", 24, 8, CmdlineAddr},
		{"rsdp_paddr", 32, 8, 0},
		{"memmap_paddr", 40, 8, MemmapAddr},
		{"memmap_entries", 48, 4, 4},
		{"reserved", 52, 4, 0},
		{"modlist[0].paddr", ModlistAddr - si, 8, wantInitrd},
		{"modlist[0].size", ModlistAddr - si + 8, 8, 5000},
		{"modlist[0].cmdline_paddr", ModlistAddr - si + 16, 8, 0},
		{"modlist[0].reserved", ModlistAddr - si + 24, 8, 0},
	} {
		var got uint64
		if f.size == 4 {
			got = uint64(read32(t, mem, si+f.off))
		} else {
			got = read64(t, mem, si+f.off)
		}
		if got != f.want {
			t.Errorf("hvm_start_info %s = %#x, want %#x", f.name, got, f.want)
		}
	}
	want := []E820Entry{
		{0, 0x9fc00, E820RAM},
		{0x9fc00, 0x400, E820Reserved},
		{0xf0000, 0x10000, E820Reserved},
		{0x100000, memSize - 0x100000, E820RAM},
	}
	for i, w := range want {
		e := MemmapAddr + uint64(i)*24
		got := E820Entry{read64(t, mem, e), read64(t, mem, e+8), E820Type(read32(t, mem, e+16))}
		if got != w || read32(t, mem, e+20) != 0 {
			t.Errorf("memmap[%d] = %+v, want %+v", i, got, w)
		}
	}

	if got := read(t, mem, CmdlineAddr, uint64(len(cmdline)+1)); string(got) != cmdline+"\x00" {
		t.Errorf("command line %q", got)
	}
	if got := read(t, mem, wantInitrd, 5000); !bytes.Equal(got, initrd) {
		t.Error("initrd not at the top of RAM")
	}
	if got := read(t, mem, MPTableAddr, 4); string(got) != "_MP_" {
		t.Errorf("no MP table: %q", got)
	}

	// 32-bit protected mode, paging off.
	if cpu.RIP != testEntry || cpu.RBX != StartInfoAddr || cpu.RFLAGS != 2 {
		t.Errorf("RIP %#x RBX %#x RFLAGS %#x", cpu.RIP, cpu.RBX, cpu.RFLAGS)
	}
	if cpu.CR0 != CR0PE|CR0ET || cpu.CR3 != 0 || cpu.CR4 != 0 || cpu.EFER != 0 {
		t.Errorf("CR0 %#x CR3 %#x CR4 %#x EFER %#x", cpu.CR0, cpu.CR3, cpu.CR4, cpu.EFER)
	}
	wantCS := Segment{Base: 0, Limit: 0xffffffff, Selector: 0x10, Type: 0xb, Present: true, DB: true, S: true, G: true}
	if cpu.CS != wantCS {
		t.Errorf("CS = %+v, want %+v", cpu.CS, wantCS)
	}
	wantDS := Segment{Base: 0, Limit: 0xffffffff, Selector: 0x18, Type: 0x3, Present: true, DB: true, S: true, G: true}
	for name, s := range map[string]Segment{"DS": cpu.DS, "ES": cpu.ES, "FS": cpu.FS, "GS": cpu.GS, "SS": cpu.SS} {
		if s != wantDS {
			t.Errorf("%s = %+v, want %+v", name, s, wantDS)
		}
	}
	wantTR := Segment{Limit: 0x67, Selector: 0x20, Type: 0xb, Present: true}
	if cpu.TR != wantTR {
		t.Errorf("TR = %+v, want %+v", cpu.TR, wantTR)
	}
	if cpu.GDT != (DescriptorTable{Base: GDTAddr, Limit: 47}) {
		t.Errorf("GDT = %+v", cpu.GDT)
	}
	for _, d := range []struct {
		sel  uint64
		want uint64
	}{
		{0x00, 0},
		{0x08, 0},
		{0x10, 0x00cf9b000000ffff}, // flat 32-bit code
		{0x18, 0x00cf93000000ffff}, // flat data
		{0x20, 0x00008b0000000067}, // busy 32-bit TSS
		{0x28, 0},
	} {
		if got := read64(t, mem, GDTAddr+d.sel); got != d.want {
			t.Errorf("GDT[%#x] = %#016x, want %#016x", d.sel, got, d.want)
		}
	}
}

func TestLoadPVHNoInitrdHighRegion(t *testing.T) {
	low := bytes.Repeat([]byte{0xaa}, 32<<20)
	high := make([]byte, 2<<20)
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: low}, guestmem.Region{GPA: 4 << 30, Host: high})
	if _, err := Load(mem, testVmlinux(nil), Config{CPUs: 1}); err != nil {
		t.Fatal(err)
	}
	if n := read32(t, mem, StartInfoAddr+12); n != 0 {
		t.Errorf("nr_modules = %d, want 0", n)
	}
	if p := read64(t, mem, StartInfoAddr+16); p != 0 {
		t.Errorf("modlist_paddr = %#x, want 0", p)
	}
	if n := read32(t, mem, StartInfoAddr+48); n != 5 {
		t.Fatalf("memmap_entries = %d, want 5", n)
	}
	e := MemmapAddr + 4*24
	if a, s, ty := read64(t, mem, e), read64(t, mem, e+8), read32(t, mem, e+16); a != 4<<30 || s != 2<<20 || ty != 1 {
		t.Errorf("memmap[4] = %#x +%#x type %d", a, s, ty)
	}
	if b := read(t, mem, CmdlineAddr, 1); b[0] != 0 {
		t.Errorf("empty command line not NUL-terminated: %#x", b[0])
	}
}

func TestLoadPVHErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		memSize uint64
		kernel  []byte
		cfg     Config
		want    error
		message string
	}{
		{"kernel beyond RAM", 16 << 20, testVmlinux(nil), Config{CPUs: 1}, ErrMemoryTooSmall, "kernel needs at least 17 MiB"},
		{"initrd does not fit", 20 << 20, testVmlinux(nil), Config{CPUs: 1, Initrd: make([]byte, 4<<20)},
			ErrMemoryTooSmall, "kernel and initrd need at least 21 MiB"},
		{"segment below 1 MiB", 32 << 20, buildELF([]testSegment{
			{typ: elf.PT_LOAD, paddr: 0x8000, data: make([]byte, 0x1000)},
			{typ: elf.PT_NOTE, data: pvhNote(0x8000, 4)},
		}, nil), Config{CPUs: 1}, ErrBadELF, "boot area"},
		{"segment in the MMIO hole", 32 << 20, buildELF([]testSegment{
			{typ: elf.PT_LOAD, paddr: 0xd000_0000, data: make([]byte, 0x1000)},
			{typ: elf.PT_NOTE, data: pvhNote(0xd000_0000, 4)},
		}, nil), Config{CPUs: 1}, ErrBadELF, "outside low guest RAM"},
		{"command line too long", 32 << 20, testVmlinux(nil), Config{CPUs: 1, Cmdline: string(bytes.Repeat([]byte{'x'}, 2048))},
			ErrCmdlineTooLong, "2048 bytes, at most 2047"},
		{"no CPUs", 32 << 20, testVmlinux(nil), Config{}, ErrCPUCount, "must be 1 to 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(tc.memSize, 0xaa)
			_, err := Load(mem, tc.kernel, tc.cfg)
			wantErr(t, err, tc.want, tc.message)
			// Nothing is written before the checks pass.
			if got := read(t, mem, 0, 0x10000); !bytes.Equal(got, bytes.Repeat([]byte{0xaa}, 0x10000)) {
				t.Error("Load wrote boot structures before failing")
			}
		})
	}
}
