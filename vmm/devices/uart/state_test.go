package uart

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Scenarios drive a UART, through its registers and host input, into the
// states a snapshot must carry.
var stateScenarios = []struct {
	name  string
	drive func(h *harness)
}{
	{"reset", func(h *harness) {}},
	{"distinctive", driveDistinctive},
	{"DLAB set", func(h *harness) {
		h.outb(UART_LCR, UART_LCR_DLAB|UART_LCR_WLEN8)
		h.outb(UART_DLL, 0x01)
		h.outb(UART_DLM, 0x80)
	}},
	{"loopback with data", func(h *harness) {
		h.outb(UART_IER, UART_IER_RDI)
		h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_OUT2|UART_MCR_OUT1)
		h.outb(UART_TX, 'L')
	}},
	{"16450 mode overrun", func(h *harness) {
		h.outb(UART_IER, UART_IER_RLSI|UART_IER_RDI)
		h.outb(UART_MCR, UART_MCR_LOOP)
		h.outb(UART_TX, '1')
		h.outb(UART_TX, '2') // overwrites '1', sets OE
		h.outb(UART_MCR, UART_MCR_OUT2)
	}},
	{"THR-empty pending", func(h *harness) {
		h.outb(UART_MCR, UART_MCR_OUT2)
		h.outb(UART_IER, UART_IER_THRI)
	}},
}

// driveDistinctive sets every field of State away from its reset value,
// with the receive FIFO's contents wrapped around the end of its ring.
func driveDistinctive(h *harness) {
	h.outb(UART_LCR, UART_LCR_DLAB)
	h.outb(UART_DLL, 0x03)
	h.outb(UART_DLM, 0x01)
	h.outb(UART_LCR, 0x1b) // 8 bits, even parity, DLAB clear
	h.outb(UART_IER, UART_IER_ALL_INTR)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_OUT1|UART_MCR_RTS)
	for c := byte('a'); c <= 'q'; c++ { // one more than fits: overrun
		h.outb(UART_TX, c)
	}
	h.outb(UART_MCR, UART_MCR_OUT2|UART_MCR_DTR) // leaves loopback: MSR deltas
	h.outb(UART_SCR, 0xa5)
	for range 3 {
		h.inb(UART_RX)
	}
	if n := h.u.Input([]byte("XYZ")); n != 3 {
		h.t.Fatalf("Input took %d bytes, want 3", n)
	}
}

// observe reads every register the way a guest would, drains the receiver,
// transmits a byte and reads what follows, and returns what it read. Both
// sides of a comparison go through the same accesses, side effects
// included.
func observe(h *harness) []byte {
	var tr []byte
	for _, reg := range []uint64{UART_IIR, UART_LSR, UART_IIR, UART_MSR, UART_MSR, UART_LCR, UART_MCR, UART_SCR, UART_RX, UART_IER} {
		tr = append(tr, h.inb(reg))
	}
	lcr := h.inb(UART_LCR)
	h.outb(UART_LCR, lcr|UART_LCR_DLAB)
	tr = append(tr, h.inb(UART_DLL), h.inb(UART_DLM))
	h.outb(UART_LCR, lcr&^UART_LCR_DLAB)
	tr = append(tr, h.inb(UART_IER))
	for range FIFOSize + 1 {
		tr = append(tr, h.inb(UART_LSR), h.inb(UART_RX))
	}
	tr = append(tr, h.inb(UART_IIR))
	h.outb(UART_TX, 'Z')
	tr = append(tr, h.inb(UART_IIR), h.inb(UART_LSR), h.inb(UART_RX), h.inb(UART_IIR))
	return tr
}

// The guest cannot tell a restored UART from the one it was saved from:
// every register reads the same, received bytes come out in order, a byte
// written after restore is transmitted, and the interrupt line is at the
// saved level and then moves as the original's does.
func TestStateRestore(t *testing.T) {
	for _, sc := range stateScenarios {
		t.Run(sc.name, func(t *testing.T) {
			orig := newHarness(t)
			sc.drive(orig)
			st := orig.u.State()

			restored := newHarness(t)
			if err := restored.u.Restore(st); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if orig.level() {
				restored.expectIRQs(true)
			} else {
				restored.expectIRQs()
			}
			if got := restored.u.State(); !reflect.DeepEqual(got, st) {
				t.Fatalf("State after Restore = %+v, want %+v", got, st)
			}

			orig.irqs, restored.irqs = nil, nil
			origOut := orig.out.Len()
			want := observe(orig)
			if sc.name != "reset" && bytes.Equal(observe(newHarness(t)), want) {
				t.Fatalf("scenario reads like a fresh UART: it proves nothing")
			}
			if got := observe(restored); !bytes.Equal(got, want) {
				t.Errorf("restored UART reads\n%q\nwant\n%q", got, want)
			}
			if !reflect.DeepEqual(restored.irqs, orig.irqs) {
				t.Errorf("restored UART's line moved %v, the original's %v", restored.irqs, orig.irqs)
			}
			if got, want := restored.out.String(), orig.out.String()[origOut:]; got != want {
				t.Errorf("restored UART transmitted %q, the original %q", got, want)
			}
		})
	}
}

