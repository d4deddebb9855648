package uart

import (
	"strings"
	"testing"
)

// Register sequences transcribed from Linux 6.1's
// drivers/tty/serial/8250/8250_port.c, the driver the guest runs.

// Register values Linux uses that serial_reg.h names elsewhere or not at all.
const (
	linuxUARTEFR        = UART_FCR // UART_EFR, behind LCR 0xbf
	linuxLCRConfModeA   = UART_LCR_DLAB
	linuxLCRConfModeB   = 0xbf
	linuxFCR7_64Byte    = 0x20 // UART_FCR7_64BYTE
	linuxIERUUE         = 0x40 // UART_IER_UUE
	linuxNSBank2LCR     = 0xe0 // selects National Semiconductor bank 2
	linuxMSRStatusMask  = 0xf0
	linuxLoopTestMCR    = UART_MCR_LOOP | 0x0a
	linuxLoopTestStatus = 0x90
	linuxFCRRTrig10     = 0x80 // UART_FCR_R_TRIG_10: receive trigger at 8
)

// autoconfig replays autoconfig() and autoconfig_16550a() without
// UPF_SKIP_TEST and returns the port type Linux would settle on.
func autoconfig(h *harness) string {
	// IER existence test.
	scratch := h.inb(UART_IER)
	h.outb(UART_IER, 0)
	scratch2 := h.inb(UART_IER) & UART_IER_ALL_INTR
	h.outb(UART_IER, UART_IER_ALL_INTR)
	scratch3 := h.inb(UART_IER) & UART_IER_ALL_INTR
	h.outb(UART_IER, scratch)
	if scratch2 != 0 || scratch3 != UART_IER_ALL_INTR {
		return "none (IER test)"
	}

	saveMCR := h.inb(UART_MCR)
	saveLCR := h.inb(UART_LCR)

	// Loopback test.
	h.outb(UART_MCR, linuxLoopTestMCR)
	status1 := h.inb(UART_MSR) & linuxMSRStatusMask
	h.outb(UART_MCR, saveMCR)
	if status1 != linuxLoopTestStatus {
		return "none (LOOP test)"
	}

	h.outb(UART_LCR, linuxLCRConfModeB)
	h.outb(linuxUARTEFR, 0)
	h.outb(UART_LCR, 0)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	typ := "unknown"
	switch h.inb(UART_IIR) >> 6 {
	case 0:
		typ = "8250/16450"
	case 2:
		typ = "16550"
	case 3:
		typ = autoconfig16550A(h)
	}
	h.outb(UART_LCR, saveLCR)
	return typ
}

func autoconfig16550A(h *harness) string {
	h.outb(UART_LCR, linuxLCRConfModeA)
	if h.inb(linuxUARTEFR) == 0 {
		return "16650 family (EFR with DLAB)"
	}
	h.outb(UART_LCR, linuxLCRConfModeB)
	if h.inb(linuxUARTEFR) == 0 {
		return "EFR family (EFR behind 0xbf)"
	}

	// National Semiconductor SuperIO.
	h.outb(UART_LCR, 0)
	status1 := h.inb(UART_MCR)
	h.outb(UART_LCR, linuxNSBank2LCR)
	status2 := h.inb(UART_IIR) // EXCR1
	if (status2^status1)&UART_MCR_LOOP == 0 {
		h.outb(UART_LCR, 0)
		h.outb(UART_MCR, status1^UART_MCR_LOOP)
		h.outb(UART_LCR, linuxNSBank2LCR)
		status2 = h.inb(UART_IIR)
		h.outb(UART_LCR, 0)
		h.outb(UART_MCR, status1)
		if (status2^status1)&UART_MCR_LOOP != 0 {
			return "NS16550A"
		}
	}

	// TI16750.
	h.outb(UART_LCR, 0)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|linuxFCR7_64Byte)
	s1 := h.inb(UART_IIR) >> 5
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	h.outb(UART_LCR, linuxLCRConfModeA)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|linuxFCR7_64Byte)
	s2 := h.inb(UART_IIR) >> 5
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	h.outb(UART_LCR, 0)
	if s1 == 6 && s2 == 7 {
		return "16750"
	}

	// XScale.
	iersave := h.inb(UART_IER)
	h.outb(UART_IER, iersave&^linuxIERUUE)
	if h.inb(UART_IER)&linuxIERUUE == 0 {
		h.outb(UART_IER, iersave|linuxIERUUE)
		if h.inb(UART_IER)&linuxIERUUE != 0 {
			return "XScale"
		}
	}
	h.outb(UART_IER, iersave)

	if n := sizeFIFO(h); n == 64 {
		return "U6_16550A"
	}
	return "16550A"
}

