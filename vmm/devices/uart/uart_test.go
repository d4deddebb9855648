package uart

import (
	"bytes"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/vmm/bus"
)

var _ bus.Device = (*UART)(nil)

// COM1 on a port bus, as the VMM registers it.
func TestOnBus(t *testing.T) {
	var out bytes.Buffer
	var io bus.Bus
	if err := io.Register("com1", COM1Base, PortCount, New(&out, nil)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []byte("bus") {
		if err := io.Write(COM1Base+UART_TX, []byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "bus" {
		t.Errorf("out = %q, want %q", out.String(), "bus")
	}
	b := []byte{0}
	if err := io.Read(COM1Base+UART_SCR, b); err != nil {
		t.Fatal(err)
	}
	if err := io.Read(COM1Base+PortCount, b); err == nil {
		t.Errorf("port %#x after the UART's range was claimed", COM1Base+PortCount)
	}
}

// Several vCPUs writing at once: every byte comes out. Run with -race to
// check the locking.
func TestConcurrentTransmit(t *testing.T) {
	var out bytes.Buffer
	u := New(&out, nil)
	const writers, perWriter = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				u.Write(UART_TX, []byte{byte('a' + w)})
				var lsr [1]byte
				u.Read(UART_LSR, lsr[:])
			}
		}()
	}
	wg.Wait()
	counts := map[byte]int{}
	for _, c := range out.Bytes() {
		counts[c]++
	}
	for w := range writers {
		if n := counts[byte('a'+w)]; n != perWriter {
			t.Errorf("writer %d: %d bytes out, want %d", w, n, perWriter)
		}
	}
}

func TestResetState(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		name string
		reg  uint64
		want byte
	}{
		{"IER", UART_IER, 0},
		{"IIR", UART_IIR, UART_IIR_NO_INT},
		{"LCR", UART_LCR, 0},
		{"MCR", UART_MCR, 0},
		{"LSR", UART_LSR, UART_LSR_THRE | UART_LSR_TEMT},
		{"MSR", UART_MSR, UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS},
		{"SCR", UART_SCR, 0},
	} {
		if got := h.inb(c.reg); got != c.want {
			t.Errorf("%s = %#02x, want %#02x", c.name, got, c.want)
		}
	}
	h.outb(UART_LCR, UART_LCR_DLAB)
	if dll, dlm := h.inb(UART_DLL), h.inb(UART_DLM); dll != defaultDivisor || dlm != 0 {
		t.Errorf("divisor = %#02x:%#02x, want 0:%#02x", dlm, dll, defaultDivisor)
	}
	h.expectIRQs()
}

func TestScratch(t *testing.T) {
	h := newHarness(t)
	for _, v := range []byte{0xa5, 0x5a, 0, 0xff} {
		h.outb(UART_SCR, v)
		if got := h.inb(UART_SCR); got != v {
			t.Errorf("SCR = %#02x after writing %#02x", got, v)
		}
	}
}

func TestLCRReadsBack(t *testing.T) {
	h := newHarness(t)
	for _, v := range []byte{UART_LCR_WLEN8, 0xbf, 0} {
		h.outb(UART_LCR, v)
		if got := h.inb(UART_LCR); got != v {
			t.Errorf("LCR = %#02x after writing %#02x", got, v)
		}
	}
}

func TestDivisorLatch(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_IER, UART_IER_RDI)
	h.outb(UART_LCR, UART_LCR_DLAB|UART_LCR_WLEN8)
	h.outb(UART_DLL, 0x01)
	h.outb(UART_DLM, 0x02)
	if dll, dlm := h.inb(UART_DLL), h.inb(UART_DLM); dll != 0x01 || dlm != 0x02 {
		t.Fatalf("divisor reads %#02x:%#02x, want 0x02:0x01", dlm, dll)
	}
	if h.out.Len() != 0 {
		t.Errorf("writing DLL transmitted %q", h.out.Bytes())
	}
	h.outb(UART_LCR, UART_LCR_WLEN8)
	if got := h.inb(UART_IER); got != UART_IER_RDI {
		t.Errorf("IER = %#02x after DLM write, want %#02x", got, UART_IER_RDI)
	}
	h.u.Input([]byte{'x'})
	if got := h.inb(UART_RX); got != 'x' {
		t.Errorf("RX = %#02x with DLAB clear, want 'x'", got)
	}
	h.outb(UART_LCR, UART_LCR_DLAB)
	if dll, dlm := h.inb(UART_DLL), h.inb(UART_DLM); dll != 0x01 || dlm != 0x02 {
		t.Errorf("divisor reads %#02x:%#02x after IER/RX use, want 0x02:0x01", dlm, dll)
	}
}

