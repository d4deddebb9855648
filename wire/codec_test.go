package wire

import (
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func mustMarshal(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("%#v: %v", m, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	msgs := append([]Message{}, goOnlySamples...)
	for _, m := range cSamples {
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		b := mustMarshal(t, m)
		if got := int(le.Uint16(b[offHdrLen:])); got != len(b) {
			t.Errorf("%T: hdr.len %d, %d bytes", m, got, len(b))
		}
		// A buffer longer than the message (a whole loader buffer) decodes too.
		buf := make([]byte, BufSize)
		copy(buf, b)
		d, err := Decode(buf)
		if err != nil {
			t.Errorf("%T: Decode: %v", m, err)
			continue
		}
		if e, ok := m.(Event); ok && len(e.Args) < MaxArgs {
			e.Args = append(e.Args, make([]uint64, MaxArgs-len(e.Args))...)
			m = e
		}
		if !reflect.DeepEqual(d, m) {
			t.Errorf("round trip:\n got %#v\nwant %#v", d, m)
		}
	}
}

// patch returns a copy of b with p written at off.
func patch(b []byte, off int, p ...byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:], p)
	return c
}

func TestDecodeErrors(t *testing.T) {
	attach := mustMarshal(t, cSamples["attach_signal"])
	panicAttach := mustMarshal(t, cSamples["attach_panic"])
	stats := mustMarshal(t, cSamples["stats"])
	event := mustMarshal(t, cSamples["event_signal"])
	reply := mustMarshal(t, cSamples["reply_ok"])
	hello := mustMarshal(t, cSamples["hello"])
	inject := mustMarshal(t, cSamples["inject_signal"])
	detach := mustMarshal(t, cSamples["detach"])
	noNUL := []byte(strings.Repeat("s", SymbolLen))
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", attach[:HdrSize-1], ErrTruncated},
		{"buffer shorter than len", attach[:AttachSize-1], ErrTruncated},
		{"unknown type", patch(attach, offHdrType, 0x05, 0), ErrUnknownType},
		{"type 0", make([]byte, 16), ErrUnknownType},
		{"len too small", patch(attach, offHdrLen, AttachSize-8, 0), ErrLength},
		{"len too big", patch(detach, offHdrLen, DetachSize+8, 0), ErrLength},
		{"attach id 0", patch(attach, offAttachID, 0, 0, 0, 0), ErrField},
		{"attach kind 0", patch(attach, offAttachKind, 0, 0), ErrEnum},
		{"attach kind 5", patch(attach, offAttachKind, 5, 0), ErrEnum},
		{"attach class 8", patch(attach, offAttachClass, 8, 0), ErrEnum},
		{"attach nargs 7", patch(attach, offAttachNArgs, MaxArgs+1), ErrCount},
		{"attach npreds 3", patch(attach, offAttachNPreds, MaxPreds+1), ErrCount},
		{"attach reg 9", patch(attach, offAttachRegs+1, 9), ErrEnum},
		{"attach op 0", patch(attach, offAttachPreds+offPredOp, 0), ErrEnum},
		{"attach op 8", patch(attach, offAttachPreds+offPredOp, 8), ErrEnum},
		{"attach pred on missing arg", patch(attach, offAttachPreds+offPredArg, 3), ErrField},
		{"attach symbol without NUL", patch(attach, offAttachSymbol, noNUL...), ErrNoNUL},
		{"kprobe without symbol", patch(attach, offAttachSymbol, 0), ErrField},
		{"kretprobe with offset", patch(attach, offAttachKind, byte(KindKretprobe), 0), ErrField},
		{"sig mask on generic", patch(attach, offAttachClass, byte(ClassGeneric), 0), ErrField},
		{"detach id 0", patch(detach, offDetachID, 0, 0, 0, 0), ErrField},
		{"inject kind 0", patch(inject, offInjectKind, 0, 0), ErrEnum},
		{"hello clock 0", patch(hello, offHelloClock, 0, 0), ErrEnum},
		{"hello clock 3", patch(hello, offHelloClock, 3, 0), ErrEnum},
		{"reply status positive", patch(reply, offReplyStatus, 1), ErrField},
		{"stats count 5", patch(stats, offStatsCount, StatsPerMsg+1, 0), ErrCount},
		{"stats last 2", patch(stats, offStatsLast, 2, 0), ErrField},
		{"stats entry id 0", patch(stats, offStatsStats+offStatID, 0, 0, 0, 0), ErrField},
		{"stats entry kind 9", patch(stats, offStatsStats+StatSize+offStatKind, 9), ErrEnum},
		{"stats entry class 9", patch(stats, offStatsStats+offStatClass, 9), ErrEnum},
		{"event class 8", patch(event, offEventClass, 8, 0), ErrEnum},
		{"event flag 4", patch(event, offEventFlags, 4), ErrEnum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: %v (%#v), want %v", err, m, tt.want)
			}
		})
	}
	// The same fields that fail above pass where the header allows them.
	for _, b := range [][]byte{
		patch(panicAttach, offAttachSymbol, 0),                   // notifiers need no symbol
		patch(attach, offAttachSymbol+SymbolLen-1, 0xff),         // bytes after a NUL are ignored
		patch(event, offHdrSeq, 1),                               // an event's seq is ignored
		patch(attach, offAttachRegs+4, 0xff),                     // regs past nargs are ignored
		patch(attach, offAttachPad, 1, 1, 1, 1),                  // padding is ignored
		patch(stats, offStatsStats+2*StatSize+offStatKind, 0xff), // entries past count are ignored
		append(mustMarshal(t, StatsRequest{Seq: 1}), 0xde, 0xad), // bytes past len are ignored
	} {
		if _, err := Decode(b); err != nil {
			t.Errorf("Decode(%x): %v", b, err)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := cSamples["attach_signal"].(Attach)
	with := func(f func(*Attach)) Attach { a := ok; f(&a); return a }
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"symbol 64 bytes", with(func(a *Attach) { a.Symbol = strings.Repeat("s", SymbolLen) }), ErrStringTooLong},
		{"symbol with NUL", with(func(a *Attach) { a.Symbol = "a\x00b" }), ErrStringNUL},
		{"comm 17 bytes", with(func(a *Attach) { a.Comm = strings.Repeat("c", CommLen+1) }), ErrStringTooLong},
		{"7 regs", with(func(a *Attach) { a.Regs = make([]Reg, MaxArgs+1) }), ErrCount},
		{"3 preds", with(func(a *Attach) { a.Preds = make([]Pred, MaxPreds+1) }), ErrCount},
		{"reg 9", with(func(a *Attach) { a.Regs = []Reg{9} }), ErrEnum},
		{"kind 0", with(func(a *Attach) { a.Kind = 0 }), ErrEnum},
		{"id 0", with(func(a *Attach) { a.ID = 0 }), ErrField},
		{"detach id 0", Detach{Seq: 1}, ErrField},
		{"inject kind 6", Inject{Kind: 6}, ErrEnum},
		{"inject comm 17 bytes", Inject{Kind: InjectSignal, Comm: strings.Repeat("c", CommLen+1)}, ErrStringTooLong},
		{"hello clock 0", Hello{Version: 1}, ErrEnum},
		{"reply status 1", Reply{Status: 1}, ErrField},
		{"stats 5 entries", Stats{Entries: make([]Stat, StatsPerMsg+1)}, ErrCount},
		{"event 7 args", Event{Args: make([]uint64, MaxArgs+1)}, ErrCount},
		{"event text 49 bytes", Event{Text: strings.Repeat("t", TextLen+1)}, ErrStringTooLong},
		{"event other_comm with NUL", Event{OtherComm: "\x00"}, ErrStringNUL},
		{"event flags 8", Event{Flags: 8}, ErrEnum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.m.MarshalBinary(); !errors.Is(err, tt.want) {
				t.Fatalf("MarshalBinary: %v (%x), want %v", err, b, tt.want)
			}
		})
	}
}

