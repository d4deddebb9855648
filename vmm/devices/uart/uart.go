// Package uart emulates a 16550A UART as Linux's 8250 driver
// (drivers/tty/serial/8250/8250_port.c) probes and drives it.
//
// The transmitter is instantaneous: a byte written to UART_TX goes to the
// output writer at once, so the transmit holding register and the
// transmitter are always empty (LSR.THRE and LSR.TEMT always set) and the
// THR-empty interrupt re-arms on every write.
//
// The receiver queues up to FIFOSize bytes (one while FCR leaves the FIFOs
// disabled). The host feeds it through Input, which takes what fits, or
// ReadFrom, which waits for the guest to make room: host input is never
// dropped. Bytes the guest loops back to itself in loopback mode do overrun
// a full receiver and set LSR.OE, as on hardware. The receive interrupt is
// raised as soon as a byte is queued whatever the FCR trigger level, as if
// the 16550A's character timeout expired at once; it is reported as
// UART_IIR_RDI.
//
// Outside loopback mode the modem inputs are those of a ready peer: CTS,
// DSR and DCD asserted, RI not. In loopback mode they follow MCR: CTS=RTS,
// DSR=DTR, RI=OUT1, DCD=OUT2.
//
// The interrupt line is level-triggered. It is asserted while IIR reports a
// pending interrupt and MCR.OUT2 is set, OUT2 gating the IRQ as on PC
// hardware; in loopback mode the OUT2 pin is held inactive, so the line is
// deasserted then whatever MCR.OUT2 holds.
package uart

import (
	"io"
	"sync"
)

// The PC's first serial port. The caller registers the UART on the port I/O
// bus at COM1Base for PortCount ports and routes its interrupt to COM1IRQ.
const (
	// COM1Base is the first I/O port of COM1.
	COM1Base = 0x3f8
	// PortCount is how many consecutive I/O ports a UART decodes.
	PortCount = 8
	// COM1IRQ is COM1's ISA interrupt line.
	COM1IRQ = 4
)

// defaultDivisor is the divisor latch's reset value: 9600 baud from the
// PC's 1.8432 MHz clock. It must not be 0: Linux's probe_baud divides by it.
const defaultDivisor = 12

// modemPeer is MSR's status bits outside loopback mode: the line behaves as
// if a peer were present and ready.
const modemPeer = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS

// UART is an emulated 16550A. It implements bus.Device for its PortCount
// ports; all methods are safe for concurrent use.
type UART struct {
	out io.Writer
	irq func(level bool)

	mu sync.Mutex
	// space is signalled when the receiver may have gained room for host
	// input, and on Close.
	space sync.Cond

	ier, lcr, mcr, scr byte
	dll, dlm           byte
	fifoEnabled        bool
	rx                 rxFIFO
	lsrErrors          byte // UART_LSR_BRK_ERROR_BITS latched until LSR is read
	msrDelta           byte // UART_MSR_ANY_DELTA bits latched until MSR is read
	thrPending         bool // THR-empty interrupt raised and not yet acknowledged
	level              bool // interrupt line level last passed to irq
	closed             bool
	txBuf              [1]byte
}

// New returns a UART in its reset state.
//
// Bytes the guest transmits are written to out one at a time; write errors
// are dropped, as the guest has no way to learn of them. irq, which may be
// nil, is called with the interrupt line's new level each time the level
// changes, never twice in a row with the same level. Both are called with the
// UART's lock held, in the order the guest caused them, so they must not call
// back into the UART.
func New(out io.Writer, irq func(level bool)) *UART {
	u := &UART{out: out, irq: irq, dll: defaultDivisor}
	u.space.L = &u.mu
	return u
}

// Read implements bus.Device. An access wider than a byte reads consecutive
// registers, as an 8-bit ISA device sees it.
func (u *UART) Read(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	room := u.rxRoom()
	for i := range data {
		data[i] = u.readReg(offset + uint64(i))
	}
	u.afterAccess(room)
}

// Write implements bus.Device. An access wider than a byte writes
// consecutive registers.
func (u *UART) Write(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	room := u.rxRoom()
	for i, v := range data {
		u.writeReg(offset+uint64(i), v)
	}
	u.afterAccess(room)
}

// afterAccess updates the interrupt line and wakes host input waiting for
// room the access made.
func (u *UART) afterAccess(roomBefore int) {
	u.updateIRQ()
	if u.rxRoom() > roomBefore {
		u.space.Broadcast()
	}
}

func (u *UART) dlab() bool { return u.lcr&UART_LCR_DLAB != 0 }

func (u *UART) readReg(reg uint64) byte {
	switch reg {
	case UART_RX: // UART_DLL
		if u.dlab() {
			return u.dll
		}
		return u.rx.pop()
	case UART_IER: // UART_DLM
		if u.dlab() {
			return u.dlm
		}
		return u.ier
	case UART_IIR:
		return u.readIIR()
	case UART_LCR:
		return u.lcr
	case UART_MCR:
		return u.mcr
	case UART_LSR:
		return u.readLSR()
	case UART_MSR:
		msr := u.modemStatus() | u.msrDelta
		u.msrDelta = 0
		return msr
	case UART_SCR:
		return u.scr
	}
	return 0xff // beyond the UART's ports: nothing drives the bus
}

