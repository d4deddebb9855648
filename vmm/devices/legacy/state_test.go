package legacy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// dataByte reads the data port without selecting a register first.
func dataByte(c *CMOS) byte {
	b := []byte{0}
	c.Read(cmosData, b)
	return b[0]
}

// The index register survives a restore: the guest's next data-port read
// returns the register it selected before the snapshot.
func TestCMOSStateIndex(t *testing.T) {
	at := time.Date(2024, time.March, 1, 12, 34, 9, 0, time.UTC)
	clock := func() time.Time { return at }
	orig := NewCMOS(clock)
	orig.Write(cmosIndex, []byte{cmosNMIDisable | RTC_REG_D})
	st := orig.State()
	if st.Index != RTC_REG_D {
		t.Fatalf("State().Index = %#02x, want %#02x", st.Index, RTC_REG_D)
	}
	restored := NewCMOS(clock)
	if got := dataByte(restored); got != 0x09 {
		t.Fatalf("fresh CMOS data port = %#02x, want the seconds 0x09", got)
	}
	if err := restored.Restore(st); err != nil {
		t.Fatal(err)
	}
	if got, want := dataByte(restored), dataByte(orig); got != want || got != RTC_VRT {
		t.Errorf("restored CMOS data port = %#02x, original %#02x, want RTC_VRT", got, want)
	}
}

// The clock is carried as an offset from host time: restored later, the
// RTC reads the host's time then (plus the offset), not the time of the
// snapshot, and keeps running.
func TestCMOSStateClockContinues(t *testing.T) {
	snapAt := time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)
	orig := NewCMOS(func() time.Time { return snapAt })
	st := orig.State()

	at := snapAt.Add(36*time.Hour + 5*time.Minute) // restored a day and a half later
	restored := NewCMOS(func() time.Time { return at })
	if err := restored.Restore(st); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		reg  byte
		want byte
	}{
		{"day of month", RTC_DAY_OF_MONTH, 0x03},
		{"hours", RTC_HOURS, 0x00},
		{"minutes", RTC_MINUTES, 0x05},
	} {
		if got := readCMOS(restored, r.reg); got != r.want {
			t.Errorf("restored %s = %#02x, want %#02x (the host's time now)", r.name, got, r.want)
		}
	}
}

// A clock offset in the state moves the RTC by that much from the host's
// time, runs with it, and is reported again by State.
func TestCMOSStateClockOffset(t *testing.T) {
	at := time.Date(2024, time.February, 29, 23, 45, 0, 0, time.UTC)
	c := NewCMOS(func() time.Time { return at })
	st := CMOSState{Index: RTC_SECONDS, ClockOffsetNs: int64(90*time.Minute + 59*time.Second)}
	if err := c.Restore(st); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		reg  byte
		want byte
	}{
		{"seconds", RTC_SECONDS, 0x59},
		{"minutes", RTC_MINUTES, 0x15},
		{"hours", RTC_HOURS, 0x01},
		{"day of month", RTC_DAY_OF_MONTH, 0x01},
		{"month", RTC_MONTH, 0x03},
	} {
		if got := readCMOS(c, r.reg); got != r.want {
			t.Errorf("%s = %#02x with the offset, want %#02x", r.name, got, r.want)
		}
	}
	at = at.Add(time.Second)
	if got := readCMOS(c, RTC_SECONDS); got != 0x00 {
		t.Errorf("seconds = %#02x a second later, want 0x00", got)
	}
	if got := c.State(); got.ClockOffsetNs != st.ClockOffsetNs {
		t.Errorf("State().ClockOffsetNs = %d, want %d", got.ClockOffsetNs, st.ClockOffsetNs)
	}
}

// A CMOSState survives the snapshot's JSON encoding unchanged, decoded
// with unknown fields refused as the snapshot reader does.
func TestCMOSStateJSON(t *testing.T) {
	st := CMOSState{Index: RTC_CENTURY, ClockOffsetNs: -int64(MaxClockOffset)}
	enc, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back CMOSState
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	if back != st {
		t.Errorf("JSON round trip gave %+v, want %+v", back, st)
	}
	if again, _ := json.Marshal(back); !bytes.Equal(again, enc) {
		t.Errorf("re-encoded %s, first %s", again, enc)
	}
}

// Out-of-range states are refused, with an error naming the problem, and
// leave the CMOS as it was.
func TestCMOSRestoreRefusesBadStates(t *testing.T) {
	for _, c := range []struct {
		name string
		s    CMOSState
		want string
	}{
		{"index with the NMI bit", CMOSState{Index: 0x80}, "index 0x80"},
		{"index 0xff", CMOSState{Index: 0xff}, "index 0xff"},
		{"clock too far ahead", CMOSState{ClockOffsetNs: int64(MaxClockOffset + 1)}, "clock offset"},
		{"clock too far behind", CMOSState{ClockOffsetNs: -int64(MaxClockOffset) - 1}, "clock offset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cm := NewCMOS(nil)
			good := CMOSState{Index: RTC_REG_B, ClockOffsetNs: int64(time.Hour)}
			if err := cm.Restore(good); err != nil {
				t.Fatal(err)
			}
			err := cm.Restore(c.s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Restore(%+v) = %v, want an error about %q", c.s, err, c.want)
			}
			if got := cm.State(); got != good {
				t.Errorf("refused Restore changed the CMOS to %+v", got)
			}
		})
	}
}
