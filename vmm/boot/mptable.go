package boot

import (
	"errors"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// MaxCPUs is the largest number of CPUs Load describes. Each needs a 20-byte
// processor entry in the MP table, which must fit in the KiB at MPTableAddr;
// 32 keeps well inside it.
const MaxCPUs = 32

// ErrCPUCount is returned for a CPU count outside [1, MaxCPUs].
var ErrCPUCount = errors.New("unsupported number of CPUs")

// Intel MultiProcessor Specification 1.4 constants (chapter 4).
const (
	mpFloatingSignature = "_MP_"
	mpConfigSignature   = "PCMP"
	// mpSpecRev is the specification revision 1.4.
	mpSpecRev = 4

	// Configuration table entry types (table 4-3).
	mpEntryProcessor      = 0
	mpEntryBus            = 1
	mpEntryIOAPIC         = 2
	mpEntryIOInterrupt    = 3
	mpEntryLocalInterrupt = 4

	// Interrupt types (table 4-11).
	mpIntINT    = 0 // vectored interrupt, vector from the APIC redirection table
	mpIntNMI    = 1
	mpIntExtINT = 3 // vectored interrupt, vector from the 8259A

	// mpIntFlagsConform is polarity and trigger mode "conforms to the
	// specifications of the bus": for ISA, active high and edge triggered.
	mpIntFlagsConform = 0

	// Processor entry CPU flags.
	mpCPUEnabled = 1 << 0 // EN
	mpCPUBoot    = 1 << 1 // BP: the bootstrap processor

	// IOAPIC entry flags.
	mpIOAPICEnabled = 1 << 0 // EN

	// mpAllLocalAPICs as destination LAPIC ID means every local APIC.
	mpAllLocalAPICs = 0xff
)

// Values describing the virtual platform: KVM's in-kernel interrupt
// controllers.
const (
	// LAPICAddr is the local APICs' MMIO base (APIC_DEFAULT_PHYS_BASE).
	LAPICAddr uint32 = 0xfee0_0000
	// IOAPICAddr is the IOAPIC's MMIO base (IO_APIC_DEFAULT_PHYS_BASE).
	IOAPICAddr uint32 = 0xfec0_0000

	// lapicVersion is what KVM's local APIC version register reports in
	// its low byte: an integrated xAPIC.
	lapicVersion = 0x14
	// ioapicVersion is KVM's IOAPIC version (IOAPIC_VERSION_ID).
	ioapicVersion = 0x11

	// cpuSignature is family 6, model 0, stepping 0 in the CPUID leaf 1
	// EAX format; the kernel uses CPUID, not this.
	cpuSignature = 0x600
	// cpuFeatureFlags are CPUID leaf 1 EDX bits FPU (0) and APIC (9).
	cpuFeatureFlags = 1<<0 | 1<<9

	// isaBusID is the bus ID of the only bus, ISA.
	isaBusID = 0
	// isaIRQs is the number of ISA IRQs.
	isaIRQs = 16
)

// mpBusTypeISA is the ISA bus type string, space-padded to 6 bytes.
var mpBusTypeISA = [6]byte{'I', 'S', 'A', ' ', ' ', ' '}

// MP table OEM and product identification, space-padded.
var (
	mpOEMID     = [8]byte{'T', 'R', 'C', 'V', 'I', 'S', 'O', 'R'}
	mpProductID = [12]byte{'T', 'R', 'A', 'C', 'E', 'V', 'I', 'S', 'O', 'R', ' ', ' '}
)

// mpFloatingPointer mirrors the MP Floating Pointer Structure (MP spec
// 4.1, Linux struct mpf_intel).
type mpFloatingPointer struct {
	Signature              [4]byte // "_MP_"
	PhysicalAddressPointer uint32  // the configuration table
	Length                 uint8   // in 16-byte paragraphs: 1
	SpecRev                uint8   // 4 for version 1.4
	Checksum               uint8   // all bytes sum to 0
	FeatureByte1           uint8   // 0: a configuration table is present
	FeatureByte2           uint8   // bit 7 IMCRP clear: virtual wire mode
	FeatureBytes3To5       [3]uint8
}

// mpConfigTableHeader mirrors the MP Configuration Table Header (MP spec
// 4.2, Linux struct mpc_table).
type mpConfigTableHeader struct {
	Signature             [4]byte // "PCMP"
	BaseTableLength       uint16  // header and base entries, in bytes
	SpecRev               uint8
	Checksum              uint8 // header and base entries sum to 0
	OEMID                 [8]byte
	ProductID             [12]byte
	OEMTablePointer       uint32
	OEMTableSize          uint16
	EntryCount            uint16 // base entries (Linux: oemcount)
	AddressOfLocalAPIC    uint32
	ExtendedTableLength   uint16
	ExtendedTableChecksum uint8
	Reserved              uint8
}

// mpProcessorEntry mirrors a Processor Entry (MP spec 4.3.1, Linux struct
// mpc_cpu).
type mpProcessorEntry struct {
	EntryType        uint8 // mpEntryProcessor
	LocalAPICID      uint8
	LocalAPICVersion uint8
	CPUFlags         uint8 // mpCPUEnabled, mpCPUBoot
	CPUSignature     uint32
	FeatureFlags     uint32
	Reserved         [2]uint32
}

// mpBusEntry mirrors a Bus Entry (MP spec 4.3.2, Linux struct mpc_bus).
type mpBusEntry struct {
	EntryType     uint8 // mpEntryBus
	BusID         uint8
	BusTypeString [6]byte
}

// mpIOAPICEntry mirrors an I/O APIC Entry (MP spec 4.3.3, Linux struct
// mpc_ioapic).
type mpIOAPICEntry struct {
	EntryType     uint8 // mpEntryIOAPIC
	IOAPICID      uint8
	IOAPICVersion uint8
	IOAPICFlags   uint8 // mpIOAPICEnabled
	IOAPICAddress uint32
}

// mpIOInterruptEntry mirrors an I/O Interrupt Assignment Entry (MP spec
// 4.3.4, Linux struct mpc_intsrc).
type mpIOInterruptEntry struct {
	EntryType             uint8 // mpEntryIOInterrupt
	InterruptType         uint8
	IOInterruptFlag       uint16 // polarity (bits 1:0), trigger (3:2)
	SourceBusID           uint8
	SourceBusIRQ          uint8
	DestinationIOAPICID   uint8
	DestinationIOAPICINTI uint8 // INTIN# pin
}

// mpLocalInterruptEntry mirrors a Local Interrupt Assignment Entry (MP spec
// 4.3.5, Linux struct mpc_lintsrc).
type mpLocalInterruptEntry struct {
	EntryType                uint8 // mpEntryLocalInterrupt
	InterruptType            uint8
	LocalInterruptFlag       uint16
	SourceBusID              uint8
	SourceBusIRQ             uint8
	DestinationLocalAPICID   uint8 // mpAllLocalAPICs: every local APIC
	DestinationLocalAPICLINT uint8 // LINTIN# pin
}

// mpTable returns the MP floating pointer structure followed by the MP
// configuration table for ncpus CPUs, to be written at MPTableAddr:
//
//   - one processor entry per CPU, local APIC ID = index, CPU 0 the BSP;
//   - one ISA bus;
//   - one IOAPIC with ID ncpus (the first ID no CPU uses) at IOAPICAddr;
//   - ISA IRQ n to IOAPIC pin n for n in 0..15. This follows KVM's default
//     GSI routing (kvm_setup_default_irq_routing: GSI n drives IOAPIC pin
//     n, and the in-kernel PIT fires GSI 0), which the VMM keeps, and is
//     what Firecracker does. QEMU and SeaBIOS put IRQ 0 on pin 2, as PCs
//     do, only because QEMU installs its own routing; a VMM that does so
//     must change this table with it;
//   - ExtINT (the 8259A) on LINT0 and NMI on LINT1 of every local APIC, the
//     MP specification's default configuration (Linux itself only enables
//     ExtINT on the BSP).
func mpTable(ncpus int) ([]byte, error) {
	if ncpus < 1 || ncpus > MaxCPUs {
		return nil, fmt.Errorf("%w: %d, must be 1 to %d", ErrCPUCount, ncpus, MaxCPUs)
	}
	ioapicID := uint8(ncpus)

	var entries []byte
	count := 0
	add := func(e any) {
		entries = append(entries, encode(e)...)
		count++
	}
	for id := 0; id < ncpus; id++ {
		flags := uint8(mpCPUEnabled)
		if id == 0 {
			flags |= mpCPUBoot
		}
		add(&mpProcessorEntry{
			EntryType:        mpEntryProcessor,
			LocalAPICID:      uint8(id),
			LocalAPICVersion: lapicVersion,
			CPUFlags:         flags,
			CPUSignature:     cpuSignature,
			FeatureFlags:     cpuFeatureFlags,
		})
	}
	add(&mpBusEntry{EntryType: mpEntryBus, BusID: isaBusID, BusTypeString: mpBusTypeISA})
	add(&mpIOAPICEntry{
		EntryType:     mpEntryIOAPIC,
		IOAPICID:      ioapicID,
		IOAPICVersion: ioapicVersion,
		IOAPICFlags:   mpIOAPICEnabled,
		IOAPICAddress: IOAPICAddr,
	})
	for irq := uint8(0); irq < isaIRQs; irq++ {
		add(&mpIOInterruptEntry{
			EntryType:             mpEntryIOInterrupt,
			InterruptType:         mpIntINT,
			IOInterruptFlag:       mpIntFlagsConform,
			SourceBusID:           isaBusID,
			SourceBusIRQ:          irq,
			DestinationIOAPICID:   ioapicID,
			DestinationIOAPICINTI: irq,
		})
	}
	for lint, typ := range []uint8{mpIntExtINT, mpIntNMI} {
		add(&mpLocalInterruptEntry{
			EntryType:                mpEntryLocalInterrupt,
			InterruptType:            typ,
			LocalInterruptFlag:       mpIntFlagsConform,
			SourceBusID:              isaBusID,
			DestinationLocalAPICID:   mpAllLocalAPICs,
			DestinationLocalAPICLINT: uint8(lint),
		})
	}

	hdr := mpConfigTableHeader{
		Signature:          [4]byte([]byte(mpConfigSignature)),
		BaseTableLength:    uint16(mpConfigHeaderSize + len(entries)),
		SpecRev:            mpSpecRev,
		OEMID:              mpOEMID,
		ProductID:          mpProductID,
		EntryCount:         uint16(count),
		AddressOfLocalAPIC: LAPICAddr,
	}
	table := append(encode(&hdr), entries...)
	table[mpConfigChecksumOffset] = checksum(table)

	mpf := mpFloatingPointer{
		Signature:              [4]byte([]byte(mpFloatingSignature)),
		PhysicalAddressPointer: uint32(MPTableAddr + mpFloatingSize),
		Length:                 mpFloatingSize / 16,
		SpecRev:                mpSpecRev,
	}
	out := encode(&mpf)
	out[mpFloatingChecksumOffset] = checksum(out)
	out = append(out, table...)
	if uint64(len(out)) > MPTableSize {
		return nil, fmt.Errorf("%w: the MP table for %d CPUs is %d bytes, more than the %d reserved", ErrCPUCount, ncpus, len(out), MPTableSize)
	}
	return out, nil
}

// Sizes and checksum offsets of the MP structures.
const (
	mpFloatingSize           = 16
	mpFloatingChecksumOffset = 10
	mpConfigHeaderSize       = 44
	mpConfigChecksumOffset   = 7
)

// writeMPTable writes table, built by mpTable, at MPTableAddr, zeroing the
// rest of the reserved KiB.
func writeMPTable(mem *guestmem.Memory, table []byte) error {
	buf := make([]byte, MPTableSize)
	copy(buf, table)
	return mem.WriteAt(buf, MPTableAddr)
}
