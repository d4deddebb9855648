package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// newMem returns guest RAM of one region [0, size), filled with fill so that
// tests see what Load does not write.
func newMem(size uint64, fill byte) *guestmem.Memory {
	host := bytes.Repeat([]byte{fill}, int(size))
	return guestmem.FromRegions(guestmem.Region{GPA: 0, Host: host})
}

// read returns n bytes of guest RAM at gpa.
func read(t *testing.T, mem *guestmem.Memory, gpa, n uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	if err := mem.ReadAt(b, gpa); err != nil {
		t.Fatalf("reading [%#x, +%#x): %v", gpa, n, err)
	}
	return b
}

func read16(t *testing.T, mem *guestmem.Memory, gpa uint64) uint16 {
	t.Helper()
	return binary.LittleEndian.Uint16(read(t, mem, gpa, 2))
}

func read32(t *testing.T, mem *guestmem.Memory, gpa uint64) uint32 {
	t.Helper()
	return binary.LittleEndian.Uint32(read(t, mem, gpa, 4))
}

func read64(t *testing.T, mem *guestmem.Memory, gpa uint64) uint64 {
	t.Helper()
	return binary.LittleEndian.Uint64(read(t, mem, gpa, 8))
}

// wantErr fails unless err wraps target and its message contains every one
// of substrs.
func wantErr(t *testing.T, err, target error, substrs ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// testSegment is a program header for buildELF.
type testSegment struct {
	typ   elf.ProgType
	paddr uint64
	data  []byte
	memsz uint64 // 0: len(data)
	align uint64
}

// buildELF returns an ELF64 x86-64 executable with segs, their data laid out
// after the program header table. mod, if not nil, edits the ELF header and
// program headers before they are encoded.
func buildELF(segs []testSegment, mod func(*elf.Header64, []elf.Prog64)) []byte {
	eh := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     elf64HeaderSize,
		Ehsize:    elf64HeaderSize,
		Phentsize: elf64PhdrSize,
		Phnum:     uint16(len(segs)),
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	eh.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)

	off := uint64(elf64HeaderSize + elf64PhdrSize*len(segs))
	var data []byte
	phdrs := make([]elf.Prog64, len(segs))
	for i, s := range segs {
		for (off+uint64(len(data)))%8 != 0 {
			data = append(data, 0)
		}
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		phdrs[i] = elf.Prog64{
			Type:   uint32(s.typ),
			Off:    off + uint64(len(data)),
			Vaddr:  s.paddr | 0xffffffff80000000,
			Paddr:  s.paddr,
			Filesz: uint64(len(s.data)),
			Memsz:  memsz,
			Align:  s.align,
		}
		data = append(data, s.data...)
	}
	if mod != nil {
		mod(&eh, phdrs)
	}
	out := encode(&eh)
	for i := range phdrs {
		out = append(out, encode(&phdrs[i])...)
	}
	return append(out, data...)
}

// note returns one ELF note, name and descriptor padded to 4 bytes.
func note(name string, typ uint32, desc []byte) []byte {
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, pad(append([]byte(name), 0))...)
	return append(b, pad(append([]byte(nil), desc...))...)
}

// pvhNote returns a XEN_ELFNOTE_PHYS32_ENTRY note for entry with a
// descriptor of size 4 or 8.
func pvhNote(entry uint64, size int) []byte {
	desc := binary.LittleEndian.AppendUint64(nil, entry)[:size]
	return note("Xen", xenElfnotePhys32Entry, desc)
}

// otherNotes are the notes a real vmlinux has before the Xen ones: names of
// 4 and 6 bytes, descriptors of 20, 4 and 1 bytes, exercising padding.
func otherNotes() []byte {
	var b []byte
	b = append(b, note("GNU", 3, bytes.Repeat([]byte{0x47}, 20))...)
	b = append(b, note("Linux", 0x100, []byte{0, 0, 0, 0})...)
	b = append(b, note("Linux", 0x101, []byte{0})...)
	b = append(b, note("Xen", 6, []byte("linux\x00"))...) // XEN_ELFNOTE_GUEST_OS
	return b
}

// Addresses of the synthetic vmlinux.
const (
	testTextAddr = 0x1000000 // 16 MiB, as a real vmlinux
	testTextSize = 0x3000
	testDataAddr = 0x1004000
	testDataFile = 0x800
	testDataMem  = 0x2000 // 0x1800 bytes of bss
	testEntry    = testTextAddr + 0x4a0
)

// testVmlinux returns a vmlinux with a text segment, a data segment with
// bss, and a note segment with notes (nil: otherNotes and a PVH note).
func testVmlinux(notes []byte) []byte {
	if notes == nil {
		notes = append(otherNotes(), pvhNote(testEntry, 8)...)
	}
	return buildELF([]testSegment{
		{typ: elf.PT_LOAD, paddr: testTextAddr, data: bytes.Repeat([]byte{0x90}, testTextSize), align: 0x200000},
		{typ: elf.PT_LOAD, paddr: testDataAddr, data: bytes.Repeat([]byte{0xd0}, testDataFile), memsz: testDataMem, align: 0x200000},
		{typ: elf.PT_NOTE, paddr: testTextAddr + 0x2000, data: notes, align: 4},
	}, nil)
}

// bzImage test values.
const (
	testSetupSects = 4
	testPayload    = 0x5000
	testPref       = 0x1000000
	testInitSize   = 0x800000
)

// testBzImage returns a bzImage with a boot protocol 2.15 header, 4 setup
// sectors and a payload of testPayload bytes counting up. mod, if not nil,
// edits the header before it is encoded.
func testBzImage(mod func(*setupHeader)) []byte {
	hdrEnd := setupHeaderOffset + setupHeaderSize
	h := setupHeader{
		SetupSects:        testSetupSects,
		Syssize:           testPayload / 16,
		VidMode:           0xffff,
		BootFlag:          bootFlagMagic,
		Jump:              0xeb | uint16(hdrEnd-jumpOffset-2)<<8,
		Header:            binary.LittleEndian.Uint32([]byte(headerMagic)),
		Version:           0x020f,
		Loadflags:         loadedHigh,
		Code32Start:       uint32(HighMemAddr),
		InitrdAddrMax:     0x7fffffff,
		KernelAlignment:   0x200000,
		RelocatableKernel: 1,
		MinAlignment:      21,
		Xloadflags:        xlfKernel64 | 1<<1,
		CmdlineSize:       CmdlineMaxSize - 1,
		PrefAddress:       testPref,
		InitSize:          testInitSize,
	}
	if mod != nil {
		mod(&h)
	}
	setup := (testSetupSects + 1) * sectorSize
	file := make([]byte, setup+testPayload)
	copy(file[setupHeaderOffset:], encode(&h))
	for i := setup; i < len(file); i++ {
		file[i] = byte(i - setup)
	}
	return file
}
