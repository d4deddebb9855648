package boot

import (
	"encoding/binary"
	"fmt"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Segment descriptor bit positions (Intel SDM vol. 3A, figure 3-8).
const (
	descBaseLowShift = 16 // base bits 23:0
	descTypeShift    = 40
	descSShift       = 44
	descDPLShift     = 45
	descPShift       = 47
	descLimitHiShift = 48 // limit bits 19:16
	descAVLShift     = 52
	descLShift       = 53
	descDBShift      = 54
	descGShift       = 55
	descBaseHiShift  = 56 // base bits 31:24
	granularityLog   = 12 // G=1: the limit counts 4 KiB units
)

// Descriptor returns s encoded as an 8-byte GDT descriptor. For a system
// segment in long mode (TSS, LDT) the descriptor is 16 bytes; the second
// half, holding base bits 63:32, is SystemDescriptorHigh.
func (s Segment) Descriptor() uint64 {
	limit := uint64(s.Limit)
	if s.G {
		limit >>= granularityLog
	}
	b := func(v bool) uint64 {
		if v {
			return 1
		}
		return 0
	}
	return limit&0xffff |
		(s.Base&0xff_ffff)<<descBaseLowShift |
		uint64(s.Type&0xf)<<descTypeShift |
		b(s.S)<<descSShift |
		uint64(s.DPL&3)<<descDPLShift |
		b(s.Present)<<descPShift |
		(limit>>16&0xf)<<descLimitHiShift |
		b(s.AVL)<<descAVLShift |
		b(s.L)<<descLShift |
		b(s.DB)<<descDBShift |
		b(s.G)<<descGShift |
		(s.Base>>24&0xff)<<descBaseHiShift
}

// SystemDescriptorHigh returns the upper 8 bytes of s's 16-byte long-mode
// system descriptor: base bits 63:32.
func (s Segment) SystemDescriptorHigh() uint64 { return s.Base >> 32 }

// writeGDT writes the boot GDT that cpu's segment registers were loaded
// from: each register's descriptor at its selector's slot. In long mode the
// TSS descriptor is 16 bytes.
func writeGDT(mem *guestmem.Memory, cpu *CPU) error {
	var gdt [GDTEntries * 8]byte
	put := func(sel uint16, v uint64) error {
		i := int(sel >> 3)
		if i == 0 || i >= GDTEntries {
			return fmt.Errorf("selector %#x outside the boot GDT", sel)
		}
		binary.LittleEndian.PutUint64(gdt[i*8:], v)
		return nil
	}
	for _, s := range []Segment{cpu.CS, cpu.DS, cpu.ES, cpu.FS, cpu.GS, cpu.SS, cpu.TR} {
		if err := put(s.Selector, s.Descriptor()); err != nil {
			return err
		}
	}
	if cpu.EFER&EFERLMA != 0 {
		if err := put(cpu.TR.Selector+8, cpu.TR.SystemDescriptorHigh()); err != nil {
			return err
		}
	}
	return mem.WriteAt(gdt[:], cpu.GDT.Base)
}
