package uart

func (u *UART) writeMCR(v byte) {
	before := u.modemStatus()
	u.mcr = v & mcrMask
	u.msrDelta |= msrDeltas(before, u.modemStatus())
}

// modemStatus returns MSR's status bits (without deltas): those of a ready
// peer, or in loopback mode MCR's outputs wired back to the inputs.
func (u *UART) modemStatus() byte {
	if u.mcr&UART_MCR_LOOP == 0 {
		return modemPeer
	}
	var msr byte
	if u.mcr&UART_MCR_RTS != 0 {
		msr |= UART_MSR_CTS
	}
	if u.mcr&UART_MCR_DTR != 0 {
		msr |= UART_MSR_DSR
	}
	if u.mcr&UART_MCR_OUT1 != 0 {
		msr |= UART_MSR_RI
	}
	if u.mcr&UART_MCR_OUT2 != 0 {
		msr |= UART_MSR_DCD
	}
	return msr
}

// msrDeltas returns the MSR delta bits for a change of the modem inputs
// from before to after. RI reports its trailing edge only.
func msrDeltas(before, after byte) byte {
	changed := before ^ after
	var d byte
	if changed&UART_MSR_CTS != 0 {
		d |= UART_MSR_DCTS
	}
	if changed&UART_MSR_DSR != 0 {
		d |= UART_MSR_DDSR
	}
	if changed&UART_MSR_DCD != 0 {
		d |= UART_MSR_DDCD
	}
	if before&UART_MSR_RI != 0 && after&UART_MSR_RI == 0 {
		d |= UART_MSR_TERI
	}
	return d
}