func (u *UART) writeReg(reg uint64, v byte) {
	switch reg {
	case UART_TX: // UART_DLL
		if u.dlab() {
			u.dll = v
			return
		}
		u.transmit(v)
	case UART_IER: // UART_DLM
		if u.dlab() {
			u.dlm = v
			return
		}
		u.writeIER(v)
	case UART_FCR:
		u.writeFCR(v)
	case UART_LCR:
		u.lcr = v
	case UART_MCR:
		u.writeMCR(v)
	case UART_SCR:
		u.scr = v
	}
	// UART_LSR and UART_MSR are read-only.
}

// transmit sends v: to out, or back to the receiver in loopback mode.
func (u *UART) transmit(v byte) {
	if u.mcr&UART_MCR_LOOP != 0 {
		u.loopback(v)
	} else {
		u.txBuf[0] = v
		_, _ = u.out.Write(u.txBuf[:])
	}
	// Writing THR acknowledged the THR-empty interrupt; the byte left THR
	// at once, so THR is empty again and the interrupt is raised anew.
	u.thrPending = u.ier&UART_IER_THRI != 0
}

// loopback delivers a transmitted byte to the receiver, overrunning it when
// it is full.
func (u *UART) loopback(v byte) {
	switch {
	case u.rx.len() < u.rxCap():
		u.rx.push(v)
	case u.fifoEnabled:
		// The byte in the receive shift register is lost; the FIFO keeps
		// its contents.
		u.lsrErrors |= UART_LSR_OE
	default:
		// Without FIFO the new byte overwrites the unread one.
		u.rx.replaceNewest(v)
		u.lsrErrors |= UART_LSR_OE
	}
}

func (u *UART) writeIER(v byte) {
	v &= UART_IER_ALL_INTR
	if (u.ier^v)&UART_IER_THRI != 0 {
		// Enabling the THR-empty interrupt while THR is empty (always, here)
		// raises it, even if it was acknowledged before; disabling it drops
		// it. serial8250_do_startup tests the former.
		u.thrPending = v&UART_IER_THRI != 0
	}
	u.ier = v
}

func (u *UART) writeFCR(v byte) {
	enable := v&UART_FCR_ENABLE_FIFO != 0
	switch {
	case enable != u.fifoEnabled:
		// Switching the FIFOs on or off empties them.
		u.fifoEnabled = enable
		u.rx.clear()
	case enable && v&UART_FCR_CLEAR_RCVR != 0:
		u.rx.clear()
	}
	// The transmit FIFO is always empty, so UART_FCR_CLEAR_XMIT has nothing
	// to do; the trigger level is not modelled (see the package comment).
}

func (u *UART) readIIR() byte {
	iir := u.pendingIIR()
	if iir == UART_IIR_THRI {
		// Reading IIR while it reports THR empty acknowledges that
		// interrupt.
		u.thrPending = false
	}
	if u.fifoEnabled {
		iir |= UART_IIR_FIFO_ENABLED_16550A
	}
	return iir
}

// pendingIIR returns the identity of the highest-priority pending interrupt,
// or UART_IIR_NO_INT.
func (u *UART) pendingIIR() byte {
	switch {
	case u.ier&UART_IER_RLSI != 0 && u.lsrErrors != 0:
		return UART_IIR_RLSI
	case u.ier&UART_IER_RDI != 0 && u.rx.len() > 0:
		return UART_IIR_RDI
	case u.ier&UART_IER_THRI != 0 && u.thrPending:
		return UART_IIR_THRI
	case u.ier&UART_IER_MSI != 0 && u.msrDelta != 0:
		return UART_IIR_MSI
	}
	return UART_IIR_NO_INT
}

func (u *UART) readLSR() byte {
	lsr := byte(UART_LSR_THRE|UART_LSR_TEMT) | u.lsrErrors
	if u.rx.len() > 0 {
		lsr |= UART_LSR_DR
	}
	// Reading LSR clears the error bits and so the line status interrupt.
	u.lsrErrors = 0
	return lsr
}

// lineLevel is the interrupt line's level the registers give: asserted
// while an interrupt is pending and OUT2 drives the line (never in loopback
// mode).
func (u *UART) lineLevel() bool {
	return u.pendingIIR() != UART_IIR_NO_INT &&
		u.mcr&(UART_MCR_OUT2|UART_MCR_LOOP) == UART_MCR_OUT2
}

// updateIRQ recomputes the interrupt line and reports a change to irq.
func (u *UART) updateIRQ() {
	level := u.lineLevel()
	if level == u.level {
		return
	}
	u.level = level
	if u.irq != nil {
		u.irq(level)
	}
}
