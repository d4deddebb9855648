package kvm

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/tracevisor/tracevisor/internal/testenv"
)

// LAPIC register offsets used by the tests.
const (
	lapicTPR  = 0x80
	lapicLVTT = 0x320
)

// stateVM is a VM with (when irqchip is set) the in-kernel irqchip and PIT
// and one vCPU given the supported CPUID, as the VMM builds it. The test's
// goroutine is locked to its thread, which the vCPU calls need.
type stateVM struct {
	sys *System
	vm  *VM
	cpu *VCPU
}

func newStateVM(t *testing.T, irqchip bool) *stateVM {
	t.Helper()
	if !Available() {
		testenv.Missing(t, testenv.KVM, "%s does not exist", DevicePath)
	}
	sys, err := Open()
	if err != nil {
		testenv.Missing(t, testenv.KVM, "%v", err)
	}
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	vm, err := sys.CreateVM()
	if err != nil {
		sys.Close()
		t.Fatal(err)
	}
	s := &stateVM{sys: sys, vm: vm}
	t.Cleanup(func() {
		if s.cpu != nil {
			s.cpu.Close()
		}
		vm.Close()
		sys.Close()
	})
	if sys.CheckExtension(KVM_CAP_SET_TSS_ADDR) != 0 {
		if err := vm.SetTSSAddr(0xFFFB_D000); err != nil {
			t.Fatal(err)
		}
	}
	if irqchip {
		if err := vm.CreateIRQChip(); err != nil {
			t.Fatal(err)
		}
		if err := vm.CreatePIT2(); err != nil {
			t.Fatal(err)
		}
	}
	if s.cpu, err = vm.CreateVCPU(0); err != nil {
		t.Fatal(err)
	}
	id, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cpu.SetCPUID2(id); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stateVM) save(t *testing.T) *VCPUState {
	t.Helper()
	st, err := s.cpu.SaveState(s.sys)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// msr returns the value of index in msrs.
func msr(msrs []MSR, index uint32) (uint64, bool) {
	for _, m := range msrs {
		if m.Index == index {
			return m.Data, true
		}
	}
	return 0, false
}

func (s *stateVM) readMSR(t *testing.T, index uint32) uint64 {
	t.Helper()
	got, err := getMSRs(s.cpu.fd, []MSR{{Index: index}})
	if err != nil || len(got) != 1 {
		t.Fatalf("KVM_GET_MSRS %#x: %v (%d read)", index, err, len(got))
	}
	return got[0].Data
}

func (s *stateVM) writeMSR(t *testing.T, index uint32, v uint64) {
	t.Helper()
	if n, err := setMSRs(s.cpu.fd, []MSR{{Index: index, Data: v}}); err != nil || n != 1 {
		t.Fatalf("KVM_SET_MSRS %#x=%#x: %v (%d written)", index, v, err, n)
	}
}

func (s *stateVM) lapic(t *testing.T) *gokvm.LAPICState {
	t.Helper()
	var l gokvm.LAPICState
	if err := gokvm.GetLocalAPIC(s.cpu.fd, &l); err != nil {
		t.Fatalf("KVM_GET_LAPIC: %v", err)
	}
	return &l
}

func (s *stateVM) setLAPIC(t *testing.T, tpr, lvtt uint32) {
	t.Helper()
	l := s.lapic(t)
	binary.LittleEndian.PutUint32(l.Regs[lapicTPR:], tpr)
	binary.LittleEndian.PutUint32(l.Regs[lapicLVTT:], lvtt)
	if err := gokvm.SetLocalAPIC(s.cpu.fd, l); err != nil {
		t.Fatalf("KVM_SET_LAPIC: %v", err)
	}
}

func (s *stateVM) setRegs(t *testing.T, rax, rip uint64) {
	t.Helper()
	r, err := s.cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	r.RAX, r.RIP, r.RFLAGS = rax, rip, 0x2
	if err := s.cpu.SetRegs(r); err != nil {
		t.Fatal(err)
	}
}

func (s *stateVM) setDR0(t *testing.T, v uint64) {
	t.Helper()
	var d gokvm.DebugRegs
	if err := gokvm.GetDebugRegs(s.cpu.fd, &d); err != nil {
		t.Fatalf("KVM_GET_DEBUGREGS: %v", err)
	}
	d.DB[0] = v
	if err := gokvm.SetDebugRegs(s.cpu.fd, &d); err != nil {
		t.Fatalf("KVM_SET_DEBUGREGS: %v", err)
	}
}

func (s *stateVM) setNMIMasked(t *testing.T, masked uint8) {
	t.Helper()
	var ev gokvm.VCPUEvents
	if err := gokvm.GetVCPUEvents(s.cpu.fd, &ev); err != nil {
		t.Fatalf("KVM_GET_VCPU_EVENTS: %v", err)
	}
	ev.N.Masked = masked
	ev.Flags = 0
	if err := gokvm.SetVCPUEvents(s.cpu.fd, &ev); err != nil {
		t.Fatalf("KVM_SET_VCPU_EVENTS: %v", err)
	}
}

func (s *stateVM) setMPState(t *testing.T, v uint32) {
	t.Helper()
	if err := gokvm.SetMPState(s.cpu.fd, &gokvm.MPState{State: v}); err != nil {
		t.Fatalf("KVM_SET_MP_STATE %d: %v", v, err)
	}
}

// setMXCSR writes MXCSR through whichever FP interface the host has.
func (s *stateVM) setMXCSR(t *testing.T, v uint32) {
	t.Helper()
	if size, x2 := s.cpu.xsaveSize(); size > 0 {
		b, err := getXSAVE(s.cpu.fd, size, x2)
		if err != nil {
			t.Fatalf("KVM_GET_XSAVE: %v", err)
		}
		binary.LittleEndian.PutUint32(b[24:], v) // legacy area: MXCSR
		b[512] |= 1 << 1                         // XSTATE_BV: SSE state present
		if err := setXSAVE(s.cpu.fd, b, size); err != nil {
			t.Fatalf("KVM_SET_XSAVE: %v", err)
		}
		return
	}
	f, err := getFPU(s.cpu.fd)
	if err != nil {
		t.Fatalf("KVM_GET_FPU: %v", err)
	}
	f.MXCSR = v
	if err := setFPU(s.cpu.fd, f); err != nil {
		t.Fatalf("KVM_SET_FPU: %v", err)
	}
}

func stateMXCSR(st *VCPUState) uint32 {
	if st.XSAVE != nil {
		return binary.LittleEndian.Uint32(st.XSAVE[24:])
	}
	return st.FPU.MXCSR
}

// Distinctive values the round-trip test plants, and the ones it
// overwrites them with.
const (
	wantRAX, otherRAX       = 0x1122334455667788, 0x99
	wantRIP, otherRIP       = 0x1000, 0x2000
	wantTPR, otherTPR       = 0x20, 0x00
	wantLVTT, otherLVTT     = 0x100ef, 0x10031 // masked, vector 0xef / 0x31
	wantKVMClk, otherKVMClk = 0x7000, 0x9000   // system-time MSR, enable bit clear
	wantAux, otherAux       = 0x1234, 0x7
	wantDR0, otherDR0       = 0xdead000, 0x0
	wantMXCSR, otherMXCSR   = 0x1fa0, 0x1f80
)

func TestVCPUStateRoundTrip(t *testing.T) {
	s := newStateVM(t, true)
	hasAux := false
	if list, err := msrIndexList(s.sys.fd()); err == nil {
		for _, i := range list {
			hasAux = hasAux || i == MSR_TSC_AUX
		}
	}

	s.setRegs(t, wantRAX, wantRIP)
	s.setLAPIC(t, wantTPR, wantLVTT)
	s.writeMSR(t, MSR_KVM_SYSTEM_TIME_NEW, wantKVMClk)
	if hasAux {
		s.writeMSR(t, MSR_TSC_AUX, wantAux)
	}
	s.setDR0(t, wantDR0)
	s.setMXCSR(t, wantMXCSR)
	s.setNMIMasked(t, 1)
	s.setMPState(t, KVM_MP_STATE_HALTED)

	st := s.save(t)
	for _, a := range st.Absent {
		t.Logf("absent on this host: %s", a)
	}
	t.Logf("saved %d MSRs, %d CPUID entries, XSAVE %d bytes (KVM_CAP_XSAVE %d, KVM_CAP_XSAVE2 %d), FPU %v, %d XCRs, TSC %d kHz",
		len(st.MSRs), len(st.CPUID), len(st.XSAVE), s.vm.CheckExtension(KVM_CAP_XSAVE), s.vm.CheckExtension(KVM_CAP_XSAVE2),
		st.FPU != nil, len(st.XCRS), st.TSCKHz)
	// The save must have read what was planted.
	if st.Regs.RAX != wantRAX || st.Regs.RIP != wantRIP {
		t.Fatalf("saved RAX %#x RIP %#x, want %#x %#x", st.Regs.RAX, st.Regs.RIP, uint64(wantRAX), wantRIP)
	}
	if len(st.LAPIC) != lapicSize || binary.LittleEndian.Uint32(st.LAPIC[lapicTPR:]) != wantTPR {
		t.Fatalf("saved LAPIC of %d bytes lacks TPR %#x", len(st.LAPIC), wantTPR)
	}
	if v, ok := msr(st.MSRs, MSR_KVM_SYSTEM_TIME_NEW); !ok || v != wantKVMClk {
		t.Fatalf("saved kvmclock MSR = %#x, %v; want %#x", v, ok, wantKVMClk)
	}
	savedTSC, ok := msr(st.MSRs, MSR_IA32_TSC)
	if !ok {
		t.Fatal("the TSC was not saved")
	}
	if st.DebugRegs == nil || st.DebugRegs.DB[0] != wantDR0 {
		t.Fatalf("saved debug registers %+v, want DR0 %#x", st.DebugRegs, wantDR0)
	}
	if (st.FPU == nil) == (st.XSAVE == nil) {
		t.Fatalf("want exactly one of FPU and XSAVE: FPU %v, XSAVE %d bytes", st.FPU != nil, len(st.XSAVE))
	}
	if got := stateMXCSR(st); got != wantMXCSR {
		t.Fatalf("saved MXCSR %#x, want %#x", got, wantMXCSR)
	}
	if st.VCPUEvents == nil || st.VCPUEvents.N.Masked != 1 {
		t.Fatalf("saved vCPU events %+v, want NMI masked", st.VCPUEvents)
	}
	if st.MPState == nil || *st.MPState != KVM_MP_STATE_HALTED {
		t.Fatalf("saved MP state %v, want HALTED", mpState(st))
	}
	if len(st.CPUID) == 0 {
		t.Fatal("no CPUID saved")
	}

	// Overwrite everything, then restore.
	s.setRegs(t, otherRAX, otherRIP)
	s.setLAPIC(t, otherTPR, otherLVTT)
	s.writeMSR(t, MSR_KVM_SYSTEM_TIME_NEW, otherKVMClk)
	if hasAux {
		s.writeMSR(t, MSR_TSC_AUX, otherAux)
	}
	s.writeMSR(t, MSR_IA32_TSC, savedTSC+1<<50)
	s.setDR0(t, otherDR0)
	s.setMXCSR(t, otherMXCSR)
	s.setNMIMasked(t, 0)
	s.setMPState(t, KVM_MP_STATE_RUNNABLE)

	if err := s.cpu.RestoreState(st); err != nil {
		t.Fatal(err)
	}

	r, err := s.cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if r.RAX != wantRAX || r.RIP != wantRIP {
		t.Errorf("restored RAX %#x RIP %#x, want %#x %#x", r.RAX, r.RIP, uint64(wantRAX), wantRIP)
	}
	l := s.lapic(t)
	if tpr, lvtt := binary.LittleEndian.Uint32(l.Regs[lapicTPR:]), binary.LittleEndian.Uint32(l.Regs[lapicLVTT:]); tpr != wantTPR || lvtt != wantLVTT {
		t.Errorf("restored TPR %#x LVTT %#x, want %#x %#x", tpr, lvtt, wantTPR, wantLVTT)
	}
	if v := s.readMSR(t, MSR_KVM_SYSTEM_TIME_NEW); v != wantKVMClk {
		t.Errorf("restored kvmclock MSR %#x, want %#x", v, wantKVMClk)
	}
	if hasAux {
		if v := s.readMSR(t, MSR_TSC_AUX); v != wantAux {
			t.Errorf("restored TSC_AUX %#x, want %#x", v, wantAux)
		}
	} else {
		t.Logf("MSR_TSC_AUX is not in this host's MSR index list; not checked")
	}
	// The TSC resumes from the saved value: within a minute of it, not
	// 2^50 cycles on.
	if tsc := s.readMSR(t, MSR_IA32_TSC); tsc < savedTSC || (st.TSCKHz != 0 && tsc-savedTSC > 60*1000*st.TSCKHz) {
		t.Errorf("restored TSC %#x, saved %#x (TSC %d kHz)", tsc, savedTSC, st.TSCKHz)
	}
	var d gokvm.DebugRegs
	if err := gokvm.GetDebugRegs(s.cpu.fd, &d); err != nil || d.DB[0] != wantDR0 {
		t.Errorf("restored DR0 %#x (%v), want %#x", d.DB[0], err, wantDR0)
	}
	after := s.save(t)
	if got := stateMXCSR(after); got != wantMXCSR {
		t.Errorf("restored MXCSR %#x, want %#x", got, wantMXCSR)
	}
	if after.VCPUEvents == nil || after.VCPUEvents.N.Masked != 1 {
		t.Errorf("restored vCPU events %+v, want NMI masked", after.VCPUEvents)
	}
	if after.MPState == nil || *after.MPState != KVM_MP_STATE_HALTED {
		t.Errorf("restored MP state %v, want HALTED", mpState(after))
	}
	if !reflect.DeepEqual(after.Sregs, st.Sregs) {
		t.Errorf("restored sregs differ:\n got %+v\nwant %+v", after.Sregs, st.Sregs)
	}
	if !reflect.DeepEqual(after.XCRS, st.XCRS) {
		t.Errorf("restored XCRs %+v, want %+v", after.XCRS, st.XCRS)
	}
}

func TestVCPUStateJSON(t *testing.T) {
	s := newStateVM(t, true)
	s.setRegs(t, wantRAX, wantRIP)
	st := s.save(t)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back VCPUState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, st) {
		t.Fatalf("JSON round trip changed the state:\n got %+v\nwant %+v", back, *st)
	}
	// The decoded state restores like the original.
	s.setRegs(t, otherRAX, otherRIP)
	if err := s.cpu.RestoreState(&back); err != nil {
		t.Fatal(err)
	}
	if r, err := s.cpu.Regs(); err != nil || r.RAX != wantRAX || r.RIP != wantRIP {
		t.Fatalf("after restoring the decoded state: %+v, %v", r, err)
	}
}