// A 16550A has no IER bits above the low four and no MCR bits above the low
// five; Linux's autoconfig reads an IER bit 6 that sticks as an XScale.
func TestUnimplementedBitsReadZero(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_IER, 0xff)
	if got := h.inb(UART_IER); got != UART_IER_ALL_INTR {
		t.Errorf("IER = %#02x after writing 0xff, want %#02x", got, UART_IER_ALL_INTR)
	}
	h.outb(UART_MCR, 0xff)
	if got := h.inb(UART_MCR); got != mcrMask {
		t.Errorf("MCR = %#02x after writing 0xff, want %#02x", got, mcrMask)
	}
}

func TestReadOnlyRegistersIgnoreWrites(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_LSR, 0)
	h.outb(UART_MSR, 0)
	if got := h.inb(UART_LSR); got != UART_LSR_THRE|UART_LSR_TEMT {
		t.Errorf("LSR = %#02x after a write, want THRE|TEMT", got)
	}
	if got := h.inb(UART_MSR); got != modemPeer {
		t.Errorf("MSR = %#02x after a write, want %#02x", got, modemPeer)
	}
}

func TestTransmit(t *testing.T) {
	h := newHarness(t)
	for _, c := range []byte("hello\n") {
		h.outb(UART_TX, c)
		if lsr := h.inb(UART_LSR); lsr&(UART_LSR_THRE|UART_LSR_TEMT) != UART_LSR_THRE|UART_LSR_TEMT {
			t.Fatalf("LSR = %#02x after a write to THR, want THRE|TEMT set", lsr)
		}
	}
	if got := h.out.String(); got != "hello\n" {
		t.Errorf("out = %q, want %q", got, "hello\n")
	}
}

// A wider access reads or writes consecutive registers.
func TestWideAccess(t *testing.T) {
	h := newHarness(t)
	h.u.Write(UART_LCR, []byte{UART_LCR_WLEN8, UART_MCR_DTR})
	if lcr, mcr := h.inb(UART_LCR), h.inb(UART_MCR); lcr != UART_LCR_WLEN8 || mcr != UART_MCR_DTR {
		t.Errorf("LCR, MCR = %#02x, %#02x after a 2-byte write", lcr, mcr)
	}
	var b [2]byte
	h.u.Read(UART_LCR, b[:])
	if b != [2]byte{UART_LCR_WLEN8, UART_MCR_DTR} {
		t.Errorf("2-byte read at LCR = % x", b)
	}
}

func TestFIFOControl(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_IER, UART_IER_RDI) // a listening driver: host input flows
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	h.expectIIR(UART_IIR_FIFO_ENABLED_16550A | UART_IIR_NO_INT)

	if n := h.u.Input([]byte("abc")); n != 3 {
		t.Fatalf("Input took %d bytes, want 3", n)
	}
	// Rewriting the enable bit alone keeps the FIFO's contents.
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	if h.inb(UART_LSR)&UART_LSR_DR == 0 {
		t.Fatal("rewriting FCR with the FIFO enabled emptied the receiver")
	}
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO|UART_FCR_CLEAR_RCVR|UART_FCR_CLEAR_XMIT)
	if h.inb(UART_LSR)&UART_LSR_DR != 0 {
		t.Fatal("FCR.CLEAR_RCVR left data in the receiver")
	}

	h.u.Input([]byte("abc"))
	h.outb(UART_FCR, 0)
	h.expectIIR(UART_IIR_NO_INT)
	if h.inb(UART_LSR)&UART_LSR_DR != 0 {
		t.Fatal("disabling the FIFO kept its contents")
	}
}

// The THR-empty interrupt as serial8250_do_startup tests it and as the
// transmit path uses it.
func TestTHREInterrupt(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_IER, UART_IER_THRI)
	h.expectIIR(UART_IIR_THRI)
	h.expectIIR(UART_IIR_NO_INT) // the read acknowledged it

	h.outb(UART_TX, 'a')
	h.expectIIR(UART_IIR_THRI) // THR emptied again at once

	h.expectIIR(UART_IIR_NO_INT)
	h.outb(UART_IER, UART_IER_THRI) // no change of THRI: nothing new
	h.expectIIR(UART_IIR_NO_INT)

	h.outb(UART_IER, 0)
	h.outb(UART_IER, UART_IER_THRI) // enabling it again while THR is empty
	h.expectIIR(UART_IIR_THRI)

	h.outb(UART_IER, 0) // disabling it drops it
	h.outb(UART_IER, UART_IER_RDI)
	h.expectIIR(UART_IIR_NO_INT)
}