func TestReplyErr(t *testing.T) {
	if err := (Reply{}).Err(); err != nil {
		t.Errorf("status 0: %v", err)
	}
	if err := (Reply{Status: -int32(syscall.ENOENT)}).Err(); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("status -ENOENT: %v", err)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{KindKretprobe.String(), "kretprobe"},
		{Kind(9).String(), "unknown(9)"},
		{ClassLockup.String(), "lockup"},
		{RegR9.String(), "r9"},
		{OpLE.String(), "<="},
		{InjectHang.String(), "hang"},
		{InjectStall.String(), "stall"},
		{ClockMono.String(), "monotonic"},
		{MsgEvent.String(), "event"},
		{CmdStats.String(), "stats-request"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for k := InjectSignal; k <= InjectStall; k++ {
		if got, ok := ParseInjectKind(k.String()); !ok || got != k {
			t.Errorf("ParseInjectKind(%q) = %d, %v; want %d", k.String(), got, ok, k)
		}
	}
	if _, ok := ParseInjectKind("reboot"); ok {
		t.Error("ParseInjectKind accepted reboot")
	}
	for c := ClassGeneric; c <= ClassLockup; c++ {
		if p, ok := ParseClass(c.String()); !ok || p != c {
			t.Errorf("ParseClass(%q) = %v, %v", c, p, ok)
		}
	}
	if _, ok := ParseClass("bogus"); ok {
		t.Error("ParseClass accepted bogus")
	}
	for r := RegDI; r <= RegIP; r++ {
		if p, ok := ParseReg(r.String()); !ok || p != r {
			t.Errorf("ParseReg(%q) = %v, %v", r, p, ok)
		}
	}
	if !CmdInject.IsCommand() || MsgHello.IsCommand() {
		t.Error("IsCommand")
	}
}

func TestConfig(t *testing.T) {
	b, _ := Config{Version: Version, BootCmds: 3}.MarshalBinary()
	if want := []byte{1, 0, 0, 0, 3, 0, 0, 0}; !reflect.DeepEqual(b, want) {
		t.Errorf("Config bytes %x, want %x", b, want)
	}
}
