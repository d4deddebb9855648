package probe

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tracevisor/tracevisor/wire"
)

// ErrClosed is returned by calls on a closed Host.
var ErrClosed = errors.New("probe: host closed")

// ErrGuestStopped is returned by calls that need the guest's driver once
// the guest will never run again (GuestStopped: it was fenced): no answer
// can come.
var ErrGuestStopped = errors.New("probe: the guest was fenced: its driver will never answer")

// GuestError is a command the guest's driver refused, with its errno. Its
// message says what the errno means for that command (the guest driver's
// and the kernel's reasons, guest-kernel/probe/*.c), not the errno's libc
// text: EILSEQ on an attach is an offset inside an instruction, not a
// "multibyte character".
type GuestError struct {
	Op    string
	Errno syscall.Errno
	cmd   wire.MsgType // the command refused; 0 when not known
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("probe: guest refused %s: %s (%s)", e.Op, explain(e.cmd, e.Errno), errnoName(e.Errno))
}

// Unwrap lets errors.Is match the errno (e.g. syscall.ENOENT).
func (e *GuestError) Unwrap() error { return e.Errno }

// refusal is the GuestError for a nonzero reply status to command cmd.
func refusal(op string, cmd wire.MsgType, status int32) *GuestError {
	return &GuestError{Op: op, Errno: syscall.Errno(-status), cmd: cmd}
}

// errnoName is the errno's symbol ("EILSEQ"), or its number.
func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// explain says why the guest answers cmd with errno: what the driver
// (probes.c, classes.c, inject.c, device.c) and the kernel calls it makes
// (register_kprobe, send_sig_info, kthread_create) return it for. An errno
// the driver does not use for cmd gets the errno's own text.
func explain(cmd wire.MsgType, e syscall.Errno) string {
	if s, ok := explanations[cmd][e]; ok {
		return s
	}
	if s, ok := explanations[0][e]; ok {
		return s
	}
	return e.Error()
}

var explanations = map[wire.MsgType]map[syscall.Errno]string{
	// Any command (device.c's tvp_command, and memory).
	0: {
		syscall.EBADMSG:    "the guest driver could not parse the command (a wire protocol mismatch)",
		syscall.EOPNOTSUPP: "the guest driver does not support this command or kind",
		syscall.ENOMEM:     "the guest kernel is out of memory",
	},
	wire.CmdAttach: {
		syscall.EILSEQ: "offset is not at an instruction boundary",
		syscall.ENOENT: "no such symbol in the guest kernel",
		syscall.EINVAL: "the guest rejects the probe: a field its driver refuses (a class the kind or symbol does not allow, " +
			"a kretprobe offset, a register or predicate out of range) or an address its kernel will not probe " +
			"(outside kernel text, notrace, on the kprobe blacklist)",
		syscall.EEXIST:     "the guest driver already holds a probe with this id",
		syscall.ENOSPC:     fmt.Sprintf("the guest driver already holds its %d probes", wire.MaxProbes),
		syscall.EOPNOTSUPP: "the guest driver does not know this probe kind or class",
	},
	wire.CmdDetach: {
		syscall.ENOENT: "the guest driver holds no probe with this id",
		syscall.EINVAL: "the guest driver rejects the detach command (a nonzero pad field)",
	},
	wire.CmdInject: {
		syscall.ESRCH: "no live user process has that name",
		syscall.EINVAL: fmt.Sprintf("the guest rejects the fault's arguments: a signal out of range or no process name, "+
			"a CPU that is not online, or seconds outside 1-%d", wire.InjectMaxSeconds),
		syscall.EOPNOTSUPP: "the guest kernel cannot cause this fault (an OOM kill needs CONFIG_MAGIC_SYSRQ)",
	},
}
