package uart

import (
	"errors"
	"fmt"
)

// State is what a UART holds that the guest can observe, for a snapshot of
// a paused guest (issue 12). It is a plain value that encodes to JSON.
//
// The registers a guest reads but the UART does not latch are derived from
// these fields, as the UART derives them: IIR from IER, the receive queue,
// LSRErrors, THRIPending and MSRDelta; LSR from the receive queue and
// LSRErrors (THRE and TEMT are always set); MSR's status bits from MCR.
// DLAB is LCR's top bit.
type State struct {
	// DLL and DLM are the divisor latch's low and high bytes.
	DLL byte `json:"dll"`
	DLM byte `json:"dlm"`
	// IER is the interrupt enable register: only UART_IER_ALL_INTR bits.
	IER byte `json:"ier"`
	// LCR is the line control register, DLAB included.
	LCR byte `json:"lcr"`
	// MCR is the modem control register: only the bits a 16550A has.
	MCR byte `json:"mcr"`
	// SCR is the scratch register.
	SCR byte `json:"scr"`
	// FIFOEnabled is FCR's UART_FCR_ENABLE_FIFO.
	FIFOEnabled bool `json:"fifo_enabled"`
	// RX is the receiver's queue, oldest byte first: at most FIFOSize
	// bytes with the FIFOs enabled, one without.
	RX []byte `json:"rx"`
	// LSRErrors are LSR's error bits (UART_LSR_BRK_ERROR_BITS) latched
	// until the guest reads LSR.
	LSRErrors byte `json:"lsr_errors"`
	// MSRDelta are MSR's delta bits (UART_MSR_ANY_DELTA) latched until the
	// guest reads MSR.
	MSRDelta byte `json:"msr_delta"`
	// THRIPending is the THR-empty interrupt, raised and not yet
	// acknowledged; it can only be pending while IER enables it.
	THRIPending bool `json:"thri_pending"`
	// IRQ is the interrupt line's level. It is redundant (the registers
	// above decide it) and checked against them, so a state whose line
	// disagrees with its registers is refused.
	IRQ bool `json:"irq"`
}

// State returns the UART's state. Call it with the guest's vCPUs paused,
// so that it does not change under the snapshot; host input queued after it
// returns is not in it.
func (u *UART) State() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	rx := make([]byte, 0, u.rx.len())
	for i := range u.rx.len() {
		rx = append(rx, u.rx.buf[(u.rx.head+i)%FIFOSize])
	}
	return State{
		DLL:         u.dll,
		DLM:         u.dlm,
		IER:         u.ier,
		LCR:         u.lcr,
		MCR:         u.mcr,
		SCR:         u.scr,
		FIFOEnabled: u.fifoEnabled,
		RX:          rx,
		LSRErrors:   u.lsrErrors,
		MSRDelta:    u.msrDelta,
		THRIPending: u.thrPending,
		IRQ:         u.level,
	}
}

// Validate reports whether s is a state a UART can be in: no register bit
// a 16550A lacks, no more received bytes than the receiver holds, no
// THR-empty interrupt pending while IER disables it, and an interrupt line
// at the level its registers give.
func (s State) Validate() error {
	switch {
	case s.IER&^UART_IER_ALL_INTR != 0:
		return fmt.Errorf("uart: state: IER %#02x sets bits a 16550A does not have", s.IER)
	case s.MCR&^mcrMask != 0:
		return fmt.Errorf("uart: state: MCR %#02x sets bits a 16550A does not have", s.MCR)
	case s.LSRErrors&^UART_LSR_BRK_ERROR_BITS != 0:
		return fmt.Errorf("uart: state: LSR errors %#02x are not error bits", s.LSRErrors)
	case s.MSRDelta&^UART_MSR_ANY_DELTA != 0:
		return fmt.Errorf("uart: state: MSR deltas %#02x are not delta bits", s.MSRDelta)
	case s.THRIPending && s.IER&UART_IER_THRI == 0:
		return errors.New("uart: state: THR-empty interrupt pending while IER disables it")
	}
	scratch := UART{fifoEnabled: s.FIFOEnabled}
	if c := scratch.rxCap(); len(s.RX) > c {
		return fmt.Errorf("uart: state: %d received bytes queued, the receiver holds %d", len(s.RX), c)
	}
	scratch.set(s)
	if want := scratch.lineLevel(); s.IRQ != want {
		return fmt.Errorf("uart: state: interrupt line %v, its registers give %v", s.IRQ, want)
	}
	return nil
}

// Restore puts the UART in state s, which Validate must accept; a refused
// state leaves the UART unchanged. It brings the interrupt line to s.IRQ
// through irq, if that differs from the line's level now (low, for a UART
// fresh from New), so call it after the VM's interrupt controllers are
// restored and before any vCPU runs. Host input waiting for room is woken.
func (u *UART) Restore(s State) error {
	if err := s.Validate(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.set(s)
	u.updateIRQ()
	u.space.Broadcast()
	return nil
}

// set copies s, which Validate accepts but for the line level, into the
// registers; the caller updates the line.
func (u *UART) set(s State) {
	u.dll, u.dlm = s.DLL, s.DLM
	u.ier, u.lcr, u.mcr, u.scr = s.IER, s.LCR, s.MCR, s.SCR
	u.fifoEnabled = s.FIFOEnabled
	u.rx.clear()
	for _, b := range s.RX {
		u.rx.push(b)
	}
	u.lsrErrors, u.msrDelta, u.thrPending = s.LSRErrors, s.MSRDelta, s.THRIPending
}
