package wire

import (
	"strings"
	"syscall"
)

// cSamples are the messages cProgram's samples() fills from C, by name.
var cSamples = map[string]Message{
	"attach_signal": Attach{Seq: 0x01020304, ID: 7, Kind: KindKprobe, Class: ClassSignal,
		Offset: 0x10, Rate: 100, PID: 4242, Regs: []Reg{RegDI, RegDX, RegIP},
		Preds:   []Pred{{Arg: 0, Op: OpEQ, Value: 15}, {Arg: 2, Op: OpAND, Value: 0xffffffff80000000}},
		SigMask: 1<<9 | 1<<15 | 1<<63, Symbol: "send_signal_locked", Comm: "0123456789abcdef"},
	"attach_max": Attach{Seq: 0xfffffffe, ID: 0xffffffff, Kind: KindKretprobe, Class: ClassLockup,
		Rate: 0xffffffff, PID: 0xfffffff0, Regs: []Reg{RegAX, RegSP, RegR8, RegR9, RegCX, RegSI},
		Preds:  []Pred{{Arg: 5, Op: OpGE, Value: 0x8000000000000001}},
		Symbol: strings.Repeat("x", SymbolLen-1)},
	"attach_panic":  Attach{Seq: 3, ID: 3, Kind: KindPanic, Class: ClassPanic, Comm: "sshd"},
	"detach":        Detach{Seq: 9, ID: 0x11223344},
	"stats_request": StatsRequest{Seq: 77},
	"inject_signal": Inject{Seq: 10, Kind: InjectSignal, Arg: 15, Comm: "nginx"},
	"inject_hang":   Inject{Seq: 11, Kind: InjectHang, Arg: 1, Arg2: 30},
	"inject_stall":  Inject{Seq: 13, Kind: InjectStall, Arg2: 60},
	"hello":         Hello{Version: Version, Clock: ClockKVM, NCPUs: 4, GuestNS: 0x0102030405060708},
	"reply_enoent":  Reply{Seq: 5, Status: -int32(syscall.ENOENT), ID: 7},
	"reply_ok":      Reply{Seq: 6},
	"stats": Stats{Seq: 12, Last: true, Entries: []Stat{
		{ID: 7, Kind: KindKprobe, Class: ClassSignal, Hits: 1000, Delivered: 900, Filtered: 50,
			Limited: 40, Dropped: 10, Missed: 1},
		{ID: 8, Kind: KindDie, Class: ClassOops, Hits: 0xffffffffffffffff, Missed: 0x8000000000000000},
	}},
	"stats_empty": Stats{Seq: 13},
	"event_signal": Event{Probe: 7, Class: ClassSignal, CPU: 3, GuestNS: 123456789012, PID: 100,
		TID: 101, Comm: "sleep", Dropped: 2, Args: []uint64{15, 0xffff888000001000, 0, 0, 0, 0},
		Sig: 15, OtherPID: 1, OtherComm: "init"},
	"event_full": Event{Probe: 0xffffffff, Class: ClassPanic, CPU: 0xffff, GuestNS: 0xffffffffffffffff,
		PID: 0xfffffffe, TID: 0xfffffffd, Comm: "ABCDEFGHIJKLMNOP", Dropped: 0xffffffff,
		Flags: EvReturn | EvClockMono,
		Args: []uint64{0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
			0x4444444444444444, 0x5555555555555555, 0x6666666666666666},
		Sig: 64, OtherPID: 0xfffffffc, OtherComm: "qrstuvwxyz012345", Value: 0xfedcba9876543210,
		Text: strings.Repeat("t", TextLen)},
}

// goOnlySamples are further messages Go marshals for the C decoder.
var goOnlySamples = []Message{
	Attach{Seq: 1, ID: 1, Kind: KindDie, Class: ClassOops, SigMask: 1 << 11},
	Attach{Seq: 2, ID: 2, Kind: KindKprobe, Class: ClassHung, Offset: 0xffffffff,
		Regs: []Reg{RegIP, RegDI}, Preds: []Pred{{Arg: 1, Op: OpNE}, {Arg: 0, Op: OpLT, Value: 1}},
		Symbol: "sched_show_task", Comm: "khungtaskd"},
	Inject{Seq: 3, Kind: InjectOOM},
	Inject{Seq: 4, Kind: InjectPanic, Comm: "sixteen-bytes-xx"},
	Hello{Version: 0xffffffff, Clock: ClockMono, NCPUs: 0xffff},
	Reply{Seq: 0xffffffff, Status: -2147483648, ID: 0xffffffff},
	Stats{Seq: 14, Entries: []Stat{
		{ID: 1, Kind: KindKprobe, Class: ClassGeneric, Hits: 1},
		{ID: 2, Kind: KindKretprobe, Class: ClassExit, Delivered: 2},
		{ID: 3, Kind: KindPanic, Class: ClassPanic, Filtered: 3},
		{ID: 4, Kind: KindDie, Class: ClassOops, Limited: 4, Dropped: 5},
	}},
	Event{Probe: 1, Class: ClassExit, Value: 256}, // nil Args: six zeros
	Event{Probe: 2, Class: ClassOOM, Args: []uint64{1, 2}, Text: "Out of memory: Killed process"},
}
