package kvm

import "encoding/binary"

// Exit reasons (kvm_run.exit_reason), as in <linux/kvm.h>.
const (
	KVM_EXIT_UNKNOWN         = 0
	KVM_EXIT_EXCEPTION       = 1
	KVM_EXIT_IO              = 2
	KVM_EXIT_HYPERCALL       = 3
	KVM_EXIT_DEBUG           = 4
	KVM_EXIT_HLT             = 5
	KVM_EXIT_MMIO            = 6
	KVM_EXIT_IRQ_WINDOW_OPEN = 7
	KVM_EXIT_SHUTDOWN        = 8
	KVM_EXIT_FAIL_ENTRY      = 9
	KVM_EXIT_INTR            = 10
	KVM_EXIT_NMI             = 16
	KVM_EXIT_INTERNAL_ERROR  = 17
	KVM_EXIT_SYSTEM_EVENT    = 24
)

// KVM_EXIT_IO directions.
const (
	KVM_EXIT_IO_IN  = 0
	KVM_EXIT_IO_OUT = 1
)

// KVM_EXIT_INTERNAL_ERROR suberrors, and the flag saying the emulation
// failure carries the instruction bytes.
const (
	KVM_INTERNAL_ERROR_EMULATION                        = 1
	KVM_INTERNAL_ERROR_SIMUL_EX                         = 2
	KVM_INTERNAL_ERROR_DELIVERY_EV                      = 3
	KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON           = 4
	KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1 << 0
)

// KVM_EXIT_SYSTEM_EVENT types.
const (
	KVM_SYSTEM_EVENT_SHUTDOWN = 1
	KVM_SYSTEM_EVENT_RESET    = 2
	KVM_SYSTEM_EVENT_CRASH    = 3
)

// Offsets into struct kvm_run (x86-64). The exit union starts at 32.
const (
	runImmediateExit = 1
	runExitReason    = 8
	runIfFlag        = 13
	runUnion         = 32
)

// Run is a vCPU's mmapped struct kvm_run, read field by field with
// encoding/binary: no Go struct is laid over the shared page.
//
// The kernel writes it during KVM_RUN; the VMM reads it after KVM_RUN
// returns, on the vCPU's own thread. ImmediateExit is the one field other
// threads write (to kick the vCPU).
type Run struct{ b []byte }

// NewRun wraps bytes laid out as struct kvm_run; tests use it to build exits.
func NewRun(b []byte) Run { return Run{b: b} }

// Bytes returns the underlying page.
func (r Run) Bytes() []byte { return r.b }

func (r Run) u16(off int) uint16 { return binary.LittleEndian.Uint16(r.b[off:]) }
func (r Run) u32(off int) uint32 { return binary.LittleEndian.Uint32(r.b[off:]) }
func (r Run) u64(off int) uint64 { return binary.LittleEndian.Uint64(r.b[off:]) }

// ExitReason returns kvm_run.exit_reason.
func (r Run) ExitReason() uint32 { return r.u32(runExitReason) }

// SetImmediateExit sets kvm_run.immediate_exit: KVM_RUN then returns EINTR
// at once instead of entering the guest.
func (r Run) SetImmediateExit(on bool) {
	v := byte(0)
	if on {
		v = 1
	}
	r.b[runImmediateExit] = v
}

// IF reports kvm_run.if_flag: whether the guest had interrupts enabled.
func (r Run) IF() bool { return r.b[runIfFlag] != 0 }

// IO is the KVM_EXIT_IO part of kvm_run.
type IO struct {
	Out   bool
	Size  int    // bytes per access: 1, 2 or 4
	Port  uint16 // first port
	Count int    // accesses (string instructions repeat)
	// Data is Size*Count bytes inside the kvm_run page: the values written
	// for Out, the place to put the values read otherwise.
	Data []byte
}

// IO decodes a KVM_EXIT_IO exit. ok is false when the data offset the kernel
// gave does not fit the page (it always should).
func (r Run) IO() (io IO, ok bool) {
	io.Out = r.b[runUnion] == KVM_EXIT_IO_OUT
	io.Size = int(r.b[runUnion+1])
	io.Port = r.u16(runUnion + 2)
	io.Count = int(r.u32(runUnion + 4))
	off := r.u64(runUnion + 8)
	n := uint64(io.Size) * uint64(io.Count)
	if off > uint64(len(r.b)) || n > uint64(len(r.b))-off {
		return io, false
	}
	io.Data = r.b[off : off+n]
	return io, true
}

// MMIO is the KVM_EXIT_MMIO part of kvm_run.
type MMIO struct {
	Addr  uint64
	Write bool
	// Data is the access's Len bytes inside the kvm_run page.
	Data []byte
}

// MMIO decodes a KVM_EXIT_MMIO exit.
func (r Run) MMIO() (m MMIO, ok bool) {
	m.Addr = r.u64(runUnion)
	n := r.u32(runUnion + 16)
	m.Write = r.b[runUnion+20] != 0
	if n > 8 {
		return m, false
	}
	m.Data = r.b[runUnion+8 : runUnion+8+int(n)]
	return m, true
}

// Internal is the KVM_EXIT_INTERNAL_ERROR part of kvm_run.
type Internal struct {
	Suberror uint32
	Data     []uint64
}

// Internal decodes a KVM_EXIT_INTERNAL_ERROR exit (at most 16 data words).
func (r Run) Internal() Internal {
	in := Internal{Suberror: r.u32(runUnion)}
	n := int(r.u32(runUnion + 4))
	if n > 16 {
		n = 16
	}
	for i := 0; i < n; i++ {
		in.Data = append(in.Data, r.u64(runUnion+8+8*i))
	}
	return in
}

// EmulationBytes returns the instruction bytes an emulation-failure exit
// carries, when the kernel included them. The layout is struct kvm_run's
// emulation_failure: data[0] = flags, then a u8 insn_size immediately
// followed by insn_bytes[15] (16 bytes: data[1] and data[2]).
func (in Internal) EmulationBytes() ([]byte, bool) {
	if in.Suberror != KVM_INTERNAL_ERROR_EMULATION || len(in.Data) < 3 ||
		in.Data[0]&KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES == 0 {
		return nil, false
	}
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[0:], in.Data[1])
	binary.LittleEndian.PutUint64(raw[8:], in.Data[2])
	n := int(raw[0])
	if n > 15 {
		n = 15
	}
	return append([]byte(nil), raw[1:1+n]...), true
}

// SystemEventType returns the type of a KVM_EXIT_SYSTEM_EVENT exit.
func (r Run) SystemEventType() uint32 { return r.u32(runUnion) }

// FailEntryReason returns hardware_entry_failure_reason of KVM_EXIT_FAIL_ENTRY.
func (r Run) FailEntryReason() uint64 { return r.u64(runUnion) }
