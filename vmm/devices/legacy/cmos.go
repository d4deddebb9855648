package legacy

import (
	"sync"
	"time"
)

// The CMOS/RTC's ports: an index register, then a data register through
// which the indexed register is accessed (Linux's RTC_PORT(0) and
// RTC_PORT(1)). Register a CMOS at CMOSBase for CMOSPortCount ports.
const (
	// CMOSBase is the index port, RTC_PORT(0).
	CMOSBase = 0x70
	// CMOSPortCount is how many ports the CMOS decodes.
	CMOSPortCount = 2
)

// Port offsets from CMOSBase.
const (
	cmosIndex = 0
	cmosData  = 1
)

// cmosNMIDisable is the index port's top bit, which on a PC masks NMIs
// rather than selecting a register.
const cmosNMIDisable = 0x80

// RTC registers, as in Linux's include/linux/mc146818rtc.h.
const (
	// RTC_SECONDS is the seconds register.
	RTC_SECONDS = 0x00
	// RTC_MINUTES is the minutes register.
	RTC_MINUTES = 0x02
	// RTC_HOURS is the hours register.
	RTC_HOURS = 0x04
	// RTC_DAY_OF_WEEK is the day of the week, 1 for Sunday.
	RTC_DAY_OF_WEEK = 0x06
	// RTC_DAY_OF_MONTH is the day of the month.
	RTC_DAY_OF_MONTH = 0x07
	// RTC_MONTH is the month, 1 for January.
	RTC_MONTH = 0x08
	// RTC_YEAR is the year within the century.
	RTC_YEAR = 0x09
	// RTC_REG_A is status register A, RTC_FREQ_SELECT.
	RTC_REG_A = 0x0a
	// RTC_REG_B is status register B, RTC_CONTROL.
	RTC_REG_B = 0x0b
	// RTC_REG_C is status register C, RTC_INTR_FLAGS.
	RTC_REG_C = 0x0c
	// RTC_REG_D is status register D, RTC_VALID.
	RTC_REG_D = 0x0d
	// RTC_CENTURY is the century register PC firmware conventionally keeps
	// at this index and ACPI's FADT points to; Linux has no name for it.
	RTC_CENTURY = 0x32
)

// Status register bits, as in Linux's include/linux/mc146818rtc.h.
const (
	// RTC_UIP (register A) is set while the time is being updated.
	RTC_UIP = 0x80
	// RTC_REF_CLCK_32KHZ (register A) selects the 32.768 kHz time base.
	RTC_REF_CLCK_32KHZ = 0x20
	// RTC_RATE_SELECT (register A) masks the periodic interrupt rate.
	RTC_RATE_SELECT = 0x0f
	// RTC_DM_BINARY (register B) selects binary rather than BCD values.
	RTC_DM_BINARY = 0x04
	// RTC_24H (register B) selects 24-hour mode.
	RTC_24H = 0x02
	// RTC_VRT (register D) reports valid RAM and time.
	RTC_VRT = 0x80
)

// rtcRate1024Hz is register A's rate selection after PC firmware set-up.
const rtcRate1024Hz = 0x06

// CMOS is a read-only MC146818 real-time clock reporting the host's time in
// UTC, plus a fixed offset (zero but after a restore, see CMOSState): BCD
// values, 24-hour mode, never mid-update. Writes to its registers are
// ignored and the rest of CMOS RAM reads as zero. It implements bus.Device
// and is safe for concurrent use.
type CMOS struct {
	now func() time.Time

	mu     sync.Mutex
	index  byte
	offset time.Duration // the RTC's time minus the host's
}

// NewCMOS returns a clock that reads the time from now; nil means time.Now.
func NewCMOS(now func() time.Time) *CMOS {
	if now == nil {
		now = time.Now
	}
	return &CMOS{now: now}
}

// Read implements bus.Device. The index port reads as 0xff (it is
// write-only); the data port reads the selected register.
func (c *CMOS) Read(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range data {
		switch offset + uint64(i) {
		case cmosData:
			data[i] = c.register(c.index)
		default:
			data[i] = 0xff
		}
	}
}

// Write implements bus.Device. A write to the index port selects a register;
// writes to the data port are ignored.
func (c *CMOS) Write(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, v := range data {
		if offset+uint64(i) == cmosIndex {
			c.index = v &^ cmosNMIDisable
		}
	}
}

// register returns the value of RTC register reg.
func (c *CMOS) register(reg byte) byte {
	switch reg {
	case RTC_REG_A:
		return RTC_REF_CLCK_32KHZ | rtcRate1024Hz // RTC_UIP clear
	case RTC_REG_B:
		return RTC_24H // RTC_DM_BINARY clear: BCD
	case RTC_REG_C:
		return 0
	case RTC_REG_D:
		return RTC_VRT
	}
	t := c.now().Add(c.offset).UTC()
	switch reg {
	case RTC_SECONDS:
		return bcd(t.Second())
	case RTC_MINUTES:
		return bcd(t.Minute())
	case RTC_HOURS:
		return bcd(t.Hour())
	case RTC_DAY_OF_WEEK:
		return bcd(int(t.Weekday()) + 1)
	case RTC_DAY_OF_MONTH:
		return bcd(t.Day())
	case RTC_MONTH:
		return bcd(int(t.Month()))
	case RTC_YEAR:
		return bcd(t.Year() % 100)
	case RTC_CENTURY:
		return bcd(t.Year() / 100 % 100)
	}
	return 0
}

// bcd encodes v, 0 to 99, in binary-coded decimal.
func bcd(v int) byte {
	return byte(v/10<<4 | v%10)
}
