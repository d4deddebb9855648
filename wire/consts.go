package wire

import "strconv"

// Device identity, queues and buffer size (TVP_DEVICE_ID, TVP_VERSION,
// TVP_QUEUE_*, TVP_BUF_SIZE).
const (
	// DeviceID is the virtio device ID of the probe device ("tv").
	DeviceID = 0x7476
	// Version is the protocol version in the config space and in Hello.
	Version = 1
	// QueueLoader is the host-to-guest command queue.
	QueueLoader = 0
	// QueueListener is the guest-to-host message queue.
	QueueListener = 1
	// BufSize is the largest message, and the size of a loader buffer.
	BufSize = 256
)

// Bounds of strings and arrays (TVP_*_LEN, TVP_MAX_*, TVP_STATS_PER_MSG).
const (
	// SymbolLen is the size of Attach's symbol field, NUL included.
	SymbolLen = 64
	// CommLen is the size of a comm field (a task's command name).
	CommLen = 16
	// TextLen is the size of Event's text field.
	TextLen = 48
	// MaxArgs is how many registers a probe captures at most.
	MaxArgs = 6
	// MaxPreds is how many predicates a probe has at most.
	MaxPreds = 2
	// MaxProbes is how many probes the guest driver arms at once.
	MaxProbes = 64
	// StatsPerMsg is how many entries one Stats message carries.
	StatsPerMsg = 4
)

// MsgType is a message's hdr.type: TVP_CMD_* (host to guest, below 0x80)
// or TVP_MSG_* (guest to host).
type MsgType uint16

// Message types.
const (
	CmdAttach MsgType = 0x01 // Attach
	CmdDetach MsgType = 0x02 // Detach
	CmdStats  MsgType = 0x03 // StatsRequest
	CmdInject MsgType = 0x04 // Inject
	MsgHello  MsgType = 0x81 // Hello
	MsgReply  MsgType = 0x82 // Reply
	MsgEvent  MsgType = 0x83 // Event
	MsgStats  MsgType = 0x84 // Stats
)

// IsCommand reports whether t is a host-to-guest command type.
func (t MsgType) IsCommand() bool { return t < 0x80 }

// String returns the message type's name, as in "attach" or "event".
func (t MsgType) String() string {
	return enumName(uint64(t), map[uint64]string{
		uint64(CmdAttach): "attach", uint64(CmdDetach): "detach", uint64(CmdStats): "stats-request",
		uint64(CmdInject): "inject", uint64(MsgHello): "hello", uint64(MsgReply): "reply",
		uint64(MsgEvent): "event", uint64(MsgStats): "stats",
	})
}

// Kind is what a probe is attached to (TVP_KIND_*).
type Kind uint16

// Probe kinds.
const (
	KindKprobe    Kind = 1 // symbol+offset, entry
	KindKretprobe Kind = 2 // the symbol's return; offset must be 0
	KindPanic     Kind = 3 // the panic notifier chain; symbol ignored
	KindDie       Kind = 4 // the die notifier chain (oops); symbol ignored
)

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindKprobe && k <= KindDie }

// String returns "kprobe", "kretprobe", "panic" or "die".
func (k Kind) String() string {
	return enumName(uint64(k), map[uint64]string{1: "kprobe", 2: "kretprobe", 3: "panic", 4: "die"})
}

// Class is an event class (TVP_CLASS_*): which task an event is about and
// what its class fields hold. The header's comment above TVP_CLASS_GENERIC
// says what each class reads from which register.
type Class uint16

// Event classes.
const (
	ClassGeneric Class = 0
	ClassSignal  Class = 1
	ClassOOM     Class = 2
	ClassPanic   Class = 3
	ClassOops    Class = 4
	ClassExit    Class = 5
	ClassHung    Class = 6
	ClassLockup  Class = 7
)

var classNames = map[uint64]string{0: "generic", 1: "signal", 2: "oom", 3: "panic",
	4: "oops", 5: "exit", 6: "hung", 7: "lockup"}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool { return c <= ClassLockup }

// HasSignal reports whether events of class c carry a signal, so that a
// sig_mask filter applies to them.
func (c Class) HasSignal() bool { return c == ClassSignal || c == ClassOops }

// String returns the class's lower-case name, as in "signal".
func (c Class) String() string { return enumName(uint64(c), classNames) }

// ParseClass returns the class named name ("generic", "signal", "oom",
// "panic", "oops", "exit", "hung", "lockup").
func ParseClass(name string) (Class, bool) {
	v, ok := enumValue(name, classNames)
	return Class(v), ok
}