func TestVCPURestoreRefusesWhatTheHostCannotTake(t *testing.T) {
	s := newStateVM(t, true)
	st := s.save(t)

	hostXSAVE, _ := s.cpu.xsaveSize()
	cases := []struct {
		name string
		edit func(*VCPUState)
		want string
	}{
		{"MSR this vCPU lacks", func(e *VCPUState) { e.MSRs = append(e.MSRs, MSR{Index: 0xdeadbeef}) }, "0xdeadbeef"},
		{"short LAPIC page", func(e *VCPUState) { e.LAPIC = e.LAPIC[:100] }, "LAPIC page of 100 bytes"},
		{"events flag this VM does not accept", func(e *VCPUState) {
			ev := *e.VCPUEvents
			ev.Flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT
			e.VCPUEvents = &ev
		}, "flags 0x20"},
		{"both FPU and XSAVE", func(e *VCPUState) { e.FPU, e.XSAVE = &FPU{}, make([]byte, xsaveLegacy) }, "both FPU and XSAVE"},
	}
	if hostXSAVE > 0 {
		cases = append(cases, struct {
			name string
			edit func(*VCPUState)
			want string
		}{"XSAVE area larger than this host takes", func(e *VCPUState) {
			e.FPU, e.XSAVE = nil, make([]byte, hostXSAVE+4096)
		}, "this host takes"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if st.VCPUEvents == nil && strings.Contains(c.name, "events") {
				t.Skip("this host saved no vCPU events") // recorded in Absent by SaveState
			}
			e := *st
			e.MSRs = append([]MSR(nil), st.MSRs...)
			c.edit(&e)
			// RAX is written early in a restore; it must not move.
			s.setRegs(t, otherRAX, otherRIP)
			err := s.cpu.RestoreState(&e)
			if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("RestoreState = %v, want a refusal naming %q", err, c.want)
			}
			if r, _ := s.cpu.Regs(); r.RAX != otherRAX {
				t.Fatalf("refused restore changed RAX to %#x", r.RAX)
			}
		})
	}

	// A vCPU of a VM without the in-kernel irqchip has no LAPIC: a state
	// with one is refused, and the vCPU is left as it was.
	bare := newStateVM(t, false)
	bare.setRegs(t, otherRAX, otherRIP)
	err := bare.cpu.RestoreState(st)
	if err == nil || !strings.Contains(err.Error(), "LAPIC") {
		t.Fatalf("restore onto a vCPU without LAPIC = %v, want a LAPIC refusal", err)
	}
	if r, _ := bare.cpu.Regs(); r.RAX != otherRAX {
		t.Fatalf("refused restore changed RAX to %#x", r.RAX)
	}
	// Its own state records the LAPIC as absent and restores.
	own := bare.save(t)
	if own.LAPIC != nil || !absentHas(own.Absent, "LAPIC") {
		t.Fatalf("state of a vCPU without LAPIC: LAPIC %d bytes, Absent %q", len(own.LAPIC), own.Absent)
	}
	if err := bare.cpu.RestoreState(own); err != nil {
		t.Fatal(err)
	}
}