func TestReceive(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	h.outb(UART_MCR, UART_MCR_OUT2)
	h.outb(UART_IER, UART_IER_RDI)
	h.expectIRQs()

	h.u.Input([]byte("ok\n"))
	h.expectIRQs(true)
	h.expectIIR(UART_IIR_FIFO_ENABLED_16550A | UART_IIR_RDI)
	var got []byte
	for h.inb(UART_LSR)&UART_LSR_DR != 0 {
		got = append(got, h.inb(UART_RX))
	}
	if string(got) != "ok\n" {
		t.Errorf("received %q, want %q", got, "ok\n")
	}
	h.expectIIR(UART_IIR_FIFO_ENABLED_16550A | UART_IIR_NO_INT)
	h.expectIRQs(true, false)
}

// Each condition is reported by IIR in priority order, and clearing it
// reveals the next: line status, received data, THR empty, modem status.
func TestInterruptPriority(t *testing.T) {
	h := newHarness(t)
	// Entering loopback with DTR off drops DSR: a modem status change.
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_RTS|UART_MCR_OUT2)
	// Two bytes into the 16450-mode receiver: data ready and an overrun.
	h.outb(UART_TX, 'a')
	h.outb(UART_TX, 'b')
	h.outb(UART_IER, UART_IER_ALL_INTR) // and THR empty

	h.expectIIR(UART_IIR_RLSI)
	if lsr := h.inb(UART_LSR); lsr&UART_LSR_OE == 0 {
		t.Fatalf("LSR = %#02x, want OE", lsr)
	}
	h.expectIIR(UART_IIR_RDI)
	h.inb(UART_RX)
	h.expectIIR(UART_IIR_THRI)
	h.expectIIR(UART_IIR_MSI)
	if msr := h.inb(UART_MSR); msr&UART_MSR_DDSR == 0 {
		t.Fatalf("MSR = %#02x, want DDSR", msr)
	}
	h.expectIIR(UART_IIR_NO_INT)
	// Loopback keeps the line deasserted throughout.
	h.expectIRQs()
}

func TestIRQGatedByOUT2(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_IER, UART_IER_THRI)
	h.expectIRQs() // pending, but OUT2 is off

	h.outb(UART_MCR, UART_MCR_OUT2|UART_MCR_DTR|UART_MCR_RTS)
	h.expectIRQs(true)
	h.outb(UART_MCR, UART_MCR_DTR|UART_MCR_RTS)
	h.expectIRQs(true, false)
	h.outb(UART_MCR, UART_MCR_OUT2)
	h.expectIRQs(true, false, true)
	// In loopback mode the OUT2 pin is inactive whatever MCR holds.
	h.outb(UART_MCR, UART_MCR_OUT2|UART_MCR_LOOP)
	h.expectIRQs(true, false, true, false)
	if h.inb(UART_IIR) != UART_IIR_THRI {
		t.Error("loopback mode lost the pending interrupt")
	}
}

// irq is called on level changes only: a stream of THR writes that each
// re-arm the THR-empty interrupt leaves the line asserted without repeats.
func TestIRQOnlyOnChange(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_MCR, UART_MCR_OUT2)
	h.outb(UART_IER, UART_IER_THRI)
	for _, c := range []byte("abcdef") {
		h.outb(UART_TX, c)
	}
	h.expectIRQs(true)
	h.inb(UART_IIR)
	h.expectIRQs(true, false)
	h.inb(UART_IIR)
	h.outb(UART_IER, UART_IER_THRI)
	h.expectIRQs(true, false)
	h.outb(UART_TX, 'g')
	h.expectIRQs(true, false, true)
	h.outb(UART_IER, 0)
	h.expectIRQs(true, false, true, false)
}

func TestLineStatusInterrupt(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_MCR, UART_MCR_LOOP)
	h.outb(UART_IER, UART_IER_RLSI)
	h.outb(UART_TX, 'a')
	h.expectIIR(UART_IIR_NO_INT) // data alone is not a line status event
	h.outb(UART_TX, 'b')
	h.expectIIR(UART_IIR_RLSI)
	if lsr := h.inb(UART_LSR); lsr != UART_LSR_THRE|UART_LSR_TEMT|UART_LSR_OE|UART_LSR_DR {
		t.Errorf("LSR = %#02x, want THRE|TEMT|OE|DR", lsr)
	}
	if lsr := h.inb(UART_LSR); lsr&UART_LSR_OE != 0 {
		t.Errorf("LSR = %#02x on second read, want OE cleared", lsr)
	}
	h.expectIIR(UART_IIR_NO_INT)
}