// The distinctive scenario leaves no field at its reset value, so
// TestStateRestore covers each of them.
func TestStateDistinctive(t *testing.T) {
	h := newHarness(t)
	driveDistinctive(h)
	got := reflect.ValueOf(h.u.State())
	reset := reflect.ValueOf(New(nil, nil).State())
	for i := range got.NumField() {
		if reflect.DeepEqual(got.Field(i).Interface(), reset.Field(i).Interface()) {
			t.Errorf("%s = %v, as at reset", got.Type().Field(i).Name, got.Field(i).Interface())
		}
	}
	// The FIFO's ring had wrapped: State lists it oldest first.
	if rx := h.u.State().RX; string(rx) != "defghijklmnopXYZ" {
		t.Errorf("RX = %q, want %q", rx, "defghijklmnopXYZ")
	}
}

// A State survives the snapshot's JSON encoding unchanged, and the
// encoding decodes with unknown fields refused, as the snapshot reader
// does.
func TestStateJSON(t *testing.T) {
	for _, sc := range stateScenarios {
		h := newHarness(t)
		sc.drive(h)
		st := h.u.State()
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
		if !reflect.DeepEqual(back, st) {
			t.Errorf("%s: JSON round trip gave %+v, want %+v", sc.name, back, st)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(again, enc) {
			t.Errorf("%s: re-encoded %s, first %s", sc.name, again, enc)
		}
	}
}

// States no UART can be in are refused, with an error naming the problem,
// and leave the UART as it was.
func TestRestoreRefusesImpossibleStates(t *testing.T) {
	live := State{IER: UART_IER_RDI, MCR: UART_MCR_OUT2, RX: []byte("r"), IRQ: true}
	for _, c := range []struct {
		name   string
		modify func(s *State)
		want   string
	}{
		{"IER bit 4", func(s *State) { s.IER |= 0x10 }, "IER"},
		{"MCR bit 5", func(s *State) { s.MCR |= 0x20 }, "MCR"},
		{"LSR THRE as an error", func(s *State) { s.LSRErrors = UART_LSR_THRE }, "LSR"},
		{"MSR status as a delta", func(s *State) { s.MSRDelta = UART_MSR_CTS }, "MSR"},
		{"THRI pending but disabled", func(s *State) { s.THRIPending = true }, "THR-empty"},
		{"FIFO overfull", func(s *State) { s.FIFOEnabled, s.RX = true, make([]byte, FIFOSize+1) }, "receiver holds 16"},
		{"16450 holding two bytes", func(s *State) { s.RX = []byte("ab") }, "receiver holds 1"},
		{"line low with an interrupt due", func(s *State) { s.IRQ = false }, "interrupt line false"},
		{"line high with nothing pending", func(s *State) { s.RX = nil }, "interrupt line true"},
		{"line high in loopback", func(s *State) { s.MCR |= UART_MCR_LOOP }, "interrupt line true"},
		{"line high with OUT2 clear", func(s *State) { s.MCR = 0 }, "interrupt line true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := live.Validate(); err != nil {
				t.Fatalf("base state refused: %v", err)
			}
			s := live
			s.RX = bytes.Clone(live.RX)
			c.modify(&s)

			h := newHarness(t)
			driveDistinctive(h)
			before := h.u.State()
			h.irqs = nil
			err := h.u.Restore(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Restore(%+v) = %v, want an error about %q", s, err, c.want)
			}
			if got := h.u.State(); !reflect.DeepEqual(got, before) {
				t.Errorf("refused Restore changed the UART to %+v", got)
			}
			h.expectIRQs()
		})
	}
}

// Restoring a quiet state into a UART whose line is high lowers the line.
func TestRestoreLowersLine(t *testing.T) {
	h := newHarness(t)
	driveDistinctive(h)
	if !h.level() {
		t.Fatal("distinctive scenario left the line low")
	}
	h.irqs = nil
	if err := h.u.Restore(New(nil, nil).State()); err != nil {
		t.Fatal(err)
	}
	h.expectIRQs(false)
	if iir := h.inb(UART_IIR); iir != UART_IIR_NO_INT {
		t.Errorf("IIR = %#02x after restoring a reset state, want %#02x", iir, UART_IIR_NO_INT)
	}
}

// Host input waiting for room in the receiver is woken when a restore
// empties it, rather than when the guest next reads.
func TestRestoreWakesHostInput(t *testing.T) {
	rising := make(chan struct{}, 4)
	u := New(&bytes.Buffer{}, func(level bool) {
		if level {
			select {
			case rising <- struct{}{}:
			default:
			}
		}
	})
	h := &harness{t: t, u: u}
	h.outb(UART_IER, UART_IER_RDI)
	h.outb(UART_MCR, UART_MCR_OUT2) // FIFOs off: the receiver holds one byte
	done := make(chan error, 1)
	go func() {
		_, err := u.ReadFrom(strings.NewReader("ab"))
		done <- err
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-rising:
		case <-time.After(10 * time.Second):
			t.Fatalf("no rising edge in 10 s %s", what)
		}
	}
	wait("for the first byte")
	// ReadFrom now waits for room for 'b'.
	if err := u.Restore(State{IER: UART_IER_RDI, MCR: UART_MCR_OUT2, FIFOEnabled: true}); err != nil {
		t.Fatal(err)
	}
	wait("after a restore emptied the receiver")
	if got := h.inb(UART_RX); got != 'b' {
		t.Errorf("RX = %q after restore, want 'b'", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ReadFrom: %v", err)
		}
	case <-time.After(10 * time.Second):
		u.Close()
		t.Fatal("ReadFrom still running 10 s after its input was queued")
	}
}
