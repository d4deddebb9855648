package uart

import (
	"bytes"
	"testing"
)

// harness drives a UART through its bus.Device interface, as the guest
// does, and records what it sends and how it drives its interrupt line.
type harness struct {
	t    *testing.T
	u    *UART
	out  bytes.Buffer
	irqs []bool // every level passed to irq, in order
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t}
	h.u = New(&h.out, func(level bool) { h.irqs = append(h.irqs, level) })
	return h
}

// inb reads one register.
func (h *harness) inb(reg uint64) byte {
	var b [1]byte
	h.u.Read(reg, b[:])
	return b[0]
}

// outb writes one register.
func (h *harness) outb(reg uint64, v byte) {
	h.u.Write(reg, []byte{v})
}

// level is the interrupt line's current level as irq reported it.
func (h *harness) level() bool {
	return len(h.irqs) > 0 && h.irqs[len(h.irqs)-1]
}

// expectIIR reads IIR and fails unless it is want.
func (h *harness) expectIIR(want byte) {
	h.t.Helper()
	if got := h.inb(UART_IIR); got != want {
		h.t.Fatalf("IIR = %#02x, want %#02x", got, want)
	}
}

// expectIRQs fails unless irq was called with exactly want since the
// harness was made.
func (h *harness) expectIRQs(want ...bool) {
	h.t.Helper()
	if len(h.irqs) != len(want) {
		h.t.Fatalf("irq levels = %v, want %v", h.irqs, want)
	}
	for i := range want {
		if h.irqs[i] != want[i] {
			h.t.Fatalf("irq levels = %v, want %v", h.irqs, want)
		}
	}
}

// expectToggles fails if irq was ever called twice in a row with the same
// level, or first with false.
func (h *harness) expectToggles() {
	h.t.Helper()
	for i, l := range h.irqs {
		if l != (i%2 == 0) {
			h.t.Fatalf("irq levels = %v: level %d repeats the previous one", h.irqs, i)
		}
	}
}
