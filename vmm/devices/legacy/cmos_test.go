package legacy

import (
	"testing"
	"time"
)

// readCMOS selects reg through the index port and reads the data port.
func readCMOS(c *CMOS, reg byte) byte {
	c.Write(cmosIndex, []byte{reg})
	b := []byte{0}
	c.Read(cmosData, b)
	return b[0]
}

func TestCMOSTime(t *testing.T) {
	// A Tuesday (RTC day 3), given in a time zone other than UTC: the RTC
	// keeps UTC.
	at := time.Date(2087, time.December, 30, 21, 58, 9, 0, time.UTC)
	c := NewCMOS(func() time.Time { return at.In(time.FixedZone("UTC+5", 5*3600)) })
	for _, r := range []struct {
		name string
		reg  byte
		want byte
	}{
		{"seconds", RTC_SECONDS, 0x09},
		{"minutes", RTC_MINUTES, 0x58},
		{"hours", RTC_HOURS, 0x21},
		{"day of week", RTC_DAY_OF_WEEK, 0x03},
		{"day of month", RTC_DAY_OF_MONTH, 0x30},
		{"month", RTC_MONTH, 0x12},
		{"year", RTC_YEAR, 0x87},
		{"century", RTC_CENTURY, 0x20},
	} {
		if got := readCMOS(c, r.reg); got != r.want {
			t.Errorf("%s = %#02x, want %#02x", r.name, got, r.want)
		}
	}
}

func TestCMOSStatus(t *testing.T) {
	c := NewCMOS(nil)
	if a := readCMOS(c, RTC_REG_A); a&RTC_UIP != 0 {
		t.Errorf("register A = %#02x: update in progress", a)
	}
	if a := readCMOS(c, RTC_REG_A); a&RTC_RATE_SELECT == 0 {
		t.Errorf("register A = %#02x: no time base rate", a)
	}
	b := readCMOS(c, RTC_REG_B)
	if b&RTC_24H == 0 || b&RTC_DM_BINARY != 0 {
		t.Errorf("register B = %#02x, want 24-hour BCD", b)
	}
	if got := readCMOS(c, RTC_REG_C); got != 0 {
		t.Errorf("register C = %#02x, want 0", got)
	}
	if got := readCMOS(c, RTC_REG_D); got != RTC_VRT {
		t.Errorf("register D = %#02x, want RTC_VRT", got)
	}
}

// The clock is read on each access: a later read sees a later time.
func TestCMOSFollowsClock(t *testing.T) {
	at := time.Date(2024, time.March, 1, 0, 0, 59, 0, time.UTC)
	c := NewCMOS(func() time.Time { return at })
	if got := readCMOS(c, RTC_SECONDS); got != 0x59 {
		t.Fatalf("seconds = %#02x, want 0x59", got)
	}
	at = at.Add(time.Second)
	if got := readCMOS(c, RTC_SECONDS); got != 0x00 {
		t.Errorf("seconds = %#02x a second later, want 0x00", got)
	}
	if got := readCMOS(c, RTC_MINUTES); got != 0x01 {
		t.Errorf("minutes = %#02x a second later, want 0x01", got)
	}
}

// The index port's top bit masks NMIs; it does not select another register.
func TestCMOSIndexIgnoresNMIBit(t *testing.T) {
	c := NewCMOS(nil)
	if got := readCMOS(c, cmosNMIDisable|RTC_REG_D); got != RTC_VRT {
		t.Errorf("register D with the NMI bit = %#02x, want RTC_VRT", got)
	}
}

func TestCMOSWritesIgnored(t *testing.T) {
	at := time.Date(2024, time.March, 1, 12, 34, 56, 0, time.UTC)
	c := NewCMOS(func() time.Time { return at })
	for _, reg := range []byte{RTC_SECONDS, RTC_REG_B, RTC_REG_D} {
		before := readCMOS(c, reg)
		c.Write(cmosData, []byte{0x5a})
		if got := readCMOS(c, reg); got != before {
			t.Errorf("register %#02x = %#02x after a write, want %#02x", reg, got, before)
		}
	}
	// Unmodelled CMOS RAM reads as zero.
	c.Write(cmosData, []byte{0x5a})
	if got := readCMOS(c, 0x40); got != 0 {
		t.Errorf("CMOS RAM at 0x40 = %#02x, want 0", got)
	}
	b := []byte{0}
	c.Read(cmosIndex, b)
	if b[0] != 0xff {
		t.Errorf("index port reads %#02x, want 0xff", b[0])
	}
}

func TestBCD(t *testing.T) {
	for v, want := range map[int]byte{0: 0x00, 9: 0x09, 10: 0x10, 59: 0x59, 99: 0x99} {
		if got := bcd(v); got != want {
			t.Errorf("bcd(%d) = %#02x, want %#02x", v, got, want)
		}
	}
}
