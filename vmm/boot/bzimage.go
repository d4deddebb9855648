package boot

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Errors about a bzImage file.
var (
	// ErrBadBzImage is returned for a truncated or inconsistent bzImage.
	ErrBadBzImage = errors.New("malformed bzImage")
	// ErrUnsupportedBzImage is returned for a bzImage that cannot be
	// entered through the 64-bit boot protocol.
	ErrUnsupportedBzImage = errors.New("unsupported bzImage")
)

// Linux x86 boot protocol constants (Documentation/arch/x86/boot.rst,
// arch/x86/include/uapi/asm/bootparam.h).
const (
	// setupHeaderOffset is where struct setup_header starts, both in the
	// bzImage file and in boot_params.
	setupHeaderOffset = 0x1f1
	// jumpOffset is setup_header.jump, a short jmp whose displacement byte
	// (at jumpOffset+1) gives the header's end: jumpOffset+2+displacement.
	jumpOffset = 0x200
	// headerMagicOffset is setup_header.header, "HdrS".
	headerMagicOffset = 0x202
	// headerMagic is "HdrS".
	headerMagic = "HdrS"
	// bootFlagMagic is setup_header.boot_flag, the boot sector signature.
	bootFlagMagic = 0xaa55

	// minBootProtocol is 2.12, the first version with xloadflags and so
	// with XLF_KERNEL_64.
	minBootProtocol = 0x020c
	// minHeaderEnd is the end of the 2.12 header (after handover_offset).
	minHeaderEnd = 0x268

	// sectorSize is the unit of setup_sects.
	sectorSize = 512
	// defaultSetupSects is used when setup_sects is 0.
	defaultSetupSects = 4

	// loadflags bits.
	loadedHigh = 1 << 0 // LOADED_HIGH: protected-mode code loads at 1 MiB
	canUseHeap = 1 << 7 // CAN_USE_HEAP: heap_end_ptr is valid

	// xloadflags bits.
	xlfKernel64 = 1 << 0 // XLF_KERNEL_64: 64-bit entry at +0x200

	// typeOfLoaderUndefined is type_of_loader 0xff: a boot loader without
	// an assigned ID.
	typeOfLoaderUndefined = 0xff

	// heapEndPtr is the conventional end of the real-mode setup heap,
	// 0x10000 minus the 0x200 boot.rst says to subtract. The 64-bit entry
	// skips the real-mode setup code, so nothing reads it.
	heapEndPtr = 0xfe00

	// entry64Offset is the 64-bit entry point's offset from the start of
	// the protected-mode kernel (startup_64).
	entry64Offset = 0x200

	// defaultInitrdAddrMax is the limit boot.rst gives for kernels that do
	// not set initrd_addr_max.
	defaultInitrdAddrMax = 0x37ffffff
)

// struct boot_params ("zero page") offsets of the fields outside the setup
// header.
const (
	zeroPageSize         = 0x1000
	zpExtRamdiskImage    = 0x0c0 // ext_ramdisk_image: ramdisk_image bits 63:32
	zpExtRamdiskSize     = 0x0c4 // ext_ramdisk_size: ramdisk_size bits 63:32
	zpExtCmdLinePtr      = 0x0c8 // ext_cmd_line_ptr: cmd_line_ptr bits 63:32
	zpE820Entries        = 0x1e8 // e820_entries
	zpSetupHeaderEnd     = 0x290 // edd_mbr_sig_buffer: the end of hdr's room
	zpE820Table          = 0x2d0 // e820_table[E820_MAX_ENTRIES_ZEROPAGE]
	e820MaxEntriesZP     = 128   // E820_MAX_ENTRIES_ZEROPAGE
	bootE820EntrySize    = 20    // sizeof(struct boot_e820_entry), packed
	setupHeaderLayoutEnd = setupHeaderOffset + setupHeaderSize
)

// setupHeaderSize is the size of setupHeader: the header through
// kernel_info_offset.
const setupHeaderSize = 0x26c - setupHeaderOffset

// setupHeader mirrors struct setup_header up to boot protocol 2.15
// (kernel_info_offset). encoding/binary lays it out packed, as the kernel
// declares it.
type setupHeader struct {
	SetupSects          uint8
	RootFlags           uint16
	Syssize             uint32
	RamSize             uint16
	VidMode             uint16
	RootDev             uint16
	BootFlag            uint16
	Jump                uint16
	Header              uint32
	Version             uint16
	RealmodeSwtch       uint32
	StartSysSeg         uint16
	KernelVersion       uint16
	TypeOfLoader        uint8
	Loadflags           uint8
	SetupMoveSize       uint16
	Code32Start         uint32
	RamdiskImage        uint32
	RamdiskSize         uint32
	BootsectKludge      uint32
	HeapEndPtr          uint16
	ExtLoaderVer        uint8
	ExtLoaderType       uint8
	CmdLinePtr          uint32
	InitrdAddrMax       uint32
	KernelAlignment     uint32
	RelocatableKernel   uint8
	MinAlignment        uint8
	Xloadflags          uint16
	CmdlineSize         uint32
	HardwareSubarch     uint32
	HardwareSubarchData uint64
	PayloadOffset       uint32
	PayloadLength       uint32
	SetupData           uint64
	PrefAddress         uint64
	InitSize            uint32
	HandoverOffset      uint32
	KernelInfoOffset    uint32
}

