// Package legacy holds small PC devices that a Linux guest touches while it
// boots: a sink for the POST port and the CMOS real-time clock.
package legacy

// POSTPort is the PC's POST diagnostic port. Linux writes to it to pace slow
// port I/O (arch/x86/kernel/io_delay.c, the *_p accessors); register a Sink
// there, one port wide.
const POSTPort = 0x80

// Sink is a device that drops writes and reads as all ones, like a port
// nothing decodes, but without the access being reported as unhandled. It
// has no state: the zero value is ready and safe for concurrent use.
type Sink struct{}

// Read implements bus.Device: every byte reads as 0xff.
func (Sink) Read(offset uint64, data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}

// Write implements bus.Device: the data is dropped.
func (Sink) Write(offset uint64, data []byte) {}
