package probe

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode"

	"github.com/tracevisor/tracevisor/wire"
)

// Spec is one probe a user asks for: where it attaches, what it captures,
// which events pass. ParseSpec reads it from the kprobe_events-like syntax
// String writes; Attach turns it into the command that arms it.
type Spec struct {
	Name    string     // the event's name; defaults to Symbol ("panic", "die" for notifiers)
	Kind    wire.Kind  // KindKprobe (p), KindKretprobe (r), KindPanic (panic), KindDie (die)
	Symbol  string     // kprobes only: the kernel function
	Offset  uint32     // kprobes only: bytes from Symbol's start
	Class   wire.Class // what the event is about; see wire.Class and ParseSpec
	Args    []SpecArg  // captured registers, at most wire.MaxArgs
	Preds   []SpecPred // predicates on captured args, at most wire.MaxPreds
	Comm    string     // subject's comm; "": any
	PID     uint32     // subject's tgid; 0: any
	SigMask uint64     // bit N: signal N passes; 0: all (classes with a signal only)
	Rate    uint32     // events per second at most; 0: no limit
}

// SpecArg is a captured register and the name a spec gives it.
type SpecArg struct {
	Name string
	Reg  wire.Reg
}

// SpecPred is a predicate: the captured arg named Arg <Op> Value, unsigned.
type SpecPred struct {
	Arg   string
	Op    wire.Op
	Value uint64
}

// MaxCommLen is the longest comm filter: a task's comm holds 15 bytes and a
// NUL (TASK_COMM_LEN), so a longer name could never match.
const MaxCommLen = wire.CommLen - 1

// classSymbols are the functions whose arguments each non-generic kprobe
// class reads (tracevisor_probe.h, TVP_CLASS_*). The driver dereferences
// some of those registers as task pointers: on any other function it
// would read garbage, or crash the guest.
var classSymbols = map[wire.Class][]string{
	wire.ClassSignal: {"send_signal_locked"},
	wire.ClassOOM:    {"out_of_memory", "mark_oom_victim"},
	wire.ClassExit:   {"do_exit"},
	wire.ClassHung:   {"sched_show_task"},
	wire.ClassLockup: {"add_taint"},
}

// ParseSpec reads a probe spec:
//
//	p[:NAME] SYMBOL[+OFF] [ARG=%REG ...] [FILTER ...]   kprobe
//	r[:NAME] SYMBOL [ARG=%REG ...] [FILTER ...]         kretprobe
//	panic[:NAME] [FILTER ...]                           panic notifier (class panic)
//	die[:NAME] [FILTER ...]                             die notifier, oopses (class oops)
//
// REG: di si dx cx r8 r9 ax sp ip, or arg1..arg6 for di..r9; on a
// kretprobe %ax or $retval is the return value. OFF and values: decimal or
// 0x hex. FILTERs:
//
//	comm:NAME       the subject's comm (at most MaxCommLen bytes)
//	pid:N           the subject's process id
//	sig:S[,S...]    signals: 9, KILL, SIGKILL, or a range 32-63 (classes signal and oops)
//	rate:N          at most N events per second
//	class:CLASS     generic signal oom exit hung lockup (kprobes: on the class's own symbol)
//	ARG==V ARG!=V ARG<V ARG>V ARG<=V ARG>=V ARG&V   on a captured ARG
//
// NAME defaults to the symbol (to "panic" or "die" for notifiers).
func ParseSpec(s string) (Spec, error) {
	toks := strings.Fields(s)
	if len(toks) == 0 {
		return Spec{}, errors.New("probe spec: empty")
	}
	var sp Spec
	head, name, named := strings.Cut(toks[0], ":")
	switch head {
	case "p":
		sp.Kind = wire.KindKprobe
	case "r":
		sp.Kind = wire.KindKretprobe
	case "panic":
		sp.Kind, sp.Class = wire.KindPanic, wire.ClassPanic
	case "die":
		sp.Kind, sp.Class = wire.KindDie, wire.ClassOops
	default:
		return Spec{}, tokErr(toks[0], "a spec starts with p, r, panic or die, optionally :NAME")
	}
	if named {
		if !validName(name) {
			return Spec{}, tokErr(toks[0], "a name is 1 to 64 of A-Z a-z 0-9 _ . -")
		}
		sp.Name = name
	}
	rest := toks[1:]
	if sp.Kind == wire.KindKprobe || sp.Kind == wire.KindKretprobe {
		if len(rest) == 0 {
			return Spec{}, tokErr(toks[0], "a kprobe needs a SYMBOL")
		}
		if err := sp.parseSymbol(rest[0]); err != nil {
			return Spec{}, err
		}
		rest = rest[1:]
	}
	if sp.Name == "" {
		sp.Name = sp.defaultName()
	}
	p := specParser{sp: &sp, filters: map[string]string{}}
	for _, tok := range rest {
		if err := p.token(tok); err != nil {
			return Spec{}, err
		}
	}
	if err := p.resolvePreds(); err != nil {
		return Spec{}, err
	}
	if err := sp.validateTarget(); err != nil {
		if tok, ok := p.filters["class"]; ok {
			return Spec{}, tokErr(tok, "%v", err)
		}
		return Spec{}, fmt.Errorf("probe spec %q: %w", s, err)
	}
	if tok, ok := p.filters["sig"]; ok && !sp.Class.HasSignal() {
		return Spec{}, tokErr(tok, "class %s has no signal (only signal and oops do)", sp.Class)
	}
	if err := sp.Validate(); err != nil {
		return Spec{}, fmt.Errorf("probe spec %q: %w", s, err)
	}
	return sp, nil
}