// sizeFIFO replays size_fifo(): loop 256 bytes back and count what the
// receiver kept.
func sizeFIFO(h *harness) int {
	oldLCR := h.inb(UART_LCR)
	h.outb(UART_LCR, 0)
	oldFCR := h.inb(UART_FCR) // reads IIR
	oldMCR := h.inb(UART_MCR)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|UART_FCR_CLEAR_RCVR|UART_FCR_CLEAR_XMIT)
	h.outb(UART_MCR, UART_MCR_LOOP)
	h.outb(UART_LCR, linuxLCRConfModeA)
	oldDLL, oldDLM := h.inb(UART_DLL), h.inb(UART_DLM)
	h.outb(UART_DLL, 1)
	h.outb(UART_DLM, 0)
	h.outb(UART_LCR, UART_LCR_WLEN8)
	for i := 0; i < 256; i++ {
		h.outb(UART_TX, byte(i))
	}
	count := 0
	for ; h.inb(UART_LSR)&UART_LSR_DR != 0 && count < 256; count++ {
		h.inb(UART_RX)
	}
	h.outb(UART_FCR, oldFCR)
	h.outb(UART_MCR, oldMCR)
	h.outb(UART_LCR, linuxLCRConfModeA)
	h.outb(UART_DLL, oldDLL)
	h.outb(UART_DLM, oldDLM)
	h.outb(UART_LCR, oldLCR)
	return count
}

func TestLinuxAutoconfig(t *testing.T) {
	h := newHarness(t)
	if got := autoconfig(h); got != "16550A" {
		t.Fatalf("Linux would probe the UART as %s, want 16550A", got)
	}
	if h.out.Len() != 0 {
		t.Errorf("probing transmitted %q", h.out.Bytes())
	}
	if lcr, mcr := h.inb(UART_LCR), h.inb(UART_MCR); lcr != 0 || mcr != 0 {
		t.Errorf("probing left LCR, MCR = %#02x, %#02x; want them restored to 0", lcr, mcr)
	}
	h.expectIRQs()
}

// linuxPort is the state serial8250_do_startup keeps in uart_8250_port.
type linuxPort struct {
	h                *harness
	ier              byte
	bugTHRE, bugTXEN bool
}

// startup replays serial8250_do_startup for a 16550A with an IRQ, followed
// by the MCR write serial8250_set_mctrl makes when the tty opens.
func startup(h *harness) *linuxPort {
	p := &linuxPort{h: h}
	clearFIFOs := func() {
		h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
		h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|UART_FCR_CLEAR_RCVR|UART_FCR_CLEAR_XMIT)
		h.outb(UART_FCR, 0)
	}
	clearInterrupts := func() {
		h.inb(UART_LSR)
		h.inb(UART_RX)
		h.inb(UART_IIR)
		h.inb(UART_MSR)
	}
	clearFIFOs()
	clearInterrupts()

	// Does THRE re-assert once acknowledged?
	h.outb(UART_IER, UART_IER_THRI)
	iir1 := h.inb(UART_IIR)
	h.outb(UART_IER, 0)
	h.outb(UART_IER, UART_IER_THRI)
	iir := h.inb(UART_IIR)
	h.outb(UART_IER, 0)
	p.bugTHRE = iir1&UART_IIR_NO_INT == 0 && iir&UART_IIR_NO_INT != 0

	h.outb(UART_LCR, UART_LCR_WLEN8)
	h.outb(UART_MCR, UART_MCR_OUT2)

	// Does enabling THRI raise an interrupt at all?
	h.outb(UART_IER, UART_IER_THRI)
	lsr := h.inb(UART_LSR)
	iir = h.inb(UART_IIR)
	h.outb(UART_IER, 0)
	p.bugTXEN = lsr&UART_LSR_TEMT != 0 && iir&UART_IIR_NO_INT != 0

	clearInterrupts()
	p.ier = UART_IER_RLSI | UART_IER_RDI
	h.outb(UART_IER, p.ier)

	// serial8250_do_set_termios for a 16550A: 8n1, divisor, FIFO trigger 8.
	h.outb(UART_LCR, UART_LCR_DLAB|UART_LCR_WLEN8)
	h.outb(UART_DLL, 1)
	h.outb(UART_DLM, 0)
	h.outb(UART_LCR, UART_LCR_WLEN8)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|linuxFCRRTrig10)

	h.outb(UART_MCR, UART_MCR_OUT2|UART_MCR_DTR|UART_MCR_RTS)
	return p
}

