package vmm

import (
	"fmt"

	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// Instruction bytes the emulated profile knows how to get past when the
// host's emulator cannot execute them.
const (
	opINT3  = 0xCC // breakpoint: reflected into the guest as #BP
	opFWAIT = 0x9B // x87 wait: a no-op without pending x87 exceptions

	vectorBP = 3 // #BP
)

// stepKind is what the vCPU loop does after an exit.
type stepKind int

const (
	stepContinue  stepKind = iota // re-enter the guest
	stepSkip                      // RIP += skip, then re-enter
	stepReflectBP                 // RIP += 1, queue #BP, then re-enter
	stepStop                      // end the run with ending
)

// step is handleExit's verdict.
type step struct {
	kind   stepKind
	skip   int
	ending Ending
}

// exitEnv is what handling an exit needs from the machine; tests fake it.
type exitEnv interface {
	// PIO performs a port I/O access (Data filled for reads).
	PIO(port uint16, data []byte, write bool)
	// MMIO performs an MMIO access.
	MMIO(addr uint64, data []byte, write bool)
	// RIP returns the vCPU's instruction pointer.
	RIP() (uint64, error)
	// InsnAt returns up to 15 instruction bytes at a guest-virtual address.
	InsnAt(rip uint64) []byte
	// Symbol names a guest kernel address ("" when unknown).
	Symbol(addr uint64) string
}

// handleExit decides what one guest exit means. It performs device accesses
// through env but changes no vCPU state itself: the loop applies the step.
func handleExit(run kvm.Run, env exitEnv, profile Profile) step {
	switch r := run.ExitReason(); r {
	case kvm.KVM_EXIT_IO:
		io, ok := run.IO()
		if !ok {
			return stop(EndInternalError, "KVM_EXIT_IO with a data offset outside kvm_run")
		}
		for i := 0; i < io.Count; i++ {
			env.PIO(io.Port, io.Data[i*io.Size:(i+1)*io.Size], io.Out)
		}
		return step{kind: stepContinue}
	case kvm.KVM_EXIT_MMIO:
		m, ok := run.MMIO()
		if !ok {
			return stop(EndInternalError, "KVM_EXIT_MMIO longer than 8 bytes")
		}
		env.MMIO(m.Addr, m.Data, m.Write)
		return step{kind: stepContinue}
	case kvm.KVM_EXIT_INTR:
		return step{kind: stepContinue}
	case kvm.KVM_EXIT_HLT:
		// Only seen without an in-kernel irqchip: a halt with interrupts
		// off can never end.
		if !run.IF() {
			return stop(EndPoweroff, "guest halted with interrupts disabled")
		}
		return step{kind: stepContinue}
	case kvm.KVM_EXIT_SHUTDOWN:
		return stop(EndTripleFault, "guest triple fault (KVM_EXIT_SHUTDOWN)"+where(env))
	case kvm.KVM_EXIT_SYSTEM_EVENT:
		switch t := run.SystemEventType(); t {
		case kvm.KVM_SYSTEM_EVENT_SHUTDOWN:
			return stop(EndPoweroff, "guest powered off")
		case kvm.KVM_SYSTEM_EVENT_RESET:
			return stop(EndReset, "guest reset")
		case kvm.KVM_SYSTEM_EVENT_CRASH:
			return stop(EndPanic, "guest crashed (KVM_SYSTEM_EVENT_CRASH)")
		default:
			return stop(EndInternalError, fmt.Sprintf("unknown KVM system event %d", t))
		}
	case kvm.KVM_EXIT_FAIL_ENTRY:
		return stop(EndInternalError, fmt.Sprintf("KVM could not enter the guest (hardware entry failure reason %#x)", run.FailEntryReason()))
	case kvm.KVM_EXIT_INTERNAL_ERROR:
		return internalError(run.Internal(), env, profile)
	default:
		return stop(EndInternalError, fmt.Sprintf("unexpected KVM exit reason %d", r)+where(env))
	}
}

// internalError handles KVM_EXIT_INTERNAL_ERROR. On the emulated profile an
// emulation failure on int3 is reflected to the guest as #BP (kprobes and
// the kernel's int3 self-test depend on it) and fwait is skipped; any other
// instruction, and every failure on hardware KVM, stops the run with the
// RIP, the kernel symbol and the instruction bytes.
func internalError(in kvm.Internal, env exitEnv, profile Profile) step {
	if in.Suberror != kvm.KVM_INTERNAL_ERROR_EMULATION {
		return stop(EndInternalError, fmt.Sprintf("KVM internal error, suberror %d, data %#x", in.Suberror, in.Data)+where(env))
	}
	rip, err := env.RIP()
	if err != nil {
		return stop(EndInternalError, "emulation failure; reading RIP: "+err.Error())
	}
	insn, ok := in.EmulationBytes()
	if !ok || len(insn) == 0 {
		insn = env.InsnAt(rip)
	}
	if profile == ProfileEmulated && len(insn) > 0 {
		switch insn[0] {
		case opINT3:
			return step{kind: stepReflectBP}
		case opFWAIT:
			return step{kind: stepSkip, skip: 1}
		}
	}
	return stop(EndEmulationFailure, fmt.Sprintf("host cannot execute guest instruction at RIP %#x%s: bytes % x",
		rip, symbolSuffix(env, rip), insn))
}

func stop(kind EndingKind, reason string) step {
	return step{kind: stepStop, ending: Ending{Kind: kind, Reason: reason}}
}

// where describes the vCPU's RIP for a stop reason.
func where(env exitEnv) string {
	rip, err := env.RIP()
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" at RIP %#x%s", rip, symbolSuffix(env, rip))
}

func symbolSuffix(env exitEnv, rip uint64) string {
	if s := env.Symbol(rip); s != "" {
		return " (" + s + ")"
	}
	return ""
}