func tokErr(tok, format string, a ...any) error {
	return fmt.Errorf("probe spec: bad token %q: %s", tok, fmt.Sprintf(format, a...))
}

func (sp *Spec) parseSymbol(tok string) error {
	sym, off, hasOff := strings.Cut(tok, "+")
	if !validSymbol(sym) {
		return tokErr(tok, "a symbol is 1 to %d of A-Z a-z 0-9 _ . and starts with no digit", wire.SymbolLen-1)
	}
	sp.Symbol = sym
	if !hasOff {
		return nil
	}
	if sp.Kind == wire.KindKretprobe {
		return tokErr(tok, "a kretprobe takes no offset")
	}
	v, err := parseNum(off)
	if err != nil || v > 1<<32-1 {
		return tokErr(tok, "the offset is a 32-bit decimal or 0x hex number")
	}
	sp.Offset = uint32(v)
	return nil
}

// specParser reads the tokens after the symbol.
type specParser struct {
	sp      *Spec
	filters map[string]string // filter key -> its token
	preds   []pendingPred
}

type pendingPred struct {
	tok string
	SpecPred
}

func (p *specParser) token(tok string) error {
	if key, val, ok := strings.Cut(tok, ":"); ok {
		return p.filter(tok, key, val)
	}
	i := strings.IndexAny(tok, "=!<>&")
	if i < 0 {
		return tokErr(tok, "want ARG=%%REG, ARG<op>VALUE or KEY:VALUE")
	}
	left, right := tok[:i], tok[i:]
	for _, op := range []wire.Op{wire.OpEQ, wire.OpNE, wire.OpLE, wire.OpGE, wire.OpLT, wire.OpGT, wire.OpAND} {
		if v, ok := strings.CutPrefix(right, op.String()); ok {
			n, err := parseNum(v)
			if err != nil {
				return tokErr(tok, "the value is a 64-bit decimal or 0x hex number")
			}
			if !validIdent(left) {
				return tokErr(tok, "a predicate starts with a captured arg's name")
			}
			p.preds = append(p.preds, pendingPred{tok, SpecPred{Arg: left, Op: op, Value: n}})
			return nil
		}
	}
	if right[0] != '=' {
		return tokErr(tok, "unknown operator; use == != < > <= >= &")
	}
	return p.arg(tok, left, right[1:])
}

