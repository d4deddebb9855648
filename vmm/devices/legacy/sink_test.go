package legacy

import (
	"bytes"
	"testing"

	"github.com/tracevisor/tracevisor/vmm/bus"
)

var (
	_ bus.Device = Sink{}
	_ bus.Device = (*CMOS)(nil)
)

func TestSink(t *testing.T) {
	var io bus.Bus
	if err := io.Register("post", POSTPort, 1, Sink{}); err != nil {
		t.Fatal(err)
	}
	// Linux's io_delay writes, then anything else a guest might do.
	if err := io.Write(POSTPort, []byte{0}); err != nil {
		t.Errorf("write to the POST port: %v", err)
	}
	b := []byte{0}
	if err := io.Read(POSTPort, b); err != nil {
		t.Errorf("read from the POST port: %v", err)
	}
	if b[0] != 0xff {
		t.Errorf("POST port reads %#02x, want 0xff", b[0])
	}
	// A write leaves nothing behind to read.
	var s Sink
	s.Write(0, []byte{0x12, 0x34})
	wide := make([]byte, 4)
	s.Read(0, wide)
	if !bytes.Equal(wide, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("4-byte read = % x, want ff ff ff ff", wide)
	}
}
