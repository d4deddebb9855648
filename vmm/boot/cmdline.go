package boot

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tracevisor/tracevisor/guestmem"
)

// CmdlineMaxSize is the largest kernel command line x86 Linux accepts,
// including the terminating NUL: COMMAND_LINE_SIZE in
// arch/x86/include/asm/setup.h. A bzImage may announce a smaller limit in
// its setup header (cmdline_size).
const CmdlineMaxSize = 2048

// ErrCmdlineTooLong is returned for a command line the kernel would
// truncate.
var ErrCmdlineTooLong = errors.New("kernel command line too long")

// ErrCmdlineNUL is returned for a command line with a NUL byte, which would
// silently cut it short.
var ErrCmdlineNUL = errors.New("kernel command line contains a NUL byte")

// checkCmdline checks that cmdline and its terminating NUL fit in max bytes.
func checkCmdline(cmdline string, max int) error {
	if strings.IndexByte(cmdline, 0) >= 0 {
		return ErrCmdlineNUL
	}
	if len(cmdline)+1 > max {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrCmdlineTooLong, len(cmdline), max-1)
	}
	return nil
}

// writeCmdline writes cmdline, NUL-terminated, at CmdlineAddr. The caller
// has checked it with checkCmdline.
func writeCmdline(mem *guestmem.Memory, cmdline string) error {
	buf := make([]byte, len(cmdline)+1)
	copy(buf, cmdline)
	return mem.WriteAt(buf, CmdlineAddr)
}
