package uart

// FIFOSize is the depth of the 16550A's receive FIFO. With the FIFOs
// disabled the receiver holds a single byte, as the 16450 did.
const FIFOSize = 16

// rxFIFO is the receiver's queue of bytes not yet read through UART_RX.
type rxFIFO struct {
	buf  [FIFOSize]byte
	head int // index of the oldest byte
	n    int // bytes queued
}

func (f *rxFIFO) len() int { return f.n }

func (f *rxFIFO) clear() { f.head, f.n = 0, 0 }

// push appends b; the caller has checked there is room.
func (f *rxFIFO) push(b byte) {
	f.buf[(f.head+f.n)%FIFOSize] = b
	f.n++
}

// pop removes and returns the oldest byte, or 0 when empty.
func (f *rxFIFO) pop() byte {
	if f.n == 0 {
		return 0
	}
	b := f.buf[f.head]
	f.head = (f.head + 1) % FIFOSize
	f.n--
	return b
}

// replaceNewest overwrites the most recently pushed byte, as a 16450-mode
// receiver's holding register is overwritten on overrun.
func (f *rxFIFO) replaceNewest(b byte) {
	f.buf[(f.head+f.n-1)%FIFOSize] = b
}
