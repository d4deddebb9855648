package legacy

import (
	"fmt"
	"time"
)

// MaxClockOffset bounds CMOSState.ClockOffsetNs either way: an RTC a
// century away from the host's time is no clock a guest set.
const MaxClockOffset = 100 * 366 * 24 * time.Hour

// CMOSState is what the CMOS holds that the guest can observe, for a
// snapshot of a paused guest (issue 12). It is a plain value that encodes
// to JSON. The CMOS has no writable RAM (writes are ignored), so there are
// no NVRAM bytes to carry, and drives no interrupt line.
//
// The clock is carried as an offset from host time, not as the time the
// snapshot was taken: a restored guest's RTC reads the restoring host's
// current time plus the same offset, and keeps running, instead of
// restarting from the moment of the snapshot.
type CMOSState struct {
	// Index is the register the data port selects, 0 to 0x7f: the index
	// port's top bit masks NMIs and is not kept.
	Index byte `json:"index"`
	// ClockOffsetNs is the RTC's time minus the host's, in nanoseconds;
	// at most MaxClockOffset either way.
	ClockOffsetNs int64 `json:"clock_offset_ns"`
}

// State returns the CMOS's state.
func (c *CMOS) State() CMOSState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CMOSState{Index: c.index, ClockOffsetNs: int64(c.offset)}
}

// Validate reports whether s is a state the CMOS can be in: an index
// within CMOS RAM and a clock offset within MaxClockOffset.
func (s CMOSState) Validate() error {
	if s.Index&cmosNMIDisable != 0 {
		return fmt.Errorf("cmos: state: index %#02x beyond CMOS RAM's 128 bytes (the index port's top bit masks NMIs)", s.Index)
	}
	if off := time.Duration(s.ClockOffsetNs); off > MaxClockOffset || off < -MaxClockOffset {
		return fmt.Errorf("cmos: state: clock offset %v beyond ±%v", off, MaxClockOffset)
	}
	return nil
}

// Restore puts the CMOS in state s, which Validate must accept; a refused
// state leaves the CMOS unchanged.
func (c *CMOS) Restore(s CMOSState) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index, c.offset = s.Index, time.Duration(s.ClockOffsetNs)
	return nil
}
