package uart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestInputIsBounded(t *testing.T) {
	h := newHarness(t)
	in := []byte("0123456789abcdefghij")
	if n := h.u.Input(in); n != 0 {
		t.Errorf("Input took %d bytes before the guest enabled receive interrupts, want 0", n)
	}
	h.outb(UART_IER, UART_IER_RDI)
	if n := h.u.Input(in); n != 1 {
		t.Errorf("Input took %d bytes with the FIFO disabled, want 1", n)
	}
	h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	if n := h.u.Input(in); n != FIFOSize {
		t.Errorf("Input took %d bytes into an empty FIFO, want %d", n, FIFOSize)
	}
	if n := h.u.Input(in); n != 0 {
		t.Errorf("Input took %d bytes into a full FIFO, want 0", n)
	}
	if lsr := h.inb(UART_LSR); lsr&UART_LSR_OE != 0 {
		t.Errorf("LSR = %#02x: host input overran the receiver", lsr)
	}
	h.inb(UART_RX)
	if n := h.u.Input(in[FIFOSize:]); n != 1 {
		t.Errorf("Input took %d bytes after one was read, want 1", n)
	}
	var got []byte
	for h.inb(UART_LSR)&UART_LSR_DR != 0 {
		got = append(got, h.inb(UART_RX))
	}
	if want := in[1 : FIFOSize+1]; !bytes.Equal(got, want) {
		t.Errorf("received %q, want %q", got, want)
	}
}

// guest drains a UART from its own goroutine the way Linux's interrupt
// handler does: on each rising edge of the line, read while LSR.DR.
type guest struct {
	h    *harness
	wake chan struct{}
}

// newGuest returns a harness whose irq pokes wake on each rising edge. The
// harness's irqs are not recorded.
func newGuest(t *testing.T) *guest {
	g := &guest{wake: make(chan struct{}, 1)}
	g.h = &harness{t: t}
	g.h.u = New(&g.h.out, func(level bool) {
		if level {
			select {
			case g.wake <- struct{}{}:
			default:
			}
		}
	})
	g.h.outb(UART_FCR, UART_FCR_ENABLE_FIFO)
	g.h.outb(UART_MCR, UART_MCR_OUT2)
	g.h.outb(UART_IER, UART_IER_RDI)
	return g
}

// receive reads n bytes, waiting for interrupts while the receiver is empty.
func (g *guest) receive(n int) []byte {
	var got []byte
	for len(got) < n {
		if g.h.inb(UART_LSR)&UART_LSR_DR != 0 {
			got = append(got, g.h.inb(UART_RX))
			continue
		}
		select {
		case <-g.wake:
		case <-time.After(10 * time.Second):
			panic(fmt.Sprintf("uart test: no receive interrupt in 10 s after %d of %d bytes", len(got), n))
		}
	}
	return got
}

// ReadFrom delivers everything, in order, through a receiver smaller than
// the input, and never overruns it.
func TestReadFromWaitsForRoom(t *testing.T) {
	g := newGuest(t)
	in := strings.Repeat("The quick brown fox. ", 10)
	done := make(chan error, 1)
	go func() {
		n, err := g.h.u.ReadFrom(strings.NewReader(in))
		if err == nil && n != int64(len(in)) {
			err = errors.New("short count")
		}
		done <- err
	}()
	got := g.receive(len(in))
	if string(got) != in {
		t.Errorf("received %q, want %q", got, in)
	}
	if err := <-done; err != nil {
		t.Errorf("ReadFrom: %v", err)
	}
	if lsr := g.h.inb(UART_LSR); lsr&(UART_LSR_OE|UART_LSR_DR) != 0 {
		t.Errorf("LSR = %#02x at the end, want neither OE nor DR", lsr)
	}
}

// In loopback mode host input waits, and flows once loopback ends.
func TestReadFromWaitsOutLoopback(t *testing.T) {
	g := newGuest(t)
	g.h.outb(UART_MCR, UART_MCR_LOOP)
	done := make(chan error, 1)
	go func() {
		_, err := g.h.u.ReadFrom(strings.NewReader("late"))
		done <- err
	}()
	g.h.outb(UART_TX, 'x')
	if got := g.h.inb(UART_RX); got != 'x' {
		t.Fatalf("RX = %q in loopback, want the looped-back 'x'", got)
	}
	g.h.outb(UART_MCR, UART_MCR_OUT2)
	if got := g.receive(len("late")); string(got) != "late" {
		t.Errorf("received %q after loopback, want %q", got, "late")
	}
	if err := <-done; err != nil {
		t.Errorf("ReadFrom: %v", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadFromReturnsReaderError(t *testing.T) {
	u := New(io.Discard, nil)
	want := errors.New("boom")
	if _, err := u.ReadFrom(failingReader{want}); err != want {
		t.Errorf("ReadFrom = %v, want %v", err, want)
	}
}

func TestCloseStopsReadFrom(t *testing.T) {
	u := New(io.Discard, nil)
	u.Input([]byte("x")) // the 16450-mode receiver is now full
	done := make(chan error, 1)
	go func() {
		_, err := u.ReadFrom(strings.NewReader("more"))
		done <- err
	}()
	u.Close()
	if err := <-done; err != ErrClosed {
		t.Errorf("ReadFrom after Close = %v, want ErrClosed", err)
	}
	if _, err := u.ReadFrom(strings.NewReader("")); err != ErrClosed {
		t.Errorf("ReadFrom on a closed UART = %v, want ErrClosed", err)
	}
}
