package debugport

// State is what the debug device holds, for a snapshot of a paused guest
// (issue 12). It is a plain value that encodes to JSON. The device latches
// nothing the guest can read back (RegMagic is a constant; events and exit
// statuses go straight to the Callbacks, whose owner saves what it keeps of
// them) and drives no interrupt line; what it does hold is its count of
// ignored accesses, carried so the count runs on across a restore.
type State struct {
	// IgnoredAccesses is IgnoredAccesses' count.
	IgnoredAccesses uint64 `json:"ignored_accesses"`
}

// State returns the device's state.
func (d *Device) State() State {
	return State{IgnoredAccesses: d.ignored.Load()}
}

// Validate reports whether s is a state the device can be in. Every State
// is: the method is there so that a restore can check every device's state
// the same way before it restores any.
func (s State) Validate() error { return nil }

// Restore puts the device in state s. It never fails; it returns an error
// for the same shape as the other devices' Restore.
func (d *Device) Restore(s State) error {
	if err := s.Validate(); err != nil {
		return err
	}
	d.ignored.Store(s.IgnoredAccesses)
	return nil
}
