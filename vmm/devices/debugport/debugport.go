// Package debugport emulates the tracevisor debug device: one MMIO page
// through which the guest's init reports when it started and how the command
// it ran ended (guest-kernel/include/tracevisor_debug.h).
//
// The page is registered on the MMIO bus at Base for Size bytes. Only 4-byte
// accesses at the defined offsets do anything: a read of RegMagic, a write
// to RegEvent or RegExitStatus. Any other access is ignored (a read returns
// zeros), counted and passed to Callbacks.Ignored.
package debugport

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Callbacks receive what the guest reports. Any of them may be nil. They run
// on the vCPU thread that made the access, possibly on several at once, and
// hold up that vCPU until they return.
type Callbacks struct {
	// Event receives each event code written to RegEvent, with the time it
	// arrived.
	Event func(ev Event, at time.Time)
	// ExitStatus receives each value written to RegExitStatus.
	ExitStatus func(status uint32)
	// Ignored receives each access the device ignored.
	Ignored func(a Access)
}

// Access describes one guest access to the page.
type Access struct {
	Offset uint64 // from Base
	Size   int    // in bytes
	Write  bool
}

// Device is the debug page. It implements bus.Device and is safe for
// concurrent use.
type Device struct {
	cb      Callbacks
	now     func() time.Time
	ignored atomic.Uint64
}

// New returns the device. now timestamps events; nil means time.Now.
func New(cb Callbacks, now func() time.Time) *Device {
	if now == nil {
		now = time.Now
	}
	return &Device{cb: cb, now: now}
}

// IgnoredAccesses returns how many accesses the device has ignored.
func (d *Device) IgnoredAccesses() uint64 { return d.ignored.Load() }

// Read implements bus.Device.
func (d *Device) Read(offset uint64, data []byte) {
	clear(data)
	if offset != RegMagic || len(data) != regWidth {
		d.ignore(Access{Offset: offset, Size: len(data)})
		return
	}
	binary.LittleEndian.PutUint32(data, MagicValue)
}

// Write implements bus.Device.
func (d *Device) Write(offset uint64, data []byte) {
	if len(data) != regWidth {
		d.ignore(Access{Offset: offset, Size: len(data), Write: true})
		return
	}
	v := binary.LittleEndian.Uint32(data)
	switch offset {
	case RegEvent:
		at := d.now()
		if d.cb.Event != nil {
			d.cb.Event(Event(v), at)
		}
	case RegExitStatus:
		if d.cb.ExitStatus != nil {
			d.cb.ExitStatus(v)
		}
	default:
		d.ignore(Access{Offset: offset, Size: len(data), Write: true})
	}
}

func (d *Device) ignore(a Access) {
	d.ignored.Add(1)
	if d.cb.Ignored != nil {
		d.cb.Ignored(a)
	}
}
