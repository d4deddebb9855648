package boot

import (
	"bytes"
	"debug/elf"
	"testing"
)

func TestParseVmlinux(t *testing.T) {
	for _, size := range []int{4, 8} {
		notes := append(otherNotes(), pvhNote(testEntry, size)...)
		v, err := parseVmlinux(testVmlinux(notes))
		if err != nil {
			t.Fatalf("%d-byte PVH descriptor: %v", size, err)
		}
		if v.pvhEntry != testEntry {
			t.Errorf("%d-byte PVH descriptor: entry %#x, want %#x", size, v.pvhEntry, testEntry)
		}
		if len(v.loads) != 2 {
			t.Fatalf("%d PT_LOAD segments, want 2", len(v.loads))
		}
		if got, want := v.end(), uint64(testDataAddr+testDataMem); got != want {
			t.Errorf("end %#x, want %#x", got, want)
		}
		d := v.loads[1]
		if d.paddr != testDataAddr || d.memsz != testDataMem || len(d.data) != testDataFile {
			t.Errorf("data segment paddr %#x memsz %#x filesz %#x", d.paddr, d.memsz, len(d.data))
		}
	}
}

func TestPVHNoteInSecondNoteSegment(t *testing.T) {
	kernel := buildELF([]testSegment{
		{typ: elf.PT_LOAD, paddr: testTextAddr, data: make([]byte, testTextSize)},
		{typ: elf.PT_NOTE, data: otherNotes(), align: 4},
		// 8-aligned notes, as .note.gnu.property emits them.
		{typ: elf.PT_NOTE, data: []byte{
			4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0, 0, 0, 0, 0,
			0xa0, 4, 0, 1, 0, 0, 0, 0,
		}, align: 8},
	}, nil)
	v, err := parseVmlinux(kernel)
	if err != nil {
		t.Fatal(err)
	}
	if v.pvhEntry != testEntry {
		t.Errorf("entry %#x, want %#x", v.pvhEntry, testEntry)
	}
}

func TestParseVmlinuxErrors(t *testing.T) {
	valid := testVmlinux(nil)
	for _, tc := range []struct {
		name    string
		kernel  []byte
		want    error
		message string
	}{
		{"empty", nil, ErrNotELF, "not an ELF file"},
		{"bzImage", testBzImage(nil), ErrNotELF, ""},
		{"truncated header", valid[:40], ErrBadELF, "too short"},
		{"32-bit", func() []byte {
			k := bytes.Clone(valid)
			k[elf.EI_CLASS] = byte(elf.ELFCLASS32)
			return k
		}(), ErrUnsupportedELF, "ELFCLASS32"},
		{"big-endian", func() []byte {
			k := bytes.Clone(valid)
			k[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
			return k
		}(), ErrUnsupportedELF, "ELFDATA2MSB"},
		{"aarch64", buildELF([]testSegment{{typ: elf.PT_LOAD, paddr: testTextAddr, data: []byte{1}}},
			func(eh *elf.Header64, _ []elf.Prog64) { eh.Machine = uint16(elf.EM_AARCH64) }),
			ErrUnsupportedELF, "EM_AARCH64"},
		{"relocatable object", buildELF([]testSegment{{typ: elf.PT_LOAD, paddr: testTextAddr, data: []byte{1}}},
			func(eh *elf.Header64, _ []elf.Prog64) { eh.Type = uint16(elf.ET_REL) }),
			ErrUnsupportedELF, "ET_REL"},
		{"truncated program headers", valid[:elf64HeaderSize+elf64PhdrSize+10], ErrBadELF, "program header table"},
		{"bad phentsize", buildELF([]testSegment{{typ: elf.PT_LOAD, paddr: testTextAddr, data: []byte{1}}},
			func(eh *elf.Header64, _ []elf.Prog64) { eh.Phentsize = 32 }),
			ErrBadELF, "e_phentsize"},
		{"no program headers", buildELF(nil, nil), ErrBadELF, "no program headers"},
		{"segment past end of file", valid[:len(valid)-200], ErrBadELF, "past the end"},
		{"overflowing p_paddr+p_memsz", buildELF([]testSegment{
			{typ: elf.PT_LOAD, paddr: 0xffff_ffff_ffff_f000, data: []byte{1}, memsz: 0x2000},
		}, nil), ErrBadELF, "overflows"},
		{"p_filesz > p_memsz", buildELF([]testSegment{{typ: elf.PT_LOAD, paddr: testTextAddr, data: make([]byte, 16)}},
			func(_ *elf.Header64, p []elf.Prog64) { p[0].Memsz = 8 }),
			ErrBadELF, "p_filesz"},
		{"no PT_LOAD", buildELF([]testSegment{{typ: elf.PT_NOTE, data: pvhNote(testEntry, 4)}}, nil),
			ErrBadELF, "no PT_LOAD"},
		{"no PT_NOTE", buildELF([]testSegment{{typ: elf.PT_LOAD, paddr: testTextAddr, data: make([]byte, 16)}}, nil),
			ErrNoPVHNote, "CONFIG_PVH=y"},
		{"no PVH note", testVmlinux(otherNotes()), ErrNoPVHNote, "XEN_ELFNOTE_PHYS32_ENTRY"},
		{"PVH entry outside PT_LOAD", testVmlinux(pvhNote(0x2000000, 4)), ErrBadELF, "not inside any PT_LOAD"},
		{"PVH entry above 4 GiB", testVmlinux(pvhNote(1<<32|testEntry, 8)), ErrBadELF, "above 4 GiB"},
		{"PVH descriptor size", testVmlinux(note("Xen", xenElfnotePhys32Entry, []byte{1, 2})), ErrBadELF, "2-byte descriptor"},
		{"truncated note", testVmlinux(pvhNote(testEntry, 8)[:18]), ErrBadELF, "runs past the segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseVmlinux(tc.kernel)
			wantErr(t, err, tc.want, tc.message)
		})
	}
}

func TestFindNoteTrailingPadding(t *testing.T) {
	notes := append(pvhNote(testEntry, 4), 0, 0, 0, 0)
	desc, ok, err := findNote(notes, 4, xenNoteName, xenElfnotePhys32Entry)
	if err != nil || !ok || len(desc) != 4 {
		t.Fatalf("findNote = %x, %v, %v", desc, ok, err)
	}
}
