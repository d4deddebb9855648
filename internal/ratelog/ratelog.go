// Package ratelog writes log lines whose number a guest controls (a
// malformed message, a rejected register write, a driver that says hello
// again) at a bounded rate. Counters elsewhere carry the truth; the log
// shows the first few of each burst and then how many lines it left out,
// so a hostile guest cannot flood the VMM's stderr.
package ratelog

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Default bounds: a burst of 10 lines, then one line a second.
const (
	DefaultBurst = 10
	DefaultEvery = time.Second
)

// Logger is a token bucket in front of a writer: Burst lines at once, then
// one more each Every. Lines beyond that are counted, and the next line
// written is preceded by how many were suppressed. Safe for concurrent use.
type Logger struct {
	w     io.Writer
	burst int
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64 // since the last line written
	total      uint64 // ever
}

// New returns a Logger writing to w (nil: discard), at most burst lines at
// once and one more each every. burst < 1 is taken as 1; every <= 0 as
// DefaultEvery.
func New(w io.Writer, burst int, every time.Duration) *Logger {
	if w == nil {
		w = io.Discard
	}
	if burst < 1 {
		burst = 1
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Logger{w: w, burst: burst, every: every, now: time.Now, tokens: float64(burst)}
}

// Default returns New(w, DefaultBurst, DefaultEvery).
func Default(w io.Writer) *Logger { return New(w, DefaultBurst, DefaultEvery) }

// Printf writes one line (a newline is added when format lacks one) if the
// bucket allows, and reports whether it did.
func (l *Logger) Printf(format string, args ...any) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if !l.last.IsZero() {
		l.tokens += float64(t.Sub(l.last)) / float64(l.every)
		if l.tokens > float64(l.burst) {
			l.tokens = float64(l.burst)
		}
	}
	l.last = t
	if l.tokens < 1 {
		l.suppressed++
		l.total++
		return false
	}
	l.tokens--
	if l.suppressed > 0 {
		fmt.Fprintf(l.w, "(%d similar log lines suppressed)\n", l.suppressed)
		l.suppressed = 0
	}
	line := fmt.Sprintf(format, args...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line += "\n"
	}
	io.WriteString(l.w, line)
	return true
}

// Suppressed returns how many lines were left out, ever.
func (l *Logger) Suppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
