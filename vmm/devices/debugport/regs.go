package debugport

import "fmt"

// The layout of the debug page, defined by
// guest-kernel/include/tracevisor_debug.h; TestHeaderMatches keeps these
// values equal to the header's.

const (
	// Base is the guest-physical address of the page (TV_DEBUG_BASE).
	Base uint64 = 0xd0000000
	// Size is the page's length in bytes (TV_DEBUG_SIZE).
	Size uint64 = 0x1000
)

// Register offsets within the page. Registers are 32-bit, little-endian and
// naturally aligned.
const (
	// RegMagic reads as MagicValue (TV_DEBUG_REG_MAGIC).
	RegMagic uint64 = 0x00
	// RegEvent takes an Event code, timestamped on arrival
	// (TV_DEBUG_REG_EVENT).
	RegEvent uint64 = 0x04
	// RegExitStatus takes the exit status of the command the guest's init
	// ran: 0-255 for a normal exit, 128+N when signal N ended it
	// (TV_DEBUG_REG_EXIT_STATUS).
	RegExitStatus uint64 = 0x08
)

// MagicValue is what RegMagic reads as: "TVSR" in little-endian byte order
// (TV_DEBUG_MAGIC_VALUE).
const MagicValue uint32 = 0x52535654

// regWidth is the width in bytes of every register.
const regWidth = 4

// Event is a code the guest writes to RegEvent.
type Event uint32

// Event codes.
const (
	// EventInitStart: init's first instruction ran
	// (TV_DEBUG_EVENT_INIT_START).
	EventInitStart Event = 0x1
	// EventCmdStart: init exec'd the command (TV_DEBUG_EVENT_CMD_START).
	EventCmdStart Event = 0x2
)

// String returns the event's name, or its code for one not defined here.
func (e Event) String() string {
	switch e {
	case EventInitStart:
		return "init-start"
	case EventCmdStart:
		return "cmd-start"
	}
	return fmt.Sprintf("event(%#x)", uint32(e))
}
