package i8042

import "fmt"

// State is what the controller holds that the guest can observe, for a
// snapshot of a paused guest (issue 12). It is a plain value that encodes
// to JSON. The status register is derived from it: I8042_STR_OBF while
// OutFull, I8042_STR_IBF never. The controller drives no interrupt line.
type State struct {
	// CTR is the configuration ("command") byte.
	CTR byte `json:"ctr"`
	// Out is the reply in the output buffer; 0 while it is empty.
	Out byte `json:"out"`
	// OutFull is I8042_STR_OBF: a reply waits to be read.
	OutFull bool `json:"out_full"`
	// PendingCommand is the command awaiting its parameter byte on the data
	// port: I8042_CMD_CTL_WCTR, or 0 for none.
	PendingCommand byte `json:"pending_command"`
}

// State returns the controller's state. Call it with the guest's vCPUs
// paused. A reply the guest has read is not kept: Out is 0 unless OutFull.
func (c *Controller) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := State{CTR: c.ctr, OutFull: c.outFull}
	if c.outFull {
		s.Out = c.out
	}
	if c.wantCTR {
		s.PendingCommand = I8042_CMD_CTL_WCTR
	}
	return s
}

// Validate reports whether s is a state the controller can be in: the only
// command that awaits a parameter is I8042_CMD_CTL_WCTR, and an empty
// output buffer holds no byte.
func (s State) Validate() error {
	switch {
	case s.PendingCommand != 0 && s.PendingCommand != I8042_CMD_CTL_WCTR:
		return fmt.Errorf("i8042: state: command %#02x pending, only %#02x (write CTR) awaits a parameter",
			s.PendingCommand, I8042_CMD_CTL_WCTR)
	case !s.OutFull && s.Out != 0:
		return fmt.Errorf("i8042: state: output buffer empty but holding %#02x", s.Out)
	}
	return nil
}

// Restore puts the controller in state s, which Validate must accept; a
// refused state leaves the controller unchanged.
func (c *Controller) Restore(s State) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctr, c.out, c.outFull = s.CTR, s.Out, s.OutFull
	c.wantCTR = s.PendingCommand == I8042_CMD_CTL_WCTR
	return nil
}
