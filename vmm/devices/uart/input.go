package uart

import (
	"errors"
	"io"
)

// ErrClosed is returned by ReadFrom once Close has been called.
var ErrClosed = errors.New("uart: closed")

// Input queues as much of b as the receiver has room for and returns how
// many bytes it took. It never blocks: the bytes it did not take are the
// caller's to offer again (ReadFrom waits for room instead). In loopback mode
// the receiver is disconnected from the line and Input takes nothing.
func (u *UART) Input(b []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.queueInput(b)
	u.updateIRQ()
	return n
}

// ReadFrom copies r into the receiver until r reports an error or Close is
// called, and returns how many bytes it queued. When the receiver is full it
// waits for the guest to read from it, so no byte is dropped; the guest's
// reads pace r. io.EOF ends it with a nil error, Close with ErrClosed. Run it
// on a goroutine of its own: Close cannot interrupt a Read blocked inside r.
func (u *UART) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, FIFOSize)
	var total int64
	for {
		n, rerr := r.Read(buf)
		queued, err := u.inputWait(buf[:n])
		total += int64(queued)
		switch {
		case err != nil:
			return total, err
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// Close makes ReadFrom return ErrClosed instead of waiting for room or
// reading r again. The registers keep working.
func (u *UART) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	u.space.Broadcast()
}

// inputWait queues all of b, waiting for room as the guest drains the
// receiver, until the UART is closed.
func (u *UART) inputWait(b []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	done := 0
	for !u.closed {
		if done == len(b) {
			return done, nil
		}
		n := u.queueInput(b[done:])
		if n == 0 {
			u.space.Wait()
			continue
		}
		done += n
		u.updateIRQ()
	}
	return done, ErrClosed
}

// queueInput queues what fits of b and returns how much that was.
func (u *UART) queueInput(b []byte) int {
	n := min(len(b), u.rxRoom())
	for _, c := range b[:n] {
		u.rx.push(c)
	}
	return n
}

// rxCap is how many bytes the receiver holds: the FIFO, or the 16450-mode
// holding register alone.
func (u *UART) rxCap() int {
	if u.fifoEnabled {
		return FIFOSize
	}
	return 1
}

// rxRoom is how many bytes of host input the receiver takes now: none in
// loopback mode, and none while the guest has receive interrupts off.
//
// The second rule keeps host input until a guest driver is listening: Linux
// enables UART_IER_RDI when the port is first opened, after clearing the
// receive FIFO, so bytes offered earlier (a script piped into `vmm run`
// before the guest has booted) would otherwise be thrown away.
func (u *UART) rxRoom() int {
	if u.mcr&UART_MCR_LOOP != 0 || u.ier&UART_IER_RDI == 0 {
		return 0
	}
	return u.rxCap() - u.rx.len()
}