// mpState prints a saved MP state for a failure message.
func mpState(st *VCPUState) any {
	if st.MPState == nil {
		return "absent"
	}
	return *st.MPState
}

func absentHas(absent []string, piece string) bool {
	for _, a := range absent {
		if strings.HasPrefix(a, piece+":") {
			return true
		}
	}
	return false
}

func (s *stateVM) setIRQState(t *testing.T, imr uint8, redir3 uint64, pitCount uint32) {
	t.Helper()
	m, err := s.vm.getIRQChip(KVM_IRQCHIP_PIC_MASTER)
	if err != nil {
		t.Fatalf("KVM_GET_IRQCHIP: %v", err)
	}
	p := decodePIC(m)
	p.IMR = imr
	encodePIC(p, m)
	if err := gokvm.SetIRQChip(s.vm.fd, m); err != nil {
		t.Fatalf("KVM_SET_IRQCHIP PIC: %v", err)
	}
	io, err := s.vm.getIRQChip(KVM_IRQCHIP_IOAPIC)
	if err != nil {
		t.Fatalf("KVM_GET_IRQCHIP IOAPIC: %v", err)
	}
	a := decodeIOAPIC(io)
	a.RedirTbl[3] = redir3
	encodeIOAPIC(a, io)
	if err := gokvm.SetIRQChip(s.vm.fd, io); err != nil {
		t.Fatalf("KVM_SET_IRQCHIP IOAPIC: %v", err)
	}
	var pit gokvm.PITState2
	if err := gokvm.GetPIT2(s.vm.fd, &pit); err != nil {
		t.Fatalf("KVM_GET_PIT2: %v", err)
	}
	pit.Channels[0].Count = pitCount
	if err := gokvm.SetPIT2(s.vm.fd, &pit); err != nil {
		t.Fatalf("KVM_SET_PIT2: %v", err)
	}
}

