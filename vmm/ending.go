package vmm

import "fmt"

// EndingKind classifies how a guest run ended.
type EndingKind int

// The ways a run ends. Each has its own process exit code (ExitCode).
const (
	// EndPoweroff: the guest halted for good (poweroff or halt).
	EndPoweroff EndingKind = iota + 1
	// EndReset: the guest asked for a reset (i8042 pulse, reboot).
	EndReset
	// EndTripleFault: the vCPU shut down (KVM_EXIT_SHUTDOWN).
	EndTripleFault
	// EndPanic: the guest kernel panicked.
	EndPanic
	// EndEmulationFailure: the host could not execute a guest instruction.
	EndEmulationFailure
	// EndInternalError: KVM or the VMM failed.
	EndInternalError
	// EndStopped: the host asked the VM to stop.
	EndStopped
	// EndFenced: the VM was fenced (its vCPUs stopped for good, see
	// Machine.Fence), then stopped from the host.
	EndFenced
)

// Exit codes of `vmm run` per ending (sysexits-style, above the range a
// command's own status plus 128+signal normally uses for the commands we
// run, and distinct from each other).
const (
	ExitPoweroff         = 0
	ExitReset            = 80
	ExitTripleFault      = 81
	ExitPanic            = 82
	ExitEmulationFailure = 83
	ExitInternalError    = 84
	ExitStopped          = 85
	ExitFenced           = 86
)

// Ending is how a run ended.
type Ending struct {
	Kind EndingKind
	// Reason is one line for the user.
	Reason string
	// Status is the exit status of the command the guest's init ran, when
	// init reported one before the guest stopped.
	Status *int
}

// ExitCode is the process exit code for e: the command's status when the
// guest powered off after reporting one, otherwise the ending's own code.
func (e Ending) ExitCode() int {
	switch e.Kind {
	case EndPoweroff:
		if e.Status != nil {
			return *e.Status
		}
		return ExitPoweroff
	case EndReset:
		return ExitReset
	case EndTripleFault:
		return ExitTripleFault
	case EndPanic:
		return ExitPanic
	case EndEmulationFailure:
		return ExitEmulationFailure
	case EndStopped:
		return ExitStopped
	case EndFenced:
		return ExitFenced
	}
	return ExitInternalError
}

func (e Ending) String() string {
	s := e.Reason
	if e.Status != nil {
		s += fmt.Sprintf(" (command exit status %d)", *e.Status)
	}
	return s
}