// Loopback as Linux's autoconfig tests it, and loopback data.
func TestLoopback(t *testing.T) {
	h := newHarness(t)
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_OUT2|UART_MCR_RTS)
	if msr := h.inb(UART_MSR) &^ UART_MSR_ANY_DELTA; msr != UART_MSR_DCD|UART_MSR_CTS {
		t.Errorf("MSR status = %#02x in loopback with RTS|OUT2, want DCD|CTS", msr)
	}
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_DTR|UART_MCR_OUT1)
	if msr := h.inb(UART_MSR) &^ UART_MSR_ANY_DELTA; msr != UART_MSR_DSR|UART_MSR_RI {
		t.Errorf("MSR status = %#02x in loopback with DTR|OUT1, want DSR|RI", msr)
	}

	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	for _, c := range []byte("loop") {
		h.outb(UART_TX, c)
	}
	if h.out.Len() != 0 {
		t.Errorf("loopback transmitted %q to the output", h.out.Bytes())
	}
	if n := h.u.Input([]byte("host")); n != 0 {
		t.Errorf("Input took %d bytes in loopback mode, want 0", n)
	}
	var got []byte
	for h.inb(UART_LSR)&UART_LSR_DR != 0 {
		got = append(got, h.inb(UART_RX))
	}
	if string(got) != "loop" {
		t.Errorf("looped back %q, want %q", got, "loop")
	}

	h.outb(UART_MCR, 0)
	if msr := h.inb(UART_MSR) &^ UART_MSR_ANY_DELTA; msr != modemPeer {
		t.Errorf("MSR status = %#02x after loopback, want %#02x", msr, modemPeer)
	}
	h.outb(UART_TX, '!')
	if h.out.String() != "!" {
		t.Errorf("out = %q after leaving loopback, want %q", h.out.String(), "!")
	}
}

func TestModemStatusDeltas(t *testing.T) {
	h := newHarness(t)
	// From the peer's DCD|DSR|CTS to loopback with every output off.
	h.outb(UART_MCR, UART_MCR_LOOP)
	if msr := h.inb(UART_MSR); msr != UART_MSR_DDCD|UART_MSR_DDSR|UART_MSR_DCTS {
		t.Errorf("MSR = %#02x, want DDCD|DDSR|DCTS", msr)
	}
	if msr := h.inb(UART_MSR); msr != 0 {
		t.Errorf("MSR = %#02x on second read, want deltas cleared", msr)
	}
	// RI's leading edge sets no delta; its trailing edge sets TERI.
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_OUT1)
	if msr := h.inb(UART_MSR); msr != UART_MSR_RI {
		t.Errorf("MSR = %#02x after RI rose, want RI alone", msr)
	}
	h.outb(UART_MCR, UART_MCR_LOOP)
	if msr := h.inb(UART_MSR); msr != UART_MSR_TERI {
		t.Errorf("MSR = %#02x after RI fell, want TERI", msr)
	}

	h.outb(UART_IER, UART_IER_MSI)
	h.expectIIR(UART_IIR_NO_INT)
	h.outb(UART_MCR, UART_MCR_LOOP|UART_MCR_RTS)
	h.expectIIR(UART_IIR_MSI)
	h.inb(UART_MSR)
	h.expectIIR(UART_IIR_NO_INT)
}

func TestLoopbackOverrun(t *testing.T) {
	for _, c := range []struct {
		name string
		fcr  byte
		want string
	}{
		// A full FIFO keeps its contents and loses the newest byte.
		{"fifo", UART_FCR_ENABLE_FIFO, "0123456789abcdef"},
		// The 16450-mode holding register is overwritten.
		{"nofifo", 0, "j"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.outb(UART_FCR, c.fcr)
			h.outb(UART_MCR, UART_MCR_LOOP)
			for _, b := range []byte("0123456789abcdefghij") {
				h.outb(UART_TX, b)
			}
			lsr := h.inb(UART_LSR)
			if lsr&UART_LSR_OE == 0 {
				t.Errorf("LSR = %#02x after overrunning the receiver, want OE", lsr)
			}
			var got []byte
			for h.inb(UART_LSR)&UART_LSR_DR != 0 {
				got = append(got, h.inb(UART_RX))
			}
			if !bytes.Equal(got, []byte(c.want)) {
				t.Errorf("received %q, want %q", got, c.want)
			}
		})
	}
}