// Reg is a register a probe captures (TVP_REG_*, x86-64 pt_regs). RegAX on
// a kretprobe is the return value.
type Reg uint8

// Registers.
const (
	RegDI Reg = 0
	RegSI Reg = 1
	RegDX Reg = 2
	RegCX Reg = 3
	RegR8 Reg = 4
	RegR9 Reg = 5
	RegAX Reg = 6
	RegSP Reg = 7
	RegIP Reg = 8
)

var regNames = map[uint64]string{0: "di", 1: "si", 2: "dx", 3: "cx", 4: "r8", 5: "r9",
	6: "ax", 7: "sp", 8: "ip"}

// Valid reports whether r is one of the defined registers.
func (r Reg) Valid() bool { return r <= RegIP }

// String returns the register's name without '%', as in "di".
func (r Reg) String() string { return enumName(uint64(r), regNames) }

// ParseReg returns the register named name ("di" ... "ip", no '%').
func ParseReg(name string) (Reg, bool) {
	v, ok := enumValue(name, regNames)
	return Reg(v), ok
}

// Op is a predicate operator (TVP_OP_*): captured arg <op> value, unsigned.
type Op uint8

// Predicate operators.
const (
	OpEQ  Op = 1 // ==
	OpNE  Op = 2 // !=
	OpLT  Op = 3 // <, unsigned
	OpGT  Op = 4 // >
	OpLE  Op = 5 // <=
	OpGE  Op = 6 // >=
	OpAND Op = 7 // (arg & value) != 0
)

var opNames = map[uint64]string{1: "==", 2: "!=", 3: "<", 4: ">", 5: "<=", 6: ">=", 7: "&"}

// Valid reports whether o is one of the defined operators.
func (o Op) Valid() bool { return o >= OpEQ && o <= OpAND }

// String returns the operator as written in a probe spec, as in "==" or "&".
func (o Op) String() string { return enumName(uint64(o), opNames) }

// InjectKind is a fault the guest driver injects (TVP_INJECT_*).
type InjectKind uint16

// Injected faults.
const (
	InjectSignal InjectKind = 1 // send signal Arg to every process whose comm is Comm
	InjectOOM    InjectKind = 2 // run the OOM killer (as sysrq-f does)
	InjectPanic  InjectKind = 3 // panic("tracevisor: injected panic")
	InjectHang   InjectKind = 4 // spin CPU Arg with preemption off for Arg2 seconds
	InjectStall  InjectKind = 5 // a kernel thread "tvp-stall" sleeps uninterruptibly for Arg2 seconds
)

// InjectMaxSeconds is the longest hang or stall the driver accepts
// (TVP_INJECT_MAX_S).
const InjectMaxSeconds = 3600

var injectNames = map[uint64]string{1: "signal", 2: "oom", 3: "panic", 4: "hang", 5: "stall"}

// Valid reports whether k is one of the defined inject kinds.
func (k InjectKind) Valid() bool { return k >= InjectSignal && k <= InjectStall }

// String returns "signal", "oom", "panic", "hang" or "stall".
func (k InjectKind) String() string { return enumName(uint64(k), injectNames) }

// ParseInjectKind is the inverse of String.
func ParseInjectKind(name string) (InjectKind, bool) {
	v, ok := enumValue(name, injectNames)
	return InjectKind(v), ok
}

// Clock is the clock of Hello's and Event's guest_ns (TVP_CLOCK_*).
type Clock uint16

// Clocks.
const (
	ClockKVM  Clock = 1 // kvmclock nanoseconds
	ClockMono Clock = 2 // the guest's CLOCK_MONOTONIC
)

// Valid reports whether c is one of the defined clocks.
func (c Clock) Valid() bool { return c == ClockKVM || c == ClockMono }

// String returns "kvmclock" or "monotonic".
func (c Clock) String() string {
	return enumName(uint64(c), map[uint64]string{1: "kvmclock", 2: "monotonic"})
}

// Event flags (TVP_EV_*).
const (
	EvReturn    uint32 = 0x1 // from a kretprobe
	EvClockMono uint32 = 0x2 // guest_ns is CLOCK_MONOTONIC, not kvmclock
	evKnown            = EvReturn | EvClockMono
)

// enumValue is the inverse of enumName: the value named name.
func enumValue(name string, names map[uint64]string) (uint64, bool) {
	for v, n := range names {
		if n == name {
			return v, true
		}
	}
	return 0, false
}

func enumName(v uint64, names map[uint64]string) string {
	if n, ok := names[v]; ok {
		return n
	}
	return "unknown(" + strconv.FormatUint(v, 10) + ")"
}
