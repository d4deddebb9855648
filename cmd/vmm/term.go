package main

import (
	"bytes"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/vmm"
	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// isPipe reports whether f is a pipe or a socket: input that someone
// feeds on purpose, unlike /dev/null.
func isPipe(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// makeRaw puts the terminal in raw mode so keys reach the guest as typed
// (Ctrl-C included); the returned function restores it.
func makeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }) }, nil
}

// escapeCtrlA starts the host escape: Ctrl-A x stops the guest, Ctrl-A
// Ctrl-A sends one Ctrl-A.
const escapeCtrlA = 0x01

// escapeReader passes terminal input to the guest and watches for Ctrl-A x.
// machine is set once the VM exists; the input goroutine, already running
// by then, reads it.
type escapeReader struct {
	r       io.Reader
	machine atomic.Pointer[vmm.Machine]
	pending bool
}

func (e *escapeReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	out := p[:0]
	for _, b := range p[:n] {
		switch {
		case e.pending && b == 'x':
			if m := e.machine.Load(); m != nil {
				m.Stop("stopped from the console (Ctrl-A x)")
			}
			e.pending = false
		case e.pending:
			e.pending = false
			out = append(out, b)
		case b == escapeCtrlA:
			e.pending = true
		default:
			out = append(out, b)
		}
	}
	return len(out), err
}

// crlfFilter drops the carriage returns the guest tty adds before each
// newline, for output going to a pipe or file.
type crlfFilter struct {
	w   io.Writer
	cr  bool
	buf bytes.Buffer
}

func (c *crlfFilter) Write(p []byte) (int, error) {
	c.buf.Reset()
	for _, b := range p {
		if c.cr && b != '\n' {
			c.buf.WriteByte('\r')
		}
		c.cr = b == '\r'
		if !c.cr {
			c.buf.WriteByte(b)
		}
	}
	if _, err := c.w.Write(c.buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stopOnSignals stops the guest on SIGINT/SIGTERM/SIGHUP so the terminal is
// restored and the exit code says what happened.
func stopOnSignals(m *vmm.Machine) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	go func() {
		s := <-ch
		m.Stop("stopped by signal " + s.String())
	}()
}
