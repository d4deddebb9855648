package probe

// ParseSignal reads one signal as a number (1-63) or a name, with or
// without "SIG", in any case: "15", "TERM", "sigterm". Probe filters and
// fault injection share it.
func ParseSignal(s string) (int, error) { return parseSignal(s, false) }
