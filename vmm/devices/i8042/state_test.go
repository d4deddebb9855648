package i8042

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Scenarios drive a controller through its ports into the states a
// snapshot must carry.
var stateScenarios = []struct {
	name  string
	drive func(m *machine)
}{
	{"reset", func(m *machine) {}},
	{"reply waiting, WCTR pending", func(m *machine) {
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_WCTR)
		m.outb(I8042_DATA_REG, I8042_CTR_XLATE|I8042_CTR_KBDINT|I8042_CTR_AUXINT)
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_TEST)
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_WCTR)
	}},
	{"reply read", func(m *machine) {
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_WCTR)
		m.outb(I8042_DATA_REG, I8042_CTR_KBDDIS)
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_RCTR)
		m.inb(I8042_DATA_REG)
	}},
}

// observe reads the controller as a guest would: the status and the
// output buffer, then a data byte (a parameter if a command awaits one),
// the configuration byte, and a reset pulse.
func observe(m *machine) []byte {
	tr := []byte{m.inb(I8042_STATUS_REG), m.inb(I8042_DATA_REG), m.inb(I8042_STATUS_REG)}
	m.outb(I8042_DATA_REG, 0x21)
	m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_RCTR)
	tr = append(tr, m.inb(I8042_STATUS_REG), m.inb(I8042_DATA_REG))
	m.outb(I8042_COMMAND_REG, I8042_CMD_PULSE_RESET)
	return append(tr, byte(m.resets))
}

// A restored controller answers the guest as the one it was saved from:
// the same status, the same waiting reply, the pending WCTR taking the next
// data byte, the same configuration byte; and reset still works.
func TestStateRestore(t *testing.T) {
	for _, sc := range stateScenarios {
		t.Run(sc.name, func(t *testing.T) {
			orig := newMachine(t)
			sc.drive(orig)
			st := orig.c.State()
			restored := newMachine(t)
			if err := restored.c.Restore(st); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got := restored.c.State(); got != st {
				t.Fatalf("State after Restore = %+v, want %+v", got, st)
			}
			orig.resets = 0
			want := observe(orig)
			if sc.name != "reset" && bytes.Equal(observe(newMachine(t)), want) {
				t.Fatal("scenario reads like a fresh controller: it proves nothing")
			}
			if got := observe(restored); !bytes.Equal(got, want) {
				t.Errorf("restored controller reads %#v, want %#v", got, want)
			}
		})
	}
}

// The scenario with a reply waiting and WCTR pending leaves every field
// away from reset, so TestStateRestore covers each of them.
func TestStateDistinctive(t *testing.T) {
	m := newMachine(t)
	stateScenarios[1].drive(m)
	want := State{
		CTR:            I8042_CTR_XLATE | I8042_CTR_KBDINT | I8042_CTR_AUXINT,
		Out:            I8042_RET_CTL_TEST,
		OutFull:        true,
		PendingCommand: I8042_CMD_CTL_WCTR,
	}
	if got := m.c.State(); got != want {
		t.Errorf("State = %+v, want %+v", got, want)
	}
	// A reply already read is not part of the state.
	m.inb(I8042_DATA_REG)
	if got := m.c.State(); got.Out != 0 || got.OutFull {
		t.Errorf("State after reading the reply = %+v, want an empty output buffer", got)
	}
}

// A State survives the snapshot's JSON encoding unchanged, decoded with
// unknown fields refused as the snapshot reader does.
func TestStateJSON(t *testing.T) {
	for _, sc := range stateScenarios {
		m := newMachine(t)
		sc.drive(m)
		st := m.c.State()
		enc, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		dec := json.NewDecoder(bytes.NewReader(enc))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&back); err != nil {
			t.Fatalf("%s: decode %s: %v", sc.name, enc, err)
		}
		if back != st {
			t.Errorf("%s: JSON round trip gave %+v, want %+v", sc.name, back, st)
		}
		if again, _ := json.Marshal(back); !bytes.Equal(again, enc) {
			t.Errorf("%s: re-encoded %s, first %s", sc.name, again, enc)
		}
	}
}

// States no controller can be in are refused, with an error naming the
// problem, and leave the controller as it was.
func TestRestoreRefusesImpossibleStates(t *testing.T) {
	for _, c := range []struct {
		name string
		s    State
		want string
	}{
		{"self-test pending", State{CTR: defaultCTR, PendingCommand: I8042_CMD_CTL_TEST}, "command 0xaa pending"},
		{"reset pending", State{CTR: defaultCTR, PendingCommand: I8042_CMD_PULSE_RESET}, "command 0xfe pending"},
		{"byte in an empty buffer", State{CTR: defaultCTR, Out: I8042_RET_CTL_TEST}, "output buffer empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t)
			stateScenarios[1].drive(m)
			before := m.c.State()
			err := m.c.Restore(c.s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Restore(%+v) = %v, want an error about %q", c.s, err, c.want)
			}
			if got := m.c.State(); !reflect.DeepEqual(got, before) {
				t.Errorf("refused Restore changed the controller to %+v", got)
			}
		})
	}
}
