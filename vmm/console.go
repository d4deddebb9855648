package vmm

import (
	"bytes"
	"io"
	"sync"
)

// panicMarker starts the line Linux prints when it panics.
const panicMarker = "Kernel panic - not syncing: "

// consoleTap passes the guest console through to w and remembers the first
// kernel panic message it sees, so that the reset a panic causes (panic=-1)
// can be reported as the panic it was.
type consoleTap struct {
	w io.Writer

	mu       sync.Mutex
	line     []byte
	panicMsg string
}

const maxTapLine = 512

func (t *consoleTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	for _, b := range p {
		if b == '\n' {
			t.scanLine()
			t.line = t.line[:0]
			continue
		}
		if len(t.line) < maxTapLine {
			t.line = append(t.line, b)
		}
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

func (t *consoleTap) scanLine() {
	if t.panicMsg != "" {
		return
	}
	if i := bytes.Index(t.line, []byte(panicMarker)); i >= 0 {
		t.panicMsg = string(bytes.TrimRight(t.line[i+len(panicMarker):], "\r"))
	}
}

// panicked returns the panic message, if the console showed one.
func (t *consoleTap) panicked() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.panicMsg == "" && bytes.Contains(t.line, []byte(panicMarker)) {
		t.scanLine()
	}
	return t.panicMsg, t.panicMsg != ""
}

// refine turns a reset or triple fault that followed a kernel panic on the
// console into EndPanic.
func (m *Machine) refine(e Ending) Ending {
	if e.Kind != EndReset && e.Kind != EndTripleFault {
		return e
	}
	if msg, ok := m.tap.panicked(); ok {
		return Ending{Kind: EndPanic, Reason: "guest kernel panic: " + msg}
	}
	return e
}