func (p *specParser) arg(tok, name, val string) error {
	if !validIdent(name) {
		return tokErr(tok, "an arg name is a letter or _ then letters, digits, _")
	}
	var reg wire.Reg
	switch {
	case val == "$retval":
		if p.sp.Kind != wire.KindKretprobe {
			return tokErr(tok, "$retval is only on a kretprobe (r)")
		}
		reg = wire.RegAX
	case strings.HasPrefix(val, "%arg") && len(val) == 5 && val[4] >= '1' && val[4] <= '6':
		reg = wire.Reg(val[4] - '1') // arg1..arg6: di si dx cx r8 r9
	case strings.HasPrefix(val, "%"):
		r, ok := wire.ParseReg(val[1:])
		if !ok {
			return tokErr(tok, "registers: %%di %%si %%dx %%cx %%r8 %%r9 %%ax %%sp %%ip, %%arg1..%%arg6")
		}
		reg = r
	default:
		if _, err := parseNum(val); err == nil {
			return tokErr(tok, "an arg captures a %%REG; to compare, write %s==%s", name, val)
		}
		return tokErr(tok, "an arg captures a %%REG (or $retval)")
	}
	if len(p.sp.Args) == wire.MaxArgs {
		return tokErr(tok, "at most %d args", wire.MaxArgs)
	}
	for _, a := range p.sp.Args {
		if a.Name == name {
			return tokErr(tok, "arg %s is already captured", name)
		}
	}
	p.sp.Args = append(p.sp.Args, SpecArg{Name: name, Reg: reg})
	return nil
}

func (p *specParser) filter(tok, key, val string) error {
	switch key {
	case "comm", "pid", "sig", "rate", "class":
	default:
		return tokErr(tok, "unknown filter %q; filters: comm: pid: sig: rate: class:", key)
	}
	if _, dup := p.filters[key]; dup {
		return tokErr(tok, "%s: given twice", key)
	}
	p.filters[key] = tok
	sp := p.sp
	switch key {
	case "comm":
		if val == "" || !validComm(val) {
			return tokErr(tok, "a comm is 1 to %d bytes, no NUL (the kernel keeps no more of a task's name)", MaxCommLen)
		}
		sp.Comm = val
	case "pid", "rate":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 {
			return tokErr(tok, "%s is a positive decimal number", key)
		}
		if key == "pid" {
			sp.PID = uint32(n)
		} else {
			sp.Rate = uint32(n)
		}
	case "sig":
		m, err := parseSignals(val)
		if err != nil {
			return tokErr(tok, "%v", err)
		}
		sp.SigMask = m
	case "class":
		c, ok := wire.ParseClass(val)
		if !ok {
			return tokErr(tok, "classes: generic signal oom panic oops exit hung lockup")
		}
		sp.Class = c
	}
	return nil
}

func (p *specParser) resolvePreds() error {
	if len(p.preds) > wire.MaxPreds {
		return tokErr(p.preds[wire.MaxPreds].tok, "at most %d predicates", wire.MaxPreds)
	}
	for _, pp := range p.preds {
		if p.sp.argIndex(pp.Arg) < 0 {
			return tokErr(pp.tok, "%s is not a captured arg; capture it with %s=%%REG", pp.Arg, pp.Arg)
		}
		p.sp.Preds = append(p.sp.Preds, pp.SpecPred)
	}
	return nil
}

func (s Spec) argIndex(name string) int {
	for i, a := range s.Args {
		if a.Name == name {
			return i
		}
	}
	return -1
}

func (s Spec) defaultName() string {
	switch s.Kind {
	case wire.KindPanic:
		return "panic"
	case wire.KindDie:
		return "die"
	}
	return s.Symbol
}

