package uart

// Register offsets from the UART's base port and their bits, named and valued
// as in Linux's include/uapi/linux/serial_reg.h. Offsets 0 and 1 select the
// divisor latch instead while LCR.DLAB is set.

// Register offsets.
const (
	// UART_RX is the receive buffer register (read, DLAB clear).
	UART_RX = 0
	// UART_TX is the transmit holding register (write, DLAB clear).
	UART_TX = 0
	// UART_DLL is the divisor latch's low byte (DLAB set).
	UART_DLL = 0
	// UART_DLM is the divisor latch's high byte (DLAB set).
	UART_DLM = 1
	// UART_IER is the interrupt enable register (DLAB clear).
	UART_IER = 1
	// UART_IIR is the interrupt identification register (read).
	UART_IIR = 2
	// UART_FCR is the FIFO control register (write).
	UART_FCR = 2
	// UART_LCR is the line control register.
	UART_LCR = 3
	// UART_MCR is the modem control register.
	UART_MCR = 4
	// UART_LSR is the line status register (read).
	UART_LSR = 5
	// UART_MSR is the modem status register (read).
	UART_MSR = 6
	// UART_SCR is the scratch register.
	UART_SCR = 7
)

// Interrupt enable register bits. A 16550A implements the low four; the
// rest read as zero.
const (
	// UART_IER_MSI enables the modem status interrupt.
	UART_IER_MSI = 0x08
	// UART_IER_RLSI enables the receiver line status interrupt.
	UART_IER_RLSI = 0x04
	// UART_IER_THRI enables the transmitter holding register empty interrupt.
	UART_IER_THRI = 0x02
	// UART_IER_RDI enables the receiver data available interrupt.
	UART_IER_RDI = 0x01
	// UART_IER_ALL_INTR is every interrupt enable bit a 16550A has.
	UART_IER_ALL_INTR = UART_IER_MSI | UART_IER_RLSI | UART_IER_THRI | UART_IER_RDI
)

// Interrupt identification register values.
const (
	// UART_IIR_NO_INT is set when no interrupt is pending.
	UART_IIR_NO_INT = 0x01
	// UART_IIR_ID masks the pending interrupt's identity.
	UART_IIR_ID = 0x0e
	// UART_IIR_MSI identifies a modem status interrupt (lowest priority).
	UART_IIR_MSI = 0x00
	// UART_IIR_THRI identifies a transmitter holding register empty interrupt.
	UART_IIR_THRI = 0x02
	// UART_IIR_RDI identifies a receiver data available interrupt.
	UART_IIR_RDI = 0x04
	// UART_IIR_RLSI identifies a receiver line status interrupt (highest
	// priority).
	UART_IIR_RLSI = 0x06
	// UART_IIR_FIFO_ENABLED_16550A is what a 16550A reports in IIR's top
	// two bits while its FIFOs are enabled.
	UART_IIR_FIFO_ENABLED_16550A = 0xc0
)

// FIFO control register bits.
const (
	// UART_FCR_ENABLE_FIFO enables the FIFOs; changing it empties them.
	UART_FCR_ENABLE_FIFO = 0x01
	// UART_FCR_CLEAR_RCVR empties the receive FIFO.
	UART_FCR_CLEAR_RCVR = 0x02
	// UART_FCR_CLEAR_XMIT empties the transmit FIFO.
	UART_FCR_CLEAR_XMIT = 0x04
	// UART_FCR_TRIGGER_MASK masks the receive FIFO interrupt trigger level.
	UART_FCR_TRIGGER_MASK = 0xc0
)

// Line control register bits.
const (
	// UART_LCR_DLAB maps the divisor latch at offsets 0 and 1.
	UART_LCR_DLAB = 0x80
	// UART_LCR_WLEN8 selects 8-bit words.
	UART_LCR_WLEN8 = 0x03
)

// Modem control register bits. A 16550A implements the low five; the rest
// read as zero.
const (
	// UART_MCR_LOOP enables loopback mode.
	UART_MCR_LOOP = 0x10
	// UART_MCR_OUT2 drives OUT2, which on a PC gates the interrupt line.
	UART_MCR_OUT2 = 0x08
	// UART_MCR_OUT1 drives OUT1.
	UART_MCR_OUT1 = 0x04
	// UART_MCR_RTS drives request to send.
	UART_MCR_RTS = 0x02
	// UART_MCR_DTR drives data terminal ready.
	UART_MCR_DTR = 0x01
	// mcrMask is every MCR bit a 16550A implements.
	mcrMask = UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_OUT1 | UART_MCR_RTS | UART_MCR_DTR
)

// Line status register bits.
const (
	// UART_LSR_FIFOE is set while the receive FIFO holds a byte with an error.
	UART_LSR_FIFOE = 0x80
	// UART_LSR_TEMT is set while the transmitter is empty.
	UART_LSR_TEMT = 0x40
	// UART_LSR_THRE is set while the transmit holding register is empty.
	UART_LSR_THRE = 0x20
	// UART_LSR_BI reports a break.
	UART_LSR_BI = 0x10
	// UART_LSR_FE reports a framing error.
	UART_LSR_FE = 0x08
	// UART_LSR_PE reports a parity error.
	UART_LSR_PE = 0x04
	// UART_LSR_OE reports an overrun: a received byte was lost.
	UART_LSR_OE = 0x02
	// UART_LSR_DR is set while received data is ready.
	UART_LSR_DR = 0x01
	// UART_LSR_BRK_ERROR_BITS are the error bits that raise the receiver
	// line status interrupt; reading LSR clears them.
	UART_LSR_BRK_ERROR_BITS = UART_LSR_BI | UART_LSR_FE | UART_LSR_PE | UART_LSR_OE
)

// Modem status register bits.
const (
	// UART_MSR_DCD is data carrier detect.
	UART_MSR_DCD = 0x80
	// UART_MSR_RI is ring indicator.
	UART_MSR_RI = 0x40
	// UART_MSR_DSR is data set ready.
	UART_MSR_DSR = 0x20
	// UART_MSR_CTS is clear to send.
	UART_MSR_CTS = 0x10
	// UART_MSR_DDCD is set when DCD changed since MSR was last read.
	UART_MSR_DDCD = 0x08
	// UART_MSR_TERI is set when RI went from on to off since MSR was last
	// read.
	UART_MSR_TERI = 0x04
	// UART_MSR_DDSR is set when DSR changed since MSR was last read.
	UART_MSR_DDSR = 0x02
	// UART_MSR_DCTS is set when CTS changed since MSR was last read.
	UART_MSR_DCTS = 0x01
	// UART_MSR_ANY_DELTA masks the delta bits; any of them raises the modem
	// status interrupt.
	UART_MSR_ANY_DELTA = UART_MSR_DDCD | UART_MSR_TERI | UART_MSR_DDSR | UART_MSR_DCTS
)
