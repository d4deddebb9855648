package vmm

import (
	"sync/atomic"
	"time"

	"github.com/tracevisor/tracevisor/vmm/bus"
	"github.com/tracevisor/tracevisor/vmm/devices/debugport"
	"github.com/tracevisor/tracevisor/vmm/devices/i8042"
	"github.com/tracevisor/tracevisor/vmm/devices/legacy"
	"github.com/tracevisor/tracevisor/vmm/devices/uart"
)

// Legacy PC resources the guest finds at fixed places.
const (
	com1Port  = 0x3f8
	com1Ports = 8
	com1IRQ   = 4
	i8042Data = 0x60
	i8042Cmd  = 0x64
	cmosPort  = 0x70
	cmosPorts = 2
	postPort  = 0x80 // POST codes; Linux's io_delay writes here
)

// maxUnhandledLogs bounds the log lines about accesses no device claims.
const maxUnhandledLogs = 32

// devices is the machine's device set.
type devices struct {
	uart      *uart.UART
	kbd       *i8042.Controller
	cmos      *legacy.CMOS
	debug     *debugport.Device
	unclaimed atomic.Int64
	m         *Machine
}

// attachDevices creates the legacy devices and the debug device and
// registers them on the buses.
func (m *Machine) attachDevices() (*devices, error) {
	d := &devices{m: m}
	d.uart = uart.New(&m.tap, func(level bool) {
		if err := m.vm.IRQLine(com1IRQ, level); err != nil {
			m.logf("COM1 IRQ %d: %v", com1IRQ, err)
		}
	})
	switch {
	case m.cfg.ConsoleIn == nil:
	case m.console != nil:
		go m.console.ReadFrom(m.cfg.ConsoleIn)
	default:
		go d.uart.ReadFrom(m.cfg.ConsoleIn)
	}
	d.kbd = i8042.New(func() { m.end(m.refine(Ending{Kind: EndReset, Reason: "guest reset (i8042 reset pulse)"})) })
	d.cmos = legacy.NewCMOS(time.Now)
	d.debug = debugport.New(debugport.Callbacks{
		Event: func(ev debugport.Event, t time.Time) {
			if ev == debugport.EventInitStart { // the boot timer; CMD_START is not used yet
				m.events.recordInit(t)
			}
		},
		ExitStatus: func(status uint32) { m.events.recordStatus(int(status)) },
	}, time.Now)
	for _, r := range []struct {
		name       string
		base, size uint64
		dev        bus.Device
	}{
		{"com1", com1Port, com1Ports, d.uart},
		{"i8042-data", i8042Data, 1, d.kbd.Data()},
		{"i8042-command", i8042Cmd, 1, d.kbd.Command()},
		{"cmos", cmosPort, cmosPorts, d.cmos},
		{"post", postPort, 1, legacy.Sink{}},
	} {
		if err := m.pio.Register(r.name, r.base, r.size, r.dev); err != nil {
			return nil, err
		}
	}
	if err := m.mmio.Register("tracevisor-debug", debugport.Base, debugport.Size, d.debug); err != nil {
		return nil, err
	}
	return d, nil
}

// unhandled logs the first accesses no device claims; the guest probes many
// legacy ports that do not exist, which is normal.
func (d *devices) unhandled(space string, err error) {
	if n := d.unclaimed.Add(1); n <= maxUnhandledLogs {
		d.m.logf("%s: %v", space, err)
	}
}