func TestVMStateRoundTrip(t *testing.T) {
	s := newStateVM(t, true)
	const (
		wantIMR, otherIMR     = 0xa5, 0xff
		wantRedir, otherRedir = 0x00000000_00010031, 0x00000000_00010000 // masked, vector 0x31
		wantPIT, otherPIT     = 0x1234, 0x4321
		clock0                = 1 << 40 // ns
		second                = 1_000_000_000
	)
	s.setIRQState(t, wantIMR, wantRedir, wantPIT)
	if err := gokvm.SetClock(s.vm.fd, &gokvm.ClockData{Clock: clock0}); err != nil {
		t.Fatalf("KVM_SET_CLOCK: %v", err)
	}

	st, err := s.vm.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Absent {
		t.Logf("absent on this host: %s", a)
	}
	if st.PICMaster == nil || st.PICMaster.IMR != wantIMR || st.IOAPIC == nil || st.IOAPIC.RedirTbl[3] != wantRedir {
		t.Fatalf("saved irqchip: PIC %+v IOAPIC %+v", st.PICMaster, st.IOAPIC)
	}
	if st.PIT2 == nil || st.PIT2.Channels[0].Count != wantPIT {
		t.Fatalf("saved PIT %+v, want channel 0 count %#x", st.PIT2, wantPIT)
	}
	if st.Clock == nil || st.Clock.Clock < clock0 || st.Clock.Clock > clock0+60*second {
		t.Fatalf("saved clock %+v, want about %d", st.Clock, uint64(clock0))
	}

	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back VMState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, st) {
		t.Fatalf("JSON round trip changed the VM state:\n got %+v\nwant %+v", back, *st)
	}

	s.setIRQState(t, otherIMR, otherRedir, otherPIT)
	if err := gokvm.SetClock(s.vm.fd, &gokvm.ClockData{Clock: clock0 + 1000*second}); err != nil {
		t.Fatalf("KVM_SET_CLOCK: %v", err)
	}
	if err := s.vm.RestoreState(&back); err != nil {
		t.Fatal(err)
	}
	after, err := s.vm.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if after.PICMaster.IMR != wantIMR || after.IOAPIC.RedirTbl[3] != wantRedir || after.PIT2.Channels[0].Count != wantPIT {
		t.Errorf("restored IMR %#x redir[3] %#x PIT count %#x, want %#x %#x %#x",
			after.PICMaster.IMR, after.IOAPIC.RedirTbl[3], after.PIT2.Channels[0].Count, wantIMR, uint64(wantRedir), wantPIT)
	}
	if !reflect.DeepEqual(after.PICSlave, st.PICSlave) {
		t.Errorf("restored PIC slave %+v, want %+v", after.PICSlave, st.PICSlave)
	}
	// kvmclock resumes from the saved value, not from the 1000 s jump.
	if c := after.Clock.Clock; c < st.Clock.Clock || c > st.Clock.Clock+60*second {
		t.Errorf("restored clock %d, saved %d", c, st.Clock.Clock)
	}
}

