package wire

import "fmt"

// Detach disarms probe ID (TVP_CMD_DETACH, struct tvp_detach). The guest
// replies with a Reply echoing Seq.
type Detach struct {
	Seq uint32
	ID  uint32 // nonzero
}

// Type implements Message.
func (Detach) Type() MsgType { return CmdDetach }

func (d Detach) validate() error {
	if d.ID == 0 {
		return fmt.Errorf("%w: detach: probe id 0", ErrField)
	}
	return nil
}

// MarshalBinary implements Message.
func (d Detach) MarshalBinary() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	b := newMsg(CmdDetach, DetachSize, d.Seq)
	le.PutUint32(b[offDetachID:], d.ID)
	return b, nil
}

// StatsRequest asks for every armed probe's counters (TVP_CMD_STATS, a
// bare header). The guest answers with Stats messages echoing Seq.
type StatsRequest struct {
	Seq uint32
}

// Type implements Message.
func (StatsRequest) Type() MsgType { return CmdStats }

// MarshalBinary implements Message.
func (s StatsRequest) MarshalBinary() ([]byte, error) {
	return newMsg(CmdStats, StatsRequestSize, s.Seq), nil
}

// Inject asks the guest driver to inject a fault (TVP_CMD_INJECT, struct
// tvp_inject). The guest replies with a Reply (id 0) before a panic or a
// hang starts.
type Inject struct {
	Seq  uint32
	Kind InjectKind
	Arg  uint32 // InjectSignal: the signal; InjectHang: the CPU
	Arg2 uint32 // InjectHang, InjectStall: seconds
	Comm string // InjectSignal: the processes' comm; at most CommLen bytes
}

// Type implements Message.
func (Inject) Type() MsgType { return CmdInject }

func (in Inject) validate() error {
	if !in.Kind.Valid() {
		return fmt.Errorf("%w: inject: kind %d", ErrEnum, in.Kind)
	}
	return checkString("inject comm", in.Comm, CommLen, nulUnlessFull)
}

// MarshalBinary implements Message.
func (in Inject) MarshalBinary() ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	b := newMsg(CmdInject, InjectSize, in.Seq)
	le.PutUint16(b[offInjectKind:], uint16(in.Kind))
	le.PutUint32(b[offInjectArg:], in.Arg)
	le.PutUint32(b[offInjectArg2:], in.Arg2)
	putString(b[offInjectComm:offInjectComm+CommLen], in.Comm)
	return b, nil
}

func decodeInject(b []byte) (Inject, error) {
	in := Inject{Seq: seqOf(b), Kind: InjectKind(le.Uint16(b[offInjectKind:])),
		Arg: le.Uint32(b[offInjectArg:]), Arg2: le.Uint32(b[offInjectArg2:])}
	var err error
	in.Comm, err = getString("inject comm", b[offInjectComm:offInjectComm+CommLen], nulUnlessFull)
	return in, err
}

// Config is the device's configuration space (struct tvp_config). It is
// read by the driver, not sent as a message.
type Config struct {
	Version  uint32 // Version
	BootCmds uint32 // commands queued on the loader before DRIVER_OK
}

// MarshalBinary returns the config space's ConfigSize bytes.
func (c Config) MarshalBinary() ([]byte, error) {
	b := make([]byte, ConfigSize)
	le.PutUint32(b[offConfigVersion:], c.Version)
	le.PutUint32(b[offConfigBootCmds:], c.BootCmds)
	return b, nil
}
