package debugport

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/vmm/bus"
)

var _ bus.Device = (*Device)(nil)

type event struct {
	ev Event
	at time.Time
}

// recorder collects what a Device reports.
type recorder struct {
	events  []event
	exits   []uint32
	ignored []Access
}

func (r *recorder) callbacks() Callbacks {
	return Callbacks{
		Event:      func(ev Event, at time.Time) { r.events = append(r.events, event{ev, at}) },
		ExitStatus: func(s uint32) { r.exits = append(r.exits, s) },
		Ignored:    func(a Access) { r.ignored = append(r.ignored, a) },
	}
}

// fakeClock returns t0, t0+1s, t0+2s, ... on successive calls.
func fakeClock(t0 time.Time) func() time.Time {
	n := 0
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n-1) * time.Second)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestMagic(t *testing.T) {
	var r recorder
	d := New(r.callbacks(), nil)
	var b [regWidth]byte
	d.Read(RegMagic, b[:])
	if string(b[:]) != "TVSR" {
		t.Errorf("magic reads %q, want %q", b[:], "TVSR")
	}
	if got := binary.LittleEndian.Uint32(b[:]); got != MagicValue {
		t.Errorf("magic = %#x, want %#x", got, MagicValue)
	}
	if len(r.ignored) != 0 || d.IgnoredAccesses() != 0 {
		t.Errorf("magic read counted as ignored: %v", r.ignored)
	}
}

func TestEventsAreTimestamped(t *testing.T) {
	var r recorder
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := New(r.callbacks(), fakeClock(t0))
	d.Write(RegEvent, le32(uint32(EventInitStart)))
	d.Write(RegEvent, le32(uint32(EventCmdStart)))
	d.Write(RegEvent, le32(0x77)) // unknown codes are reported too
	want := []event{
		{EventInitStart, t0},
		{EventCmdStart, t0.Add(time.Second)},
		{Event(0x77), t0.Add(2 * time.Second)},
	}
	if len(r.events) != len(want) {
		t.Fatalf("events = %v, want %v", r.events, want)
	}
	for i := range want {
		if r.events[i].ev != want[i].ev || !r.events[i].at.Equal(want[i].at) {
			t.Errorf("event %d = %v at %v, want %v at %v", i, r.events[i].ev, r.events[i].at, want[i].ev, want[i].at)
		}
	}
	if len(r.exits) != 0 {
		t.Errorf("event writes reported exit statuses %v", r.exits)
	}
}

func TestExitStatus(t *testing.T) {
	var r recorder
	d := New(r.callbacks(), nil)
	d.Write(RegExitStatus, le32(128+9))
	if len(r.exits) != 1 || r.exits[0] != 137 {
		t.Errorf("exit statuses = %v, want [137]", r.exits)
	}
	if len(r.events) != 0 {
		t.Errorf("exit status write reported events %v", r.events)
	}
}

func TestIgnoredAccesses(t *testing.T) {
	var r recorder
	d := New(r.callbacks(), func() time.Time {
		t.Error("an ignored access read the clock")
		return time.Time{}
	})
	bad := []struct {
		a    Access
		data []byte
	}{
		{Access{Offset: RegMagic, Size: 1}, make([]byte, 1)},
		{Access{Offset: RegMagic, Size: 8}, make([]byte, 8)},
		{Access{Offset: RegEvent, Size: 4}, make([]byte, 4)},      // write-only
		{Access{Offset: RegExitStatus, Size: 4}, make([]byte, 4)}, // write-only
		{Access{Offset: 0xffc, Size: 4}, make([]byte, 4)},
		{Access{Offset: RegMagic, Size: 4, Write: true}, le32(1)}, // read-only
		{Access{Offset: RegEvent, Size: 2, Write: true}, []byte{1, 0}},
		{Access{Offset: RegEvent + 1, Size: 4, Write: true}, le32(1)},
		{Access{Offset: RegExitStatus, Size: 8, Write: true}, make([]byte, 8)},
		{Access{Offset: 0x10, Size: 4, Write: true}, le32(1)},
		{Access{Offset: RegEvent, Size: 0, Write: true}, nil},
	}
	for _, b := range bad {
		if b.a.Write {
			d.Write(b.a.Offset, b.data)
			continue
		}
		for i := range b.data {
			b.data[i] = 0xee
		}
		d.Read(b.a.Offset, b.data)
		for _, v := range b.data {
			if v != 0 {
				t.Errorf("ignored read %+v returned % x, want zeros", b.a, b.data)
				break
			}
		}
	}
	if got := d.IgnoredAccesses(); got != uint64(len(bad)) {
		t.Errorf("IgnoredAccesses = %d, want %d", got, len(bad))
	}
	if len(r.ignored) != len(bad) {
		t.Fatalf("Ignored called %d times, want %d", len(r.ignored), len(bad))
	}
	for i, b := range bad {
		if r.ignored[i] != b.a {
			t.Errorf("ignored access %d = %+v, want %+v", i, r.ignored[i], b.a)
		}
	}
	if len(r.events) != 0 || len(r.exits) != 0 {
		t.Errorf("ignored accesses reported events %v, exits %v", r.events, r.exits)
	}
}

func TestNilCallbacks(t *testing.T) {
	d := New(Callbacks{}, nil)
	d.Write(RegEvent, le32(uint32(EventInitStart)))
	d.Write(RegExitStatus, le32(0))
	d.Write(0x20, le32(0))
	if got := d.IgnoredAccesses(); got != 1 {
		t.Errorf("IgnoredAccesses = %d, want 1", got)
	}
}

// The device on an MMIO bus at its defined place, as the guest's init
// reaches it.
func TestOnBus(t *testing.T) {
	var r recorder
	var mmio bus.Bus
	if err := mmio.Register("debugport", Base, Size, New(r.callbacks(), nil)); err != nil {
		t.Fatal(err)
	}
	var b [regWidth]byte
	if err := mmio.Read(Base+RegMagic, b[:]); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(b[:]) != MagicValue {
		t.Errorf("magic on the bus = % x", b)
	}
	if err := mmio.Write(Base+RegExitStatus, le32(3)); err != nil {
		t.Fatal(err)
	}
	if len(r.exits) != 1 || r.exits[0] != 3 {
		t.Errorf("exit statuses = %v, want [3]", r.exits)
	}
}

func TestEventString(t *testing.T) {
	for ev, want := range map[Event]string{
		EventInitStart: "init-start",
		EventCmdStart:  "cmd-start",
		Event(0x99):    "event(0x99)",
	} {
		if got := ev.String(); got != want {
			t.Errorf("Event(%#x).String() = %q, want %q", uint32(ev), got, want)
		}
	}
}
