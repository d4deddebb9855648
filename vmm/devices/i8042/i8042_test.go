package i8042

import (
	"testing"

	"github.com/tracevisor/tracevisor/vmm/bus"
)

// machine registers a controller on a port bus as the VMM does.
type machine struct {
	t      *testing.T
	c      *Controller
	io     bus.Bus
	resets int
}

func newMachine(t *testing.T) *machine {
	m := &machine{t: t}
	c := New(func() { m.resets++ })
	m.c = c
	if err := m.io.Register("i8042-data", I8042_DATA_REG, 1, c.Data()); err != nil {
		t.Fatal(err)
	}
	if err := m.io.Register("i8042-cmd", I8042_COMMAND_REG, 1, c.Command()); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *machine) inb(port uint64) byte {
	m.t.Helper()
	var b [1]byte
	if err := m.io.Read(port, b[:]); err != nil {
		m.t.Fatal(err)
	}
	return b[0]
}

func (m *machine) outb(port uint64, v byte) {
	m.t.Helper()
	if err := m.io.Write(port, []byte{v}); err != nil {
		m.t.Fatal(err)
	}
}

// The reboot=k sequence of arch/x86/kernel/reboot.c: kb_wait, then the
// pulse-reset command.
func TestReset(t *testing.T) {
	m := newMachine(t)
	if st := m.inb(I8042_STATUS_REG); st&I8042_STR_IBF != 0 {
		t.Fatalf("status = %#02x: input buffer never drains", st)
	}
	m.outb(I8042_COMMAND_REG, I8042_CMD_PULSE_RESET)
	if m.resets != 1 {
		t.Errorf("reset called %d times, want 1", m.resets)
	}
}

func TestStatusEmptyAtRest(t *testing.T) {
	m := newMachine(t)
	if st := m.inb(I8042_STATUS_REG); st != 0 {
		t.Errorf("status = %#02x, want 0", st)
	}
}

func TestOtherCommandsIgnored(t *testing.T) {
	m := newMachine(t)
	for _, cmd := range []byte{0xa7, 0xa8, 0xad, 0xae, 0xd1, 0xff} {
		m.outb(I8042_COMMAND_REG, cmd)
	}
	m.outb(I8042_DATA_REG, 0xf2) // a keyboard command, nobody to take it
	if st := m.inb(I8042_STATUS_REG); st != 0 {
		t.Errorf("status = %#02x after ignored commands, want 0", st)
	}
	if m.resets != 0 {
		t.Errorf("reset called %d times, want 0", m.resets)
	}
}

func TestConfigByte(t *testing.T) {
	m := newMachine(t)
	readCTR := func() byte {
		t.Helper()
		m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_RCTR)
		if st := m.inb(I8042_STATUS_REG); st&I8042_STR_OBF == 0 {
			t.Fatalf("status = %#02x after RCTR, want OBF", st)
		}
		v := m.inb(I8042_DATA_REG)
		if st := m.inb(I8042_STATUS_REG); st&I8042_STR_OBF != 0 {
			t.Fatalf("status = %#02x after reading the reply, want OBF clear", st)
		}
		return v
	}
	if got := readCTR(); got != defaultCTR {
		t.Errorf("CTR = %#02x, want %#02x", got, defaultCTR)
	}
	const ctr = I8042_CTR_XLATE | I8042_CTR_KBDINT
	m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_WCTR)
	m.outb(I8042_DATA_REG, ctr)
	if got := readCTR(); got != ctr {
		t.Errorf("CTR = %#02x after WCTR, want %#02x", got, ctr)
	}
	// Data not preceded by WCTR goes nowhere.
	m.outb(I8042_DATA_REG, 0)
	if got := readCTR(); got != ctr {
		t.Errorf("CTR = %#02x after a stray data byte, want %#02x", got, ctr)
	}
}

func TestSelfTest(t *testing.T) {
	m := newMachine(t)
	m.outb(I8042_COMMAND_REG, I8042_CMD_CTL_TEST)
	if got := m.inb(I8042_DATA_REG); got != I8042_RET_CTL_TEST {
		t.Errorf("self-test reply = %#02x, want %#02x", got, I8042_RET_CTL_TEST)
	}
	if got := m.inb(I8042_DATA_REG); got != 0 {
		t.Errorf("second data read = %#02x, want 0 from the empty buffer", got)
	}
}
