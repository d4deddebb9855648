package boot

// CPU is the register state the boot CPU (vCPU 0) must have at the kernel's
// first instruction. It is plain data: the VMM converts it to kvm_regs and
// kvm_sregs (EFER is kvm_sregs.efer). Registers it does not name keep the
// values KVM gives a new vCPU: zero for the other general-purpose registers,
// the architectural reset state for CR2, CR8, the APIC base and the FPU.
//
// It describes the boot CPU only. The application processors start in real
// mode through the INIT/SIPI sequence the kernel sends via the in-kernel
// local APIC; the VMM gives them KVM's reset state and nothing from here.
type CPU struct {
	// RIP is the kernel entry point.
	RIP uint64
	// RSP is the initial stack pointer (BootStackTop).
	RSP uint64
	// RBX holds the hvm_start_info address for PVH entry.
	RBX uint64
	// RSI holds the boot_params address for the 64-bit boot protocol.
	RSI uint64
	// RFLAGS is RFLAGSReserved: interrupts off.
	RFLAGS uint64

	// CR0, CR3, CR4 and EFER select the CPU mode (see the CR0*, CR4* and
	// EFER* bits).
	CR0, CR3, CR4, EFER uint64

	// Segment registers, as loaded from the boot GDT at GDT.Base.
	CS, DS, ES, FS, GS, SS Segment
	// TR is the task register (a busy TSS); LDT is not present.
	TR, LDT Segment

	// GDT and IDT are the descriptor-table registers.
	GDT, IDT DescriptorTable
}

// Segment is a segment register's selector and hidden descriptor cache,
// field for field the contents of struct kvm_segment.
type Segment struct {
	// Base is the segment base address.
	Base uint64
	// Limit is the byte-granular limit: with G set it is the descriptor
	// limit scaled by 4 KiB plus 0xfff.
	Limit uint32
	// Selector is the GDT index << 3 (TI = 0, RPL = 0).
	Selector uint16
	// Type is the 4-bit descriptor type (SegType*).
	Type uint8
	// Present is the P bit. A register that is not present is unusable
	// (kvm_segment.unusable = 1); only LDT is.
	Present bool
	// DPL is the descriptor privilege level.
	DPL uint8
	// DB is the default operation size bit: set for 32-bit segments.
	DB bool
	// S is set for code and data segments, clear for system segments
	// (TSS, LDT).
	S bool
	// L is set for 64-bit code segments.
	L bool
	// G is the granularity bit: the limit counts 4 KiB units.
	G bool
	// AVL is the bit available to software.
	AVL bool
}

// DescriptorTable is a GDTR or IDTR value.
type DescriptorTable struct {
	// Base is the guest-physical (boot: identity-mapped) table address.
	Base uint64
	// Limit is the table size in bytes minus one.
	Limit uint16
}

// Control register and MSR bits used at boot (Intel SDM vol. 3A, 2.5).
const (
	// CR0PE enables protected mode.
	CR0PE uint64 = 1 << 0
	// CR0ET is the extension type bit, hard-wired to 1 on modern CPUs.
	CR0ET uint64 = 1 << 4
	// CR0PG enables paging.
	CR0PG uint64 = 1 << 31

	// CR4PAE enables physical address extension, required for long mode.
	CR4PAE uint64 = 1 << 5

	// EFERLME enables long mode.
	EFERLME uint64 = 1 << 8
	// EFERLMA reports long mode active; KVM takes it from the state it is
	// given, so it is set together with LME and CR0.PG.
	EFERLMA uint64 = 1 << 10

	// RFLAGSReserved is RFLAGS bit 1, which always reads as 1. Every other
	// bit is clear at entry: in particular IF, so interrupts are off.
	RFLAGSReserved uint64 = 1 << 1
)

// Segment descriptor types (Intel SDM vol. 3A, 3.4.5.1 and 3.5).
const (
	// SegTypeDataRWA is a read/write data segment, accessed.
	SegTypeDataRWA uint8 = 0x3
	// SegTypeCodeXRA is an execute/read code segment, accessed.
	SegTypeCodeXRA uint8 = 0xb
	// SegTypeLDT is an LDT system segment.
	SegTypeLDT uint8 = 0x2
	// SegTypeTSSBusy is a busy 32-bit TSS (in long mode: a busy 64-bit
	// TSS, same encoding).
	SegTypeTSSBusy uint8 = 0xb
)

// GDT selectors. The 64-bit boot protocol requires __BOOT_CS = 0x10 and
// __BOOT_DS = 0x18 (arch/x86/include/asm/segment.h, GDT_ENTRY_BOOT_CS = 2);
// PVH uses the same descriptors in their 32-bit form.
const (
	// BootCS is the code segment selector, __BOOT_CS.
	BootCS uint16 = 0x10
	// BootDS is the data segment selector, __BOOT_DS.
	BootDS uint16 = 0x18
	// BootTSS is the task state segment selector. In long mode its
	// descriptor takes two GDT slots.
	BootTSS uint16 = 0x20
)

// tssLimit is the limit of a TSS without an I/O permission bitmap: 104
// bytes, the size of the 32-bit (and 64-bit) TSS.
const tssLimit = 0x67

// flatLimit is the byte limit of a 4 GiB segment.
const flatLimit = 0xffff_ffff

// flatCode32 is a flat 32-bit execute/read code segment (PVH).
func flatCode32() Segment {
	return Segment{Limit: flatLimit, Selector: BootCS, Type: SegTypeCodeXRA,
		Present: true, DB: true, S: true, G: true}
}

// flatCode64 is a 64-bit code segment (the 64-bit boot protocol). Base and
// limit are ignored in long mode; they are flat for consistency.
func flatCode64() Segment {
	return Segment{Limit: flatLimit, Selector: BootCS, Type: SegTypeCodeXRA,
		Present: true, S: true, L: true, G: true}
}

// flatData is a flat 32-bit read/write data segment, used for DS, ES, FS,
// GS and SS in both protocols.
func flatData() Segment {
	return Segment{Limit: flatLimit, Selector: BootDS, Type: SegTypeDataRWA,
		Present: true, DB: true, S: true, G: true}
}

// bootTSS is a busy TSS at base 0 with the minimal limit, as the PVH ABI
// requires; KVM needs a valid TR to enter the guest in either mode. Nothing
// uses it before the kernel loads its own.
func bootTSS() Segment {
	return Segment{Limit: tssLimit, Selector: BootTSS, Type: SegTypeTSSBusy, Present: true}
}

// noLDT is the LDT register with no LDT loaded: not present, unusable.
func noLDT() Segment {
	return Segment{Type: SegTypeLDT}
}

// newCPU returns the state shared by both protocols: code segment cs, flat
// data segments, the boot TSS and GDT, an empty IDT, interrupts off, and the
// boot stack.
func newCPU(cs Segment) *CPU {
	ds := flatData()
	return &CPU{
		RSP:    BootStackTop,
		RFLAGS: RFLAGSReserved,
		CS:     cs,
		DS:     ds,
		ES:     ds,
		FS:     ds,
		GS:     ds,
		SS:     ds,
		TR:     bootTSS(),
		LDT:    noLDT(),
		GDT:    DescriptorTable{Base: GDTAddr, Limit: GDTEntries*8 - 1},
		// An empty IDT: an exception before the kernel installs its own
		// shuts the VM down with a triple fault instead of jumping into
		// whatever low memory holds.
		IDT: DescriptorTable{},
	}
}
