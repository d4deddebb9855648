package probe

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/wire"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
		str  string // String(); "" when it is in
	}{
		{"p do_sys_open", Spec{Name: "do_sys_open", Kind: wire.KindKprobe, Symbol: "do_sys_open"}, ""},
		{"p:open do_sys_open+0x10 dfd=%di fn=%arg2 rate:50",
			Spec{Name: "open", Kind: wire.KindKprobe, Symbol: "do_sys_open", Offset: 0x10,
				Args: []SpecArg{{"dfd", wire.RegDI}, {"fn", wire.RegSI}}, Rate: 50},
			"p:open do_sys_open+0x10 dfd=%di fn=%si rate:50"},
		{"p  do_sys_open+16\t x=%arg6 ", Spec{Name: "do_sys_open", Kind: wire.KindKprobe, Symbol: "do_sys_open",
			Offset: 16, Args: []SpecArg{{"x", wire.RegR9}}}, "p do_sys_open+0x10 x=%r9"},
		{"r:ret vfs_read ret=$retval ret>=0x1000 ip=%ip",
			Spec{Name: "ret", Kind: wire.KindKretprobe, Symbol: "vfs_read",
				Args:  []SpecArg{{"ret", wire.RegAX}, {"ip", wire.RegIP}},
				Preds: []SpecPred{{"ret", wire.OpGE, 0x1000}}},
			"r:ret vfs_read ret=%ax ip=%ip ret>=4096"},
		{"p send_signal_locked sig=%di class:signal sig:TERM,SIGKILL,9,usr1,34-36 comm:nginx pid:42",
			Spec{Name: "send_signal_locked", Kind: wire.KindKprobe, Symbol: "send_signal_locked",
				Class: wire.ClassSignal, Args: []SpecArg{{"sig", wire.RegDI}}, Comm: "nginx", PID: 42,
				SigMask: 1<<15 | 1<<9 | 1<<10 | 1<<34 | 1<<35 | 1<<36},
			"p send_signal_locked sig=%di class:signal comm:nginx pid:42 sig:KILL,USR1,TERM,34-36"},
		{"p:lockup add_taint flag=%di flag==14 class:lockup",
			Spec{Name: "lockup", Kind: wire.KindKprobe, Symbol: "add_taint", Class: wire.ClassLockup,
				Args: []SpecArg{{"flag", wire.RegDI}}, Preds: []SpecPred{{"flag", wire.OpEQ, 14}}},
			"p:lockup add_taint flag=%di class:lockup flag==14"},
		{"p f a=%di b=%si c=%dx d=%cx e=%r8 g=%sp a&0xff b!=0 ",
			Spec{Name: "f", Kind: wire.KindKprobe, Symbol: "f",
				Args: []SpecArg{{"a", wire.RegDI}, {"b", wire.RegSI}, {"c", wire.RegDX},
					{"d", wire.RegCX}, {"e", wire.RegR8}, {"g", wire.RegSP}},
				Preds: []SpecPred{{"a", wire.OpAND, 0xff}, {"b", wire.OpNE, 0}}},
			"p f a=%di b=%si c=%dx d=%cx e=%r8 g=%sp a&0xff b!=0"},
		{"p f x=%ax x<5 x>6", Spec{Name: "f", Kind: wire.KindKprobe, Symbol: "f",
			Args: []SpecArg{{"x", wire.RegAX}}, Preds: []SpecPred{{"x", wire.OpLT, 5}, {"x", wire.OpGT, 6}}}, ""},
		{"p f.isra.0 x=%di x<=18446744073709551615", Spec{Name: "f.isra.0", Kind: wire.KindKprobe,
			Symbol: "f.isra.0", Args: []SpecArg{{"x", wire.RegDI}},
			Preds: []SpecPred{{"x", wire.OpLE, 1<<64 - 1}}}, ""},
		{"panic", Spec{Name: "panic", Kind: wire.KindPanic, Class: wire.ClassPanic}, ""},
		{"panic:boom comm:sshd class:panic", Spec{Name: "boom", Kind: wire.KindPanic, Class: wire.ClassPanic,
			Comm: "sshd"}, "panic:boom comm:sshd"},
		{"die:oops sig:SEGV rate:1", Spec{Name: "oops", Kind: wire.KindDie, Class: wire.ClassOops,
			SigMask: 1 << 11, Rate: 1}, ""},
		{"p do_exit code=%di class:exit comm:123456789012345", Spec{Name: "do_exit", Kind: wire.KindKprobe,
			Symbol: "do_exit", Class: wire.ClassExit, Args: []SpecArg{{"code", wire.RegDI}},
			Comm: "123456789012345"}, ""},
		{"p:x p", Spec{Name: "x", Kind: wire.KindKprobe, Symbol: "p"}, ""},
		{"p:p p", Spec{Name: "p", Kind: wire.KindKprobe, Symbol: "p"}, "p p"},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSpec(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
		}
		str := tt.str
		if str == "" {
			str = tt.in
		}
		if got.String() != str {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", tt.in, got.String(), str)
		}
		again, err := ParseSpec(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q: %#v, %v", got.String(), again, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"q foo", `"q"`},
		{"p", `"p": a kprobe needs a SYMBOL`},
		{"p: foo", `"p:"`},
		{"p:a:b foo", `"p:a:b"`},
		{"p 1foo", `"1foo"`},
		{"p foo-bar", `"foo-bar"`},
		{"p " + strings.Repeat("s", 64), "symbol"},
		{"p foo+", `"foo+"`},
		{"p foo+0x100000000", `"foo+0x100000000"`},
		{"p foo+010x", `"foo+010x"`},
		{"r foo+4", `"foo+4": a kretprobe takes no offset`},
		{"p foo x=%zz", `"x=%zz"`},
		{"p foo x=%arg7", `"x=%arg7"`},
		{"p foo x=$retval", `"x=$retval": $retval is only on a kretprobe`},
		{"p foo x=5", `"x=5": an arg captures a %REG; to compare, write x==5`},
		{"p foo 1x=%di", `"1x=%di"`},
		{"p foo x=%di x=%si", `"x=%si": arg x is already captured`},
		{"p foo a=%di b=%di c=%di d=%di e=%di f=%di g=%di", `"g=%di": at most 6 args`},
		{"p foo x==1", `"x==1": x is not a captured arg`},
		{"p foo x=%di x==y", `"x==y"`},
		{"p foo x=%di x==-1", `"x==-1"`},
		{"p foo x=%di x=<1", `"x=<1"`},
		{"p foo x=%di x!1", `"x!1": unknown operator`},
		{"p foo x=%di x==1 x==2 x==3", `"x==3": at most 2 predicates`},
		{"p foo bare", `"bare"`},
		{"p foo bogus:1", `"bogus:1": unknown filter`},
		{"p foo comm:", `"comm:"`},
		{"p foo comm:1234567890123456", `"comm:1234567890123456"`},
		{"p foo comm:a comm:b", `"comm:b": comm: given twice`},
		{"p foo pid:0", `"pid:0"`},
		{"p foo pid:-1", `"pid:-1"`},
		{"p foo pid:4294967296", `"pid:4294967296"`},
		{"p foo rate:0", `"rate:0"`},
		{"p foo rate:x", `"rate:x"`},
		{"p foo class:bogus", `"class:bogus"`},
		{"p foo class:signal", `"class:signal": class signal reads the arguments of send_signal_locked`},
		{"p send_signal_locked+4 class:signal", `"class:signal"`},
		{"r send_signal_locked class:signal", `"class:signal": class signal reads the function's arguments at entry`},
		{"p panic class:panic", `"class:panic": class panic comes from a notifier`},
		{"panic class:generic", `"class:generic"`},
		{"die class:oom", `"class:oom"`},
		{"panic x=%di", "notifier has no symbol"},
		{"p foo sig:TERM", `"sig:TERM": class generic has no signal`},
		{"p send_signal_locked class:signal sig:BOGUS", `"sig:BOGUS": unknown signal "BOGUS"`},
		{"p send_signal_locked class:signal sig:0", `"sig:0"`},
		{"p send_signal_locked class:signal sig:64", "signals 1 to 63"},
		{"p send_signal_locked class:signal sig:TERM,", `"sig:TERM,"`},
		{"p send_signal_locked class:signal sig:40-33", "backwards"},
		{"p send_signal_locked class:signal sig:HUP-INT", "two numbers"},
		{"p send_signal_locked class:signal sig:+5", `"sig:+5"`},
	}
	for _, tt := range tests {
		s, err := ParseSpec(tt.in)
		if err == nil {
			t.Errorf("ParseSpec(%q) = %v, want an error with %q", tt.in, s, tt.want)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSpec(%q): %v; want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestSpecAttach(t *testing.T) {
	s, err := ParseSpec("p:sig send_signal_locked sig=%di task=%dx class:signal comm:nginx pid:7 sig:TERM rate:10 task&0xff sig==15")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Attach(5, 99)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Attach{Seq: 99, ID: 5, Kind: wire.KindKprobe, Class: wire.ClassSignal, Rate: 10, PID: 7,
		Regs:    []wire.Reg{wire.RegDI, wire.RegDX},
		Preds:   []wire.Pred{{Arg: 1, Op: wire.OpAND, Value: 0xff}, {Arg: 0, Op: wire.OpEQ, Value: 15}},
		SigMask: 1 << 15, Symbol: "send_signal_locked", Comm: "nginx"}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("Attach\n got %#v\nwant %#v", a, want)
	}
	if _, err := s.Attach(0, 1); err == nil {
		t.Error("Attach with id 0 succeeded")
	}
	bad := s
	bad.Preds = []SpecPred{{"nope", wire.OpEQ, 1}}
	if _, err := bad.Attach(1, 1); err == nil {
		t.Error("Attach of a predicate on no arg succeeded")
	}
	p, _ := ParseSpec("panic comm:x")
	if a, err := p.Attach(2, 3); err != nil || a.Kind != wire.KindPanic || a.Class != wire.ClassPanic || a.Symbol != "" {
		t.Errorf("panic Attach: %#v, %v", a, err)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{Name: "x", Kind: wire.KindKprobe, Symbol: "x"}
	tests := []struct {
		name string
		f    func(*Spec)
	}{
		{"no name", func(s *Spec) { s.Name = "" }},
		{"kind 0", func(s *Spec) { s.Kind = 0 }},
		{"no symbol", func(s *Spec) { s.Symbol = "" }},
		{"kretprobe offset", func(s *Spec) { s.Kind, s.Offset = wire.KindKretprobe, 1 }},
		{"class 9", func(s *Spec) { s.Class = 9 }},
		{"reg 9", func(s *Spec) { s.Args = []SpecArg{{"a", 9}} }},
		{"duplicate arg", func(s *Spec) { s.Args = []SpecArg{{"a", 0}, {"a", 1}} }},
		{"op 0", func(s *Spec) { s.Args, s.Preds = []SpecArg{{"a", 0}}, []SpecPred{{"a", 0, 1}} }},
		{"comm with space", func(s *Spec) { s.Comm = "a b" }},
		{"comm 16 bytes", func(s *Spec) { s.Comm = strings.Repeat("c", 16) }},
		{"signal 0", func(s *Spec) { s.Symbol, s.Class, s.SigMask = "send_signal_locked", wire.ClassSignal, 1 }},
		{"panic with symbol", func(s *Spec) { s.Kind, s.Class = wire.KindPanic, wire.ClassPanic }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("base spec: %v", err)
	}
	for _, tt := range tests {
		s := ok
		tt.f(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %#v", tt.name, s)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"p do_sys_open", "p:open do_sys_open+0x10 dfd=%di fn=%arg2 rate:50",
		"r:ret vfs_read ret=$retval ret>=0x1000", "panic comm:sshd", "die:oops sig:SEGV,ILL,32-40",
		"p send_signal_locked sig=%di class:signal sig:TERM,KILL comm:nginx pid:42 sig==15",
		"p:lockup add_taint flag=%di flag==14 class:lockup", "p f a=%di a&0xff a!=0",
		"p mark_oom_victim class:oom", "p x y=%ip y<3 y>4", "p a+3 class:generic",
	} {
		f.Add(s)
	}
	for _, e := range Catalogue() {
		for _, s := range e.Specs {
			f.Add(s.String())
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSpec(in)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseSpec(%q) gave an invalid spec: %v", in, err)
		}
		str := s.String()
		again, err := ParseSpec(str)
		if err != nil {
			t.Fatalf("ParseSpec(%q).String() = %q does not parse: %v", in, str, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %q via %q:\n %#v\n %#v", in, str, s, again)
		}
		if again.String() != str {
			t.Fatalf("String not canonical: %q then %q", str, again.String())
		}
		if _, err := s.Attach(1, 1); err != nil {
			t.Fatalf("Attach of %q: %v", in, err)
		}
	})
}