// bzImage is a parsed bzImage file.
type bzImage struct {
	hdr setupHeader
	// rawHdr is the file's setup header, from setupHeaderOffset to the end
	// the jump instruction gives (at most the room boot_params has).
	rawHdr []byte
	// payload is the protected-mode kernel: the file after the setup
	// sectors.
	payload []byte
}

// isBzImage reports whether kernel has the boot protocol's "HdrS" magic.
func isBzImage(kernel []byte) bool {
	return len(kernel) >= headerMagicOffset+len(headerMagic) &&
		string(kernel[headerMagicOffset:headerMagicOffset+len(headerMagic)]) == headerMagic
}

// parseBzImage parses the setup header of a bzImage and checks that the
// kernel supports the 64-bit boot protocol.
func parseBzImage(kernel []byte) (*bzImage, error) {
	if !isBzImage(kernel) {
		return nil, fmt.Errorf("%w: no %q magic at %#x", ErrBadBzImage, headerMagic, headerMagicOffset)
	}
	if len(kernel) < setupHeaderLayoutEnd {
		return nil, fmt.Errorf("%w: %d bytes is too short for a setup header", ErrBadBzImage, len(kernel))
	}
	b := &bzImage{}
	if _, err := binary.Decode(kernel[setupHeaderOffset:], binary.LittleEndian, &b.hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBzImage, err)
	}
	h := &b.hdr
	if h.BootFlag != bootFlagMagic {
		return nil, fmt.Errorf("%w: boot_flag is %#x, want %#x", ErrBadBzImage, h.BootFlag, bootFlagMagic)
	}
	if h.Version < minBootProtocol {
		return nil, fmt.Errorf("%w: boot protocol %d.%02d too old, need >= %d.%02d with XLF_KERNEL_64",
			ErrUnsupportedBzImage, h.Version>>8, h.Version&0xff, minBootProtocol>>8, minBootProtocol&0xff)
	}
	if h.Xloadflags&xlfKernel64 == 0 {
		return nil, fmt.Errorf("%w: no 64-bit entry point (XLF_KERNEL_64 not set in xloadflags): not an x86-64 kernel", ErrUnsupportedBzImage)
	}
	if h.Loadflags&loadedHigh == 0 {
		return nil, fmt.Errorf("%w: zImage (LOADED_HIGH not set) cannot be loaded", ErrUnsupportedBzImage)
	}

	hdrEnd := jumpOffset + 2 + int(kernel[jumpOffset+1])
	if hdrEnd < minHeaderEnd {
		return nil, fmt.Errorf("%w: setup header ends at %#x, before the end of the boot protocol 2.12 fields at %#x",
			ErrBadBzImage, hdrEnd, minHeaderEnd)
	}
	hdrEnd = min(hdrEnd, zpSetupHeaderEnd)
	b.rawHdr = kernel[setupHeaderOffset:hdrEnd]

	sects := int(h.SetupSects)
	if sects == 0 {
		sects = defaultSetupSects
	}
	setupSize := (sects + 1) * sectorSize
	if setupSize < hdrEnd || setupSize >= len(kernel) {
		return nil, fmt.Errorf("%w: %d setup sectors do not fit the %d-byte file", ErrBadBzImage, sects, len(kernel))
	}
	b.payload = kernel[setupSize:]
	if h.InitSize == 0 {
		return nil, fmt.Errorf("%w: init_size is 0", ErrBadBzImage)
	}
	return b, nil
}

// loadAddr returns where the protected-mode kernel is loaded: at
// pref_address when the kernel is relocatable (boot.rst: "a relocating
// bootloader should attempt to load at this address"), else at the
// traditional 1 MiB (code32_start's default). Either way the kernel
// decompresses itself to at least pref_address (LOAD_PHYSICAL_ADDR), so
// loading relocatable kernels there avoids a second, disjoint range.
func (b *bzImage) loadAddr() uint64 {
	if b.hdr.RelocatableKernel != 0 && b.hdr.PrefAddress >= HighMemAddr && b.hdr.PrefAddress < guestmem.MMIOHoleStart {
		return b.hdr.PrefAddress
	}
	return HighMemAddr
}

// kernelEnd returns the end of the memory the kernel uses before it reads
// the memory map when loaded at load: the loaded image, and the init_size
// bytes from its runtime start, which the decompressor puts at load (or at
// load rounded up to kernel_alignment) but never below pref_address.
func (b *bzImage) kernelEnd(load uint64) uint64 {
	runtime := load
	if a := uint64(b.hdr.KernelAlignment); b.hdr.RelocatableKernel != 0 && a != 0 && a&(a-1) == 0 {
		runtime = (runtime + a - 1) &^ (a - 1)
	}
	runtime = max(runtime, b.hdr.PrefAddress)
	return max(load+uint64(len(b.payload)), runtime+uint64(b.hdr.InitSize))
}