// parseNum reads a decimal or 0x hex uint64.
func parseNum(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

func validIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func validSymbol(s string) bool {
	if s == "" || len(s) >= wire.SymbolLen || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") == ""
}

func validName(s string) bool {
	return s != "" && len(s) <= 64 &&
		strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == ""
}

// validComm reports whether s can be a comm filter that round-trips
// through the spec syntax.
func validComm(s string) bool {
	return len(s) <= MaxCommLen && !strings.ContainsFunc(s, func(r rune) bool { return r == 0 || unicode.IsSpace(r) })
}

// Validate reports whether s is a spec the guest driver can arm as is.
func (s Spec) Validate() error {
	if !validName(s.Name) {
		return fmt.Errorf("name %q: 1 to 64 of A-Z a-z 0-9 _ . -", s.Name)
	}
	if err := s.validateTarget(); err != nil {
		return err
	}
	if len(s.Args) > wire.MaxArgs {
		return fmt.Errorf("%d args: at most %d", len(s.Args), wire.MaxArgs)
	}
	for i, a := range s.Args {
		if !validIdent(a.Name) || !a.Reg.Valid() || s.argIndex(a.Name) != i {
			return fmt.Errorf("arg %d (%s=%%%s): a unique name and a defined register", i, a.Name, a.Reg)
		}
	}
	if len(s.Preds) > wire.MaxPreds {
		return fmt.Errorf("%d predicates: at most %d", len(s.Preds), wire.MaxPreds)
	}
	for _, p := range s.Preds {
		if s.argIndex(p.Arg) < 0 || !p.Op.Valid() {
			return fmt.Errorf("predicate %s%s%d: on a captured arg, with a defined operator", p.Arg, p.Op, p.Value)
		}
	}
	if !validComm(s.Comm) {
		return fmt.Errorf("comm %q: at most %d bytes, no spaces", s.Comm, MaxCommLen)
	}
	if s.SigMask != 0 && !s.Class.HasSignal() {
		return fmt.Errorf("sig: class %s has no signal (only signal and oops do)", s.Class)
	}
	if s.SigMask&1 != 0 {
		return errors.New("sig: there is no signal 0")
	}
	return nil
}

// validateTarget checks kind, symbol, offset and class together.
func (s Spec) validateTarget() error {
	switch s.Kind {
	case wire.KindPanic, wire.KindDie:
		want := wire.ClassPanic
		if s.Kind == wire.KindDie {
			want = wire.ClassOops
		}
		if s.Symbol != "" || s.Offset != 0 || len(s.Args) > 0 || len(s.Preds) > 0 {
			return fmt.Errorf("a %s notifier has no symbol, offset, args or predicates", s.Kind)
		}
		if s.Class != want {
			return fmt.Errorf("class %s: the %s notifier's events are class %s", s.Class, s.Kind, want)
		}
		return nil
	case wire.KindKprobe, wire.KindKretprobe:
	default:
		return fmt.Errorf("kind %d: not a probe kind", s.Kind)
	}
	if !validSymbol(s.Symbol) {
		return fmt.Errorf("symbol %q: 1 to %d of A-Z a-z 0-9 _ . not starting with a digit", s.Symbol, wire.SymbolLen-1)
	}
	if s.Kind == wire.KindKretprobe && s.Offset != 0 {
		return errors.New("a kretprobe takes no offset")
	}
	switch s.Class {
	case wire.ClassGeneric:
		return nil
	case wire.ClassPanic, wire.ClassOops:
		return fmt.Errorf("class %s comes from a notifier: write `panic` or `die`, not a kprobe", s.Class)
	}
	syms, ok := classSymbols[s.Class]
	if !ok {
		return fmt.Errorf("class %d: not a class", s.Class)
	}
	if s.Kind == wire.KindKretprobe {
		return fmt.Errorf("class %s reads the function's arguments at entry: use p, not r", s.Class)
	}
	for _, sym := range syms {
		if s.Symbol == sym && s.Offset == 0 {
			return nil
		}
	}
	return fmt.Errorf("class %s reads the arguments of %s: only at its entry (offset 0)",
		s.Class, strings.Join(syms, " or "))
}

// Attach returns the command that arms s as probe id, with sequence number seq.
func (s Spec) Attach(id, seq uint32) (wire.Attach, error) {
	if err := s.Validate(); err != nil {
		return wire.Attach{}, fmt.Errorf("probe %s: %w", s.Name, err)
	}
	a := wire.Attach{Seq: seq, ID: id, Kind: s.Kind, Class: s.Class, Offset: s.Offset,
		Rate: s.Rate, PID: s.PID, SigMask: s.SigMask, Symbol: s.Symbol, Comm: s.Comm}
	for _, arg := range s.Args {
		a.Regs = append(a.Regs, arg.Reg)
	}
	for _, p := range s.Preds {
		a.Preds = append(a.Preds, wire.Pred{Arg: uint8(s.argIndex(p.Arg)), Op: p.Op, Value: p.Value})
	}
	if _, err := a.MarshalBinary(); err != nil {
		return wire.Attach{}, fmt.Errorf("probe %s: %w", s.Name, err)
	}
	return a, nil
}

// String renders s in ParseSpec's syntax, canonically: the name only when
// it is not the default, args in order, then class (when not the kind's
// default), comm, pid, sig, rate and the predicates.
func (s Spec) String() string {
	var b strings.Builder
	switch s.Kind {
	case wire.KindKprobe:
		b.WriteString("p")
	case wire.KindKretprobe:
		b.WriteString("r")
	default:
		b.WriteString(s.Kind.String())
	}
	if s.Name != s.defaultName() {
		b.WriteString(":" + s.Name)
	}
	if s.Symbol != "" {
		b.WriteString(" " + s.Symbol)
		if s.Offset != 0 {
			fmt.Fprintf(&b, "+0x%x", s.Offset)
		}
	}
	for _, a := range s.Args {
		fmt.Fprintf(&b, " %s=%%%s", a.Name, a.Reg)
	}
	if (s.Kind == wire.KindKprobe || s.Kind == wire.KindKretprobe) && s.Class != wire.ClassGeneric {
		b.WriteString(" class:" + s.Class.String())
	}
	if s.Comm != "" {
		b.WriteString(" comm:" + s.Comm)
	}
	if s.PID != 0 {
		fmt.Fprintf(&b, " pid:%d", s.PID)
	}
	if s.SigMask != 0 {
		b.WriteString(" sig:" + formatSignals(s.SigMask))
	}
	if s.Rate != 0 {
		fmt.Fprintf(&b, " rate:%d", s.Rate)
	}
	for _, p := range s.Preds {
		if p.Op == wire.OpAND {
			fmt.Fprintf(&b, " %s&0x%x", p.Arg, p.Value)
		} else {
			fmt.Fprintf(&b, " %s%s%d", p.Arg, p.Op, p.Value)
		}
	}
	return b.String()
}

// signalNames are Linux x86-64's signal numbers 1..31, without "SIG".
var signalNames = [32]string{1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT",
	7: "BUS", 8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM",
	15: "TERM", 16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN",
	22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH",
	29: "IO", 30: "PWR", 31: "SYS"}

var signalAliases = map[string]int{"IOT": 6, "CLD": 17, "POLL": 29}

// maxMaskSignal is the highest signal a sig_mask holds: bit N is signal N.
const maxMaskSignal = 63

// parseSignals reads "TERM,SIGKILL,9,32-40" into a mask.
func parseSignals(list string) (uint64, error) {
	var m uint64
	for _, s := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(s, "-")
		a, err := parseSignal(lo, isRange)
		if err != nil {
			return 0, err
		}
		b := a
		if isRange {
			if b, err = parseSignal(hi, true); err != nil {
				return 0, err
			}
			if b < a {
				return 0, fmt.Errorf("range %s is backwards", s)
			}
		}
		for n := a; n <= b; n++ {
			m |= 1 << n
		}
	}
	return m, nil
}