// write queues s as the tty layer does and runs the interrupt handler
// (serial8250_interrupt) while the line is asserted. It returns what the
// handler received.
func (p *linuxPort) write(t *testing.T, s string) string {
	h := p.h
	xmit := []byte(s)
	var rx []byte
	// __start_tx
	if p.ier&UART_IER_THRI == 0 {
		p.ier |= UART_IER_THRI
		h.outb(UART_IER, p.ier)
	}
	for loops := 0; h.level(); loops++ {
		if loops > 1000 {
			t.Fatal("interrupt line stuck asserted")
		}
		// serial8250_interrupt loops until IIR reports nothing pending.
		iir := h.inb(UART_IIR)
		if iir&UART_IIR_NO_INT != 0 {
			t.Fatal("line asserted with no interrupt pending")
		}
		lsr := h.inb(UART_LSR)
		for lsr&UART_LSR_DR != 0 {
			rx = append(rx, h.inb(UART_RX))
			lsr = h.inb(UART_LSR)
		}
		h.inb(UART_MSR)
		if lsr&UART_LSR_THRE != 0 && p.ier&UART_IER_THRI != 0 {
			// serial8250_tx_chars: up to tx_loadsz bytes per call.
			for n := FIFOSize; n > 0 && len(xmit) > 0; n-- {
				h.outb(UART_TX, xmit[0])
				xmit = xmit[1:]
			}
			if len(xmit) == 0 { // __stop_tx
				p.ier &^= UART_IER_THRI
				h.outb(UART_IER, p.ier)
			}
		}
	}
	if len(xmit) != 0 {
		t.Fatalf("line deasserted with %d bytes left to send", len(xmit))
	}
	return string(rx)
}

func TestLinuxStartupAndTransmit(t *testing.T) {
	h := newHarness(t)
	p := startup(h)
	if p.bugTHRE {
		t.Error("Linux would flag UART_BUG_THRE: THRE did not re-assert")
	}
	if p.bugTXEN {
		t.Error("Linux would flag UART_BUG_TXEN: enabling THRI raised nothing")
	}
	if h.level() {
		t.Fatal("interrupt line asserted after startup with nothing to do")
	}

	msg := strings.Repeat("interrupt-driven output. ", 4)
	p.write(t, msg)
	if h.out.String() != msg {
		t.Errorf("out = %q, want %q", h.out.String(), msg)
	}
	// Each pass of the handler acknowledged THRE by reading IIR and re-armed
	// it by writing THR; the last pass left the line deasserted.
	h.expectToggles()
	if len(h.irqs) == 0 || h.level() {
		t.Errorf("irq levels = %v, want a run ending deasserted", h.irqs)
	}

	// Input arriving while the tty transmits is picked up by the same
	// handler.
	h.out.Reset()
	h.u.Input([]byte("key"))
	if got := p.write(t, "echo"); got != "key" {
		t.Errorf("handler received %q, want %q", got, "key")
	}
	if h.out.String() != "echo" {
		t.Errorf("out = %q, want %q", h.out.String(), "echo")
	}
}