func TestVMRestoreRefusesMissingDevices(t *testing.T) {
	full := newStateVM(t, true)
	st, err := full.vm.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	bare := newStateVM(t, false)
	err = bare.vm.RestoreState(st)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "irqchip") {
		t.Fatalf("restore onto a VM without irqchip = %v, want a refusal", err)
	}
	noIRQ := *st
	noIRQ.PICMaster, noIRQ.PICSlave, noIRQ.IOAPIC = nil, nil, nil
	if err := bare.vm.RestoreState(&noIRQ); err == nil || !strings.Contains(err.Error(), "PIT") {
		t.Fatalf("restore of a PIT onto a VM without one = %v, want a refusal", err)
	}
	half := *st
	half.PICSlave = nil
	if err := full.vm.RestoreState(&half); err == nil || !strings.Contains(err.Error(), "both PICs") {
		t.Fatalf("restore of half an irqchip = %v, want a refusal", err)
	}
	// The bare VM's own state records what it lacks.
	own, err := bare.vm.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if own.PICMaster != nil || own.PIT2 != nil || !absentHas(own.Absent, "irqchip") || !absentHas(own.Absent, "PIT2") {
		t.Fatalf("bare VM state %+v", own)
	}
	if err := bare.vm.RestoreState(own); err != nil {
		t.Fatal(err)
	}
}