func parseSignal(s string, numberOnly bool) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && s[0] != '+' && s[0] != '-' {
		if n < 1 || n > maxMaskSignal {
			return 0, fmt.Errorf("signal %s: signals 1 to %d (a filter's 64-bit mask has bit N for signal N)", s, maxMaskSignal)
		}
		return n, nil
	}
	if numberOnly {
		return 0, fmt.Errorf("a signal range is two numbers, as 32-63: %q", s)
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if n, ok := signalAliases[name]; ok {
		return n, nil
	}
	for n, sn := range signalNames {
		if sn != "" && sn == name {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q (a number, or a name as TERM or SIGTERM)", s)
}

// formatSignals renders a mask: names for 1..31, numbers and ranges above.
func formatSignals(m uint64) string {
	var parts []string
	for m != 0 {
		n := bits.TrailingZeros64(m)
		if n < len(signalNames) && signalNames[n] != "" {
			parts = append(parts, signalNames[n])
			m &^= 1 << n
			continue
		}
		end := n
		for end < 63 && m&(1<<(end+1)) != 0 {
			end++
		}
		if end == n {
			parts = append(parts, strconv.Itoa(n))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", n, end))
		}
		m &^= (1<<(end-n+1) - 1) << n
	}
	return strings.Join(parts, ",")
}