// initrdAddrMax returns the highest address the initrd's last byte may
// occupy.
func (b *bzImage) initrdAddrMax() uint64 {
	if b.hdr.InitrdAddrMax == 0 {
		return defaultInitrdAddrMax
	}
	return uint64(b.hdr.InitrdAddrMax)
}

// cmdlineMax returns the size of the longest command line the kernel
// accepts, including the terminating NUL.
func (b *bzImage) cmdlineMax() int {
	if b.hdr.CmdlineSize == 0 || uint64(b.hdr.CmdlineSize)+1 > CmdlineMaxSize {
		return CmdlineMaxSize
	}
	return int(b.hdr.CmdlineSize) + 1
}

// loadBzImage loads a bzImage for the 64-bit boot protocol: the
// protected-mode kernel at loadAddr, the initrd, the command line, and
// boot_params with the setup header and the E820 map. The returned CPU
// enters startup_64 in long mode with the first 4 GiB identity-mapped,
// __BOOT_CS/__BOOT_DS flat segments, interrupts off and RSI = &boot_params.
func loadBzImage(mem *guestmem.Memory, kernel []byte, cfg *Config, ram [][2]uint64, e820 []E820Entry) (*CPU, error) {
	b, err := parseBzImage(kernel)
	if err != nil {
		return nil, err
	}
	lowEnd := lowRAMEnd(ram)
	load := b.loadAddr()
	kernelEnd := b.kernelEnd(load)
	if kernelEnd > lowEnd {
		return nil, memoryTooSmall("kernel needs", kernelEnd)
	}
	initrdAddr, err := placeInitrd(lowEnd, kernelEnd, uint64(len(cfg.Initrd)), b.initrdAddrMax())
	if err != nil {
		return nil, err
	}
	if err := checkCmdline(cfg.Cmdline, b.cmdlineMax()); err != nil {
		return nil, err
	}
	if len(e820) > e820MaxEntriesZP {
		return nil, fmt.Errorf("%w: %d memory map entries, at most %d fit", ErrBadRAMLayout, len(e820), e820MaxEntriesZP)
	}

	if err := mem.WriteAt(b.payload, load); err != nil {
		return nil, err
	}
	if len(cfg.Initrd) > 0 {
		if err := mem.WriteAt(cfg.Initrd, initrdAddr); err != nil {
			return nil, err
		}
	}
	if err := writeCmdline(mem, cfg.Cmdline); err != nil {
		return nil, err
	}
	zp := b.zeroPage(load, initrdAddr, uint64(len(cfg.Initrd)), e820)
	if err := mem.WriteAt(zp, ZeroPageAddr); err != nil {
		return nil, err
	}
	cr3, err := writeIdentityPageTables(mem)
	if err != nil {
		return nil, err
	}

	cpu := newCPU(flatCode64())
	cpu.RIP = load + entry64Offset
	cpu.RSI = ZeroPageAddr
	cpu.CR0 = CR0PE | CR0ET | CR0PG
	cpu.CR3 = cr3
	cpu.CR4 = CR4PAE
	cpu.EFER = EFERLME | EFERLMA
	if err := writeGDT(mem, cpu); err != nil {
		return nil, err
	}
	return cpu, nil
}

// zeroPage returns boot_params: zero except for the kernel's setup header,
// with the fields a boot loader fills in set, and the E820 map.
func (b *bzImage) zeroPage(load, initrdAddr, initrdSize uint64, e820 []E820Entry) []byte {
	zp := make([]byte, zeroPageSize)
	copy(zp[setupHeaderOffset:], b.rawHdr)

	h := b.hdr
	h.TypeOfLoader = typeOfLoaderUndefined
	h.Loadflags |= canUseHeap
	h.HeapEndPtr = heapEndPtr
	h.Code32Start = uint32(load)
	h.CmdLinePtr = uint32(CmdlineAddr)
	h.RamdiskImage = uint32(initrdAddr)
	h.RamdiskSize = uint32(initrdSize)
	// Only the header the kernel declared: past its end lies setup code.
	copy(zp[setupHeaderOffset:setupHeaderOffset+len(b.rawHdr)], encode(&h))

	le := binary.LittleEndian
	le.PutUint32(zp[zpExtRamdiskImage:], uint32(initrdAddr>>32))
	le.PutUint32(zp[zpExtRamdiskSize:], uint32(initrdSize>>32))
	le.PutUint32(zp[zpExtCmdLinePtr:], uint32(CmdlineAddr>>32))
	zp[zpE820Entries] = uint8(len(e820))
	for i, e := range e820 {
		off := zpE820Table + i*bootE820EntrySize
		le.PutUint64(zp[off:], e.Addr)
		le.PutUint64(zp[off+8:], e.Size)
		le.PutUint32(zp[off+16:], uint32(e.Type))
	}
	return zp
}