// The tests below need no /dev/kvm.

func TestRestoreOrderMSRs(t *testing.T) {
	in := []MSR{{Index: MSR_IA32_TSC_DEADLINE}, {Index: 0x174}, {Index: MSR_IA32_TSC}, {Index: 0x175}}
	got := restoreOrderMSRs(in)
	want := []MSR{{Index: MSR_IA32_TSC}, {Index: 0x174}, {Index: 0x175}, {Index: MSR_IA32_TSC_DEADLINE}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restoreOrderMSRs = %#x, want %#x", got, want)
	}
	if in[0].Index != MSR_IA32_TSC_DEADLINE {
		t.Fatal("restoreOrderMSRs reordered its input")
	}
}

func TestWithMSRs(t *testing.T) {
	got := withMSRs([]uint32{0x10, 0x174}, []uint32{0x10, MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_SYSTEM_TIME_NEW})
	if want := []uint32{0x10, 0x174, MSR_KVM_SYSTEM_TIME_NEW}; !reflect.DeepEqual(got, want) {
		t.Fatalf("withMSRs = %#x, want %#x", got, want)
	}
}

func TestIRQChipEncoding(t *testing.T) {
	var ch gokvm.IRQChip
	for i := range ch.Chip {
		ch.Chip[i] = byte(i)
	}
	p := decodePIC(&ch)
	if p.LastIRR != 0 || p.IMR != 2 || p.ELCRMask != 15 {
		t.Fatalf("decodePIC = %+v", p)
	}
	io := decodeIOAPIC(&ch)
	if io.BaseAddress != 0x0706050403020100 || io.ID != 0x0f0e0d0c || io.RedirTbl[23] != binary.LittleEndian.Uint64(ch.Chip[24+8*23:]) {
		t.Fatalf("decodeIOAPIC = %+v", io)
	}
	var out gokvm.IRQChip
	encodeIOAPIC(io, &out)
	if out.Chip != [512]byte(append(append([]byte(nil), ch.Chip[:ioapicStateLen]...), make([]byte, 512-ioapicStateLen)...)) {
		t.Fatal("encodeIOAPIC(decodeIOAPIC(x)) != x")
	}
	var pic gokvm.IRQChip
	encodePIC(p, &pic)
	if !reflect.DeepEqual(pic.Chip[:picStateLen], ch.Chip[:picStateLen]) {
		t.Fatal("encodePIC(decodePIC(x)) != x")
	}
}
