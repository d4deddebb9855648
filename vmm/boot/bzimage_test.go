package boot

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

func TestSetupHeaderLayout(t *testing.T) {
	if got := binary.Size(setupHeader{}); got != setupHeaderSize {
		t.Errorf("setupHeader is %d bytes, want %d", got, setupHeaderSize)
	}
	// Offsets of boot.rst's header table, relative to the file.
	h := setupHeader{Version: 0x1234, Loadflags: 0x56, CmdLinePtr: 0x789abcde, Xloadflags: 0x4321, PrefAddress: 0x1122334455667788, InitSize: 0x99aabbcc}
	b := make([]byte, setupHeaderOffset)
	b = append(b, encode(&h)...)
	for _, f := range []struct {
		name string
		off  int
		got  uint64
		want uint64
	}{
		{"version", 0x206, uint64(binary.LittleEndian.Uint16(b[0x206:])), 0x1234},
		{"loadflags", 0x211, uint64(b[0x211]), 0x56},
		{"cmd_line_ptr", 0x228, uint64(binary.LittleEndian.Uint32(b[0x228:])), 0x789abcde},
		{"xloadflags", 0x236, uint64(binary.LittleEndian.Uint16(b[0x236:])), 0x4321},
		{"pref_address", 0x258, binary.LittleEndian.Uint64(b[0x258:]), 0x1122334455667788},
		{"init_size", 0x260, uint64(binary.LittleEndian.Uint32(b[0x260:])), 0x99aabbcc},
	} {
		if f.got != f.want {
			t.Errorf("%s at %#x = %#x, want %#x", f.name, f.off, f.got, f.want)
		}
	}
	if zpE820Table+e820MaxEntriesZP*bootE820EntrySize > zeroPageSize {
		t.Error("e820_table does not fit in the zero page")
	}
	if setupHeaderOffset+setupHeaderSize > zpSetupHeaderEnd {
		t.Error("setup header does not fit in boot_params.hdr")
	}
}

func TestParseBzImage(t *testing.T) {
	b, err := parseBzImage(testBzImage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.payload) != testPayload || b.payload[1] != 1 {
		t.Errorf("payload of %d bytes starting %x", len(b.payload), b.payload[:2])
	}
	if len(b.rawHdr) != setupHeaderSize {
		t.Errorf("raw header is %d bytes, want %d", len(b.rawHdr), setupHeaderSize)
	}
	if b.hdr.InitSize != testInitSize || b.hdr.PrefAddress != testPref {
		t.Errorf("init_size %#x pref_address %#x", b.hdr.InitSize, b.hdr.PrefAddress)
	}

	// setup_sects 0 means 4.
	b, err = parseBzImage(testBzImage(func(h *setupHeader) { h.SetupSects = 0 }))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.payload) != testPayload {
		t.Errorf("setup_sects 0: payload of %d bytes, want %d", len(b.payload), testPayload)
	}
}

func TestParseBzImageErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kernel  []byte
		want    error
		message string
	}{
		{"no HdrS", make([]byte, 4096), ErrBadBzImage, `no "HdrS"`},
		{"truncated", testBzImage(nil)[:0x240], ErrBadBzImage, "too short"},
		{"boot protocol 2.10", testBzImage(func(h *setupHeader) { h.Version = 0x020a }), ErrUnsupportedBzImage,
			"boot protocol 2.10 too old, need >= 2.12 with XLF_KERNEL_64"},
		{"boot protocol 2.04", testBzImage(func(h *setupHeader) { h.Version = 0x0204 }), ErrUnsupportedBzImage, "2.04 too old"},
		{"32-bit kernel", testBzImage(func(h *setupHeader) { h.Xloadflags = 0 }), ErrUnsupportedBzImage, "XLF_KERNEL_64"},
		{"zImage", testBzImage(func(h *setupHeader) { h.Loadflags = 0 }), ErrUnsupportedBzImage, "LOADED_HIGH"},
		{"boot flag", testBzImage(func(h *setupHeader) { h.BootFlag = 0 }), ErrBadBzImage, "boot_flag"},
		{"short header", testBzImage(func(h *setupHeader) { h.Jump = 0x10eb }), ErrBadBzImage, "setup header ends at 0x212"},
		{"setup larger than file", testBzImage(func(h *setupHeader) { h.SetupSects = 200 }), ErrBadBzImage, "200 setup sectors"},
		{"init_size 0", testBzImage(func(h *setupHeader) { h.InitSize = 0 }), ErrBadBzImage, "init_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBzImage(tc.kernel)
			wantErr(t, err, tc.want, tc.message)
		})
	}
}

func TestBzImageLoadAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mod      func(*setupHeader)
		wantLoad uint64
		wantEnd  uint64
	}{
		{"relocatable", nil, testPref, testPref + testInitSize},
		{"not relocatable", func(h *setupHeader) { h.RelocatableKernel = 0 }, HighMemAddr, testPref + testInitSize},
		{"relocatable, no pref_address", func(h *setupHeader) { h.PrefAddress = 0 }, HighMemAddr, 0x200000 + testInitSize},
		{"init_size smaller than the image", func(h *setupHeader) { h.InitSize = 0x100 }, testPref, testPref + testPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseBzImage(testBzImage(tc.mod))
			if err != nil {
				t.Fatal(err)
			}
			load := b.loadAddr()
			if load != tc.wantLoad {
				t.Errorf("load address %#x, want %#x", load, tc.wantLoad)
			}
			if end := b.kernelEnd(load); end != tc.wantEnd {
				t.Errorf("kernel end %#x, want %#x", end, tc.wantEnd)
			}
		})
	}
}

func TestLoadBzImage(t *testing.T) {
	const memSize = 64 << 20
	low := bytes.Repeat([]byte{0xaa}, memSize)
	high := make([]byte, 1<<20)
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: low}, guestmem.Region{GPA: 4 << 30, Host: high})
	kernel := testBzImage(nil)
	initrd := bytes.Repeat([]byte{0x17}, 3<<20+1)
	cmdline := "console=ttyS0 root=/dev/vda"
	cpu, err := Load(mem, kernel, Config{Cmdline: cmdline, Initrd: initrd, CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}

	if got := read(t, mem, testPref, testPayload); !bytes.Equal(got, kernel[(testSetupSects+1)*sectorSize:]) {
		t.Error("protected-mode kernel not at pref_address")
	}
	const wantInitrd = memSize - 3<<20 - 0x1000
	if got := read(t, mem, wantInitrd, uint64(len(initrd))); !bytes.Equal(got, initrd) {
		t.Error("initrd not at the top of RAM")
	}
	if got := read(t, mem, CmdlineAddr, uint64(len(cmdline)+1)); string(got) != cmdline+"\x00" {
		t.Errorf("command line %q", got)
	}

	// boot_params.
	zp := ZeroPageAddr
	hdr := read(t, mem, zp+setupHeaderOffset, setupHeaderSize)
	want := bytes.Clone(kernel[setupHeaderOffset : setupHeaderOffset+setupHeaderSize])
	// The fields the loader fills in differ from the file; patch them in.
	want[0x210-setupHeaderOffset] = 0xff
	want[0x211-setupHeaderOffset] |= 0x80
	binary.LittleEndian.PutUint32(want[0x214-setupHeaderOffset:], testPref)
	binary.LittleEndian.PutUint32(want[0x218-setupHeaderOffset:], wantInitrd)
	binary.LittleEndian.PutUint32(want[0x21c-setupHeaderOffset:], uint32(len(initrd)))
	binary.LittleEndian.PutUint16(want[0x224-setupHeaderOffset:], 0xfe00)
	binary.LittleEndian.PutUint32(want[0x228-setupHeaderOffset:], uint32(CmdlineAddr))
	if !bytes.Equal(hdr, want) {
		t.Errorf("setup header in boot_params\n got %x\nwant %x", hdr, want)
	}
	for _, f := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"type_of_loader", uint64(read(t, mem, zp+0x210, 1)[0]), 0xff},
		{"loadflags", uint64(read(t, mem, zp+0x211, 1)[0]), loadedHigh | canUseHeap},
		{"heap_end_ptr", uint64(read16(t, mem, zp+0x224)), 0xfe00},
		{"cmd_line_ptr", uint64(read32(t, mem, zp+0x228)), CmdlineAddr},
		{"ext_cmd_line_ptr", uint64(read32(t, mem, zp+0x0c8)), 0},
		{"ramdisk_image", uint64(read32(t, mem, zp+0x218)), wantInitrd},
		{"ramdisk_size", uint64(read32(t, mem, zp+0x21c)), uint64(len(initrd))},
		{"ext_ramdisk_image", uint64(read32(t, mem, zp+0x0c0)), 0},
		{"ext_ramdisk_size", uint64(read32(t, mem, zp+0x0c4)), 0},
		{"version", uint64(read16(t, mem, zp+0x206)), 0x020f},
		{"e820_entries", uint64(read(t, mem, zp+0x1e8, 1)[0]), 5},
		{"screen_info (zeroed)", read64(t, mem, zp), 0},
		{"after e820_table (zeroed)", read64(t, mem, zp+0x2d0+5*20), 0},
	} {
		if f.got != f.want {
			t.Errorf("boot_params %s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	wantMap := []E820Entry{
		{0, 0x9fc00, E820RAM},
		{0x9fc00, 0x400, E820Reserved},
		{0xf0000, 0x10000, E820Reserved},
		{0x100000, memSize - 0x100000, E820RAM},
		{4 << 30, 1 << 20, E820RAM},
	}
	for i, w := range wantMap {
		e := zp + 0x2d0 + uint64(i)*20
		got := E820Entry{read64(t, mem, e), read64(t, mem, e+8), E820Type(read32(t, mem, e+16))}
		if got != w {
			t.Errorf("e820_table[%d] = %+v, want %+v", i, got, w)
		}
	}

	// Long mode.
	if cpu.RIP != testPref+0x200 || cpu.RSI != ZeroPageAddr || cpu.RFLAGS != 2 || cpu.RSP != BootStackTop {
		t.Errorf("RIP %#x RSI %#x RFLAGS %#x RSP %#x", cpu.RIP, cpu.RSI, cpu.RFLAGS, cpu.RSP)
	}
	if cpu.CR0 != CR0PE|CR0ET|CR0PG || cpu.CR3 != PML4Addr || cpu.CR4 != CR4PAE || cpu.EFER != EFERLME|EFERLMA {
		t.Errorf("CR0 %#x CR3 %#x CR4 %#x EFER %#x", cpu.CR0, cpu.CR3, cpu.CR4, cpu.EFER)
	}
	wantCS := Segment{Limit: 0xffffffff, Selector: 0x10, Type: 0xb, Present: true, S: true, L: true, G: true}
	if cpu.CS != wantCS {
		t.Errorf("CS = %+v, want %+v", cpu.CS, wantCS)
	}
	if cpu.DS.Selector != 0x18 || cpu.SS != cpu.DS || cpu.ES != cpu.DS {
		t.Errorf("DS %+v SS %+v ES %+v", cpu.DS, cpu.SS, cpu.ES)
	}
	for _, d := range []struct {
		sel  uint64
		want uint64
	}{
		{0x10, 0x00af9b000000ffff}, // 64-bit code
		{0x18, 0x00cf93000000ffff}, // flat data
		{0x20, 0x00008b0000000067}, // busy 64-bit TSS, low half
		{0x28, 0},                  // high half: base 63:32
	} {
		if got := read64(t, mem, GDTAddr+d.sel); got != d.want {
			t.Errorf("GDT[%#x] = %#016x, want %#016x", d.sel, got, d.want)
		}
	}
}

func TestLoadBzImageErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		memSize uint64
		kernel  []byte
		cfg     Config
		want    error
		message string
	}{
		{"init_size beyond RAM", 16 << 20, testBzImage(nil), Config{CPUs: 1}, ErrMemoryTooSmall, "kernel needs at least 24 MiB"},
		{"initrd beyond RAM", 32 << 20, testBzImage(nil), Config{CPUs: 1, Initrd: make([]byte, 9<<20)},
			ErrMemoryTooSmall, "kernel and initrd need at least 33 MiB"},
		{"initrd above initrd_addr_max", 64 << 20, testBzImage(func(h *setupHeader) { h.InitrdAddrMax = 0x1a00000 - 1 }),
			Config{CPUs: 1, Initrd: make([]byte, 3<<20)}, ErrInitrdTooLarge, "3 MiB initrd"},
		{"command line beyond cmdline_size", 64 << 20, testBzImage(func(h *setupHeader) { h.CmdlineSize = 255 }),
			Config{CPUs: 1, Cmdline: string(bytes.Repeat([]byte{'x'}, 256))}, ErrCmdlineTooLong, "256 bytes, at most 255"},
		{"command line with NUL", 64 << 20, testBzImage(nil), Config{CPUs: 1, Cmdline: "a\x00b"}, ErrCmdlineNUL, ""},
		{"too many CPUs", 64 << 20, testBzImage(nil), Config{CPUs: MaxCPUs + 1}, ErrCPUCount, "33"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(tc.memSize, 0xaa)
			_, err := Load(mem, tc.kernel, tc.cfg)
			wantErr(t, err, tc.want, tc.message)
			if got := read(t, mem, 0, 0x10000); !bytes.Equal(got, bytes.Repeat([]byte{0xaa}, 0x10000)) {
				t.Error("Load wrote boot structures before failing")
			}
		})
	}
}
