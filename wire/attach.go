package wire

import "fmt"

// Pred is a predicate on a captured arg (struct tvp_pred): the event passes
// when Regs[Arg] <Op> Value holds.
type Pred struct {
	Arg   uint8 // index into the probe's captured args
	Op    Op
	Value uint64
}

// Attach arms probe ID (TVP_CMD_ATTACH, struct tvp_attach). The guest
// replies with a Reply echoing Seq.
type Attach struct {
	Seq     uint32
	ID      uint32 // chosen by the host: nonzero, unique among armed probes
	Kind    Kind
	Class   Class
	Offset  uint32 // from Symbol; 0 for a kretprobe
	Rate    uint32 // events per second delivered at most; 0: no limit
	PID     uint32 // subject's tgid; 0: any
	Regs    []Reg  // captured args, at most MaxArgs
	Preds   []Pred // at most MaxPreds
	SigMask uint64 // bit N: signal N passes; 0: all. Only for classes with a signal
	Symbol  string // at most SymbolLen-1 bytes; required for kprobes
	Comm    string // subject's comm; "": any. At most CommLen bytes
}

// Type implements Message.
func (Attach) Type() MsgType { return CmdAttach }

func (a Attach) validate() error {
	switch {
	case a.ID == 0:
		return fmt.Errorf("%w: attach: probe id 0", ErrField)
	case !a.Kind.Valid():
		return fmt.Errorf("%w: attach: kind %d", ErrEnum, a.Kind)
	case !a.Class.Valid():
		return fmt.Errorf("%w: attach: class %d", ErrEnum, a.Class)
	case len(a.Regs) > MaxArgs:
		return fmt.Errorf("%w: attach: %d args, at most %d", ErrCount, len(a.Regs), MaxArgs)
	case len(a.Preds) > MaxPreds:
		return fmt.Errorf("%w: attach: %d predicates, at most %d", ErrCount, len(a.Preds), MaxPreds)
	case a.Kind == KindKretprobe && a.Offset != 0:
		return fmt.Errorf("%w: attach: kretprobe with offset %#x", ErrField, a.Offset)
	case (a.Kind == KindKprobe || a.Kind == KindKretprobe) && a.Symbol == "":
		return fmt.Errorf("%w: attach: %s without a symbol", ErrField, a.Kind)
	case a.SigMask != 0 && !a.Class.HasSignal():
		return fmt.Errorf("%w: attach: signal mask on class %s, which has no signal", ErrField, a.Class)
	}
	for i, r := range a.Regs {
		if !r.Valid() {
			return fmt.Errorf("%w: attach: arg %d register %d", ErrEnum, i, r)
		}
	}
	for i, p := range a.Preds {
		if !p.Op.Valid() {
			return fmt.Errorf("%w: attach: predicate %d operator %d", ErrEnum, i, p.Op)
		}
		if int(p.Arg) >= len(a.Regs) {
			return fmt.Errorf("%w: attach: predicate %d on arg %d of %d", ErrField, i, p.Arg, len(a.Regs))
		}
	}
	if err := checkString("attach symbol", a.Symbol, SymbolLen, nulRequired); err != nil {
		return err
	}
	return checkString("attach comm", a.Comm, CommLen, nulUnlessFull)
}

// MarshalBinary implements Message.
func (a Attach) MarshalBinary() ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	b := newMsg(CmdAttach, AttachSize, a.Seq)
	le.PutUint32(b[offAttachID:], a.ID)
	le.PutUint16(b[offAttachKind:], uint16(a.Kind))
	le.PutUint16(b[offAttachClass:], uint16(a.Class))
	le.PutUint32(b[offAttachOffset:], a.Offset)
	le.PutUint32(b[offAttachRate:], a.Rate)
	le.PutUint32(b[offAttachPID:], a.PID)
	b[offAttachNArgs] = uint8(len(a.Regs))
	b[offAttachNPreds] = uint8(len(a.Preds))
	for i, r := range a.Regs {
		b[offAttachRegs+i] = uint8(r)
	}
	le.PutUint64(b[offAttachSigMask:], a.SigMask)
	putString(b[offAttachSymbol:offAttachSymbol+SymbolLen], a.Symbol)
	putString(b[offAttachComm:offAttachComm+CommLen], a.Comm)
	for i, p := range a.Preds {
		o := offAttachPreds + i*PredSize
		b[o+offPredArg] = p.Arg
		b[o+offPredOp] = uint8(p.Op)
		le.PutUint64(b[o+offPredValue:], p.Value)
	}
	return b, nil
}

func decodeAttach(b []byte) (Attach, error) {
	a := Attach{
		Seq:     seqOf(b),
		ID:      le.Uint32(b[offAttachID:]),
		Kind:    Kind(le.Uint16(b[offAttachKind:])),
		Class:   Class(le.Uint16(b[offAttachClass:])),
		Offset:  le.Uint32(b[offAttachOffset:]),
		Rate:    le.Uint32(b[offAttachRate:]),
		PID:     le.Uint32(b[offAttachPID:]),
		SigMask: le.Uint64(b[offAttachSigMask:]),
	}
	nargs, npreds := int(b[offAttachNArgs]), int(b[offAttachNPreds])
	if nargs > MaxArgs || npreds > MaxPreds {
		return a, fmt.Errorf("%w: attach: nargs %d, npreds %d", ErrCount, nargs, npreds)
	}
	for i := 0; i < nargs; i++ {
		a.Regs = append(a.Regs, Reg(b[offAttachRegs+i]))
	}
	for i := 0; i < npreds; i++ {
		o := offAttachPreds + i*PredSize
		a.Preds = append(a.Preds, Pred{Arg: b[o+offPredArg], Op: Op(b[o+offPredOp]),
			Value: le.Uint64(b[o+offPredValue:])})
	}
	var err error
	if a.Symbol, err = getString("attach symbol", b[offAttachSymbol:offAttachSymbol+SymbolLen], nulRequired); err != nil {
		return a, err
	}
	a.Comm, err = getString("attach comm", b[offAttachComm:offAttachComm+CommLen], nulUnlessFull)
	return a, err
}
