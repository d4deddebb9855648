// Package i8042 emulates as much of the PC's PS/2 keyboard controller as a
// guest needs to reset the machine through it: Linux's reboot=k path
// (arch/x86/kernel/reboot.c) waits for the controller's input buffer to
// drain, then writes the pulse-reset command to the command port.
//
// There is no keyboard or mouse behind it and no interrupt. Besides the
// reset, the controller answers the commands that read and write its
// configuration byte and its self-test, so that a driver probing it gets
// consistent replies instead of timeouts; every other command, and data
// meant for a device, is accepted and ignored.
//
// The controller decodes two ports, which are not contiguous (0x61, between
// them, is the PC's system control port): register Controller.Data at
// I8042_DATA_REG and Controller.Command at I8042_COMMAND_REG, one port each.
package i8042

import (
	"sync"

	"github.com/tracevisor/tracevisor/vmm/bus"
)

// Ports, as in Linux's drivers/input/serio/i8042-io.h.
const (
	// I8042_DATA_REG is the data port: replies are read and command
	// parameters written here.
	I8042_DATA_REG = 0x60
	// I8042_COMMAND_REG is the command port, written.
	I8042_COMMAND_REG = 0x64
	// I8042_STATUS_REG is the status port, read at the command port's
	// address.
	I8042_STATUS_REG = 0x64
)

// Status register bits, as in Linux's include/linux/i8042.h.
const (
	// I8042_STR_OBF is set while a reply waits in the output buffer.
	I8042_STR_OBF = 0x01
	// I8042_STR_IBF is set while the controller has not yet taken the last
	// byte written; it never is here.
	I8042_STR_IBF = 0x02
)

// Configuration ("command") byte bits, as in Linux's include/linux/i8042.h.
const (
	// I8042_CTR_KBDINT enables the keyboard interrupt.
	I8042_CTR_KBDINT = 0x01
	// I8042_CTR_AUXINT enables the auxiliary (mouse) interrupt.
	I8042_CTR_AUXINT = 0x02
	// I8042_CTR_KBDDIS disables the keyboard interface.
	I8042_CTR_KBDDIS = 0x10
	// I8042_CTR_AUXDIS disables the auxiliary interface.
	I8042_CTR_AUXDIS = 0x20
	// I8042_CTR_XLATE enables scancode translation.
	I8042_CTR_XLATE = 0x40
)

// Controller commands, written to I8042_COMMAND_REG. Linux's
// include/linux/i8042.h encodes parameter and reply counts above the command
// byte (I8042_CMD_CTL_RCTR is 0x0120); these are the command bytes alone.
const (
	// I8042_CMD_CTL_RCTR reads the configuration byte: one reply.
	I8042_CMD_CTL_RCTR = 0x20
	// I8042_CMD_CTL_WCTR writes the configuration byte: one parameter.
	I8042_CMD_CTL_WCTR = 0x60
	// I8042_CMD_CTL_TEST runs the controller self-test: one reply,
	// I8042_RET_CTL_TEST when it passes.
	I8042_CMD_CTL_TEST = 0xaa
	// I8042_CMD_PULSE_RESET pulses output port bit 0, the CPU reset line.
	// Linux writes it as a bare 0xfe in arch/x86/kernel/reboot.c.
	I8042_CMD_PULSE_RESET = 0xfe
)

// I8042_RET_CTL_TEST is the reply to a passing I8042_CMD_CTL_TEST.
const I8042_RET_CTL_TEST = 0x55

// defaultCTR is the configuration byte at reset: translation on, both
// interfaces disabled (nothing is attached), no interrupts.
const defaultCTR = I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_KBDDIS

// Controller is the emulated i8042. Its methods are safe for concurrent use.
type Controller struct {
	reset func()

	mu      sync.Mutex
	ctr     byte // configuration byte
	out     byte // reply waiting in the output buffer
	outFull bool // I8042_STR_OBF
	wantCTR bool // I8042_CMD_CTL_WCTR awaits its parameter
}

// New returns a controller that calls reset each time the guest pulses the
// reset line. reset runs on the vCPU thread that wrote the command, without
// the controller's lock held; it must not wait for that vCPU to stop, and
// should tolerate repeats: Linux issues the command up to ten times while
// waiting to be reset.
func New(reset func()) *Controller {
	return &Controller{reset: reset, ctr: defaultCTR}
}

// Data returns the device for I8042_DATA_REG, one port wide.
func (c *Controller) Data() bus.Device { return dataPort{c} }

// Command returns the device for I8042_COMMAND_REG (and I8042_STATUS_REG),
// one port wide.
func (c *Controller) Command() bus.Device { return commandPort{c} }

// dataPort is the controller seen at I8042_DATA_REG.
type dataPort struct{ c *Controller }

// Read returns the waiting reply, emptying the output buffer, or 0.
func (p dataPort) Read(offset uint64, data []byte) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(data)
	if len(data) > 0 && c.outFull {
		data[0] = c.out
		c.outFull = false
	}
}

// Write takes the parameter of the command that awaits one; other data,
// meant for a keyboard, is dropped.
func (p dataPort) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wantCTR {
		c.ctr = data[0]
		c.wantCTR = false
	}
}

// commandPort is the controller seen at I8042_COMMAND_REG.
type commandPort struct{ c *Controller }

// Read returns the status register.
func (p commandPort) Read(offset uint64, data []byte) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(data)
	if len(data) > 0 && c.outFull {
		data[0] = I8042_STR_OBF
	}
}

// Write executes a command.
func (p commandPort) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	if p.c.command(data[0]) && p.c.reset != nil {
		p.c.reset()
	}
}

// command executes cmd and reports whether it pulsed the reset line.
func (c *Controller) command(cmd byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wantCTR = false
	switch cmd {
	case I8042_CMD_CTL_RCTR:
		c.reply(c.ctr)
	case I8042_CMD_CTL_WCTR:
		c.wantCTR = true
	case I8042_CMD_CTL_TEST:
		c.reply(I8042_RET_CTL_TEST)
	case I8042_CMD_PULSE_RESET:
		return true
	}
	return false
}

// reply places v in the output buffer for the guest to read.
func (c *Controller) reply(v byte) {
	c.out, c.outFull = v, true
}
