package probe

import "strconv"

// ParseSignal reads one signal as a number (1-63) or a name, with or
// without "SIG", in any case: "15", "TERM", "sigterm". Probe filters and
// fault injection share it.
func ParseSignal(s string) (int, error) { return parseSignal(s, false) }

// SignalName returns a signal's name without "SIG" ("TERM" for 15), or its
// number for signals without one (32-63) and out of range.
func SignalName(n int) string {
	if n > 0 && n < len(signalNames) && signalNames[n] != "" {
		return signalNames[n]
	}
	return strconv.Itoa(n)
}
