package vmm

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// fakeEnv records device accesses and answers RIP/instruction queries.
type fakeEnv struct {
	pio   []string
	mmio  []uint64
	rip   uint64
	insn  []byte
	ripEr error
}

func (f *fakeEnv) PIO(port uint16, data []byte, write bool) {
	f.pio = append(f.pio, fmtAccess(uint64(port), write, len(data)))
	if !write {
		for i := range data {
			data[i] = 0x5a
		}
	}
}
func (f *fakeEnv) MMIO(addr uint64, data []byte, write bool) { f.mmio = append(f.mmio, addr) }
func (f *fakeEnv) RIP() (uint64, error)                      { return f.rip, f.ripEr }
func (f *fakeEnv) InsnAt(uint64) []byte                      { return f.insn }
func (f *fakeEnv) Symbol(addr uint64) string {
	if addr == 0xffffffff81000010 {
		return "do_thing+0x10"
	}
	return ""
}

func fmtAccess(a uint64, w bool, n int) string {
	d := "r"
	if w {
		d = "w"
	}
	return d + string(rune('0'+n)) + "@" + strings.ToLower(strings.TrimLeft(hex(a), "0"))
}

func hex(v uint64) string {
	const digits = "0123456789ABCDEF"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func exitRun(reason uint32) ([]byte, kvm.Run) {
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint32(b[8:], reason)
	return b, kvm.NewRun(b)
}

func emulationFailure(insn ...byte) kvm.Run {
	b, r := exitRun(kvm.KVM_EXIT_INTERNAL_ERROR)
	binary.LittleEndian.PutUint32(b[32:], kvm.KVM_INTERNAL_ERROR_EMULATION)
	binary.LittleEndian.PutUint32(b[36:], 4)
	binary.LittleEndian.PutUint64(b[40:], kvm.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
	b[48] = byte(len(insn)) // insn_size, then insn_bytes
	copy(b[49:], insn)
	return r
}

func TestStringPortIODispatchesEveryElement(t *testing.T) {
	b, r := exitRun(kvm.KVM_EXIT_IO)
	b[32] = kvm.KVM_EXIT_IO_IN
	b[33] = 2
	binary.LittleEndian.PutUint16(b[34:], 0x1f0)
	binary.LittleEndian.PutUint32(b[36:], 3)
	binary.LittleEndian.PutUint64(b[40:], 0x200)
	env := &fakeEnv{}
	if s := handleExit(r, env, ProfileHardware); s.kind != stepContinue {
		t.Fatalf("step %+v", s)
	}
	if len(env.pio) != 3 || env.pio[0] != "r2@1f0" {
		t.Fatalf("accesses %v, want three 2-byte reads of 0x1f0", env.pio)
	}
	if b[0x200] != 0x5a || b[0x205] != 0x5a {
		t.Error("read data not stored in kvm_run")
	}
}

func TestEmulatedProfileReflectsInt3AndSkipsFwait(t *testing.T) {
	env := &fakeEnv{rip: 0xffffffff81000010}
	if s := handleExit(emulationFailure(0xcc), env, ProfileEmulated); s.kind != stepReflectBP {
		t.Errorf("int3 on emulated profile: %+v, want reflect #BP", s)
	}
	if s := handleExit(emulationFailure(0x9b, 0x90), env, ProfileEmulated); s.kind != stepSkip || s.skip != 1 {
		t.Errorf("fwait on emulated profile: %+v, want skip 1", s)
	}
}

func TestEmulationFailureStopsWithDiagnosis(t *testing.T) {
	env := &fakeEnv{rip: 0xffffffff81000010}
	for _, p := range []Profile{ProfileHardware, ProfileEmulated} {
		s := handleExit(emulationFailure(0x0f, 0xc7, 0x0e), env, p)
		if s.kind != stepStop || s.ending.Kind != EndEmulationFailure {
			t.Fatalf("%v: step %+v", p, s)
		}
		for _, want := range []string{"0xffffffff81000010", "do_thing+0x10", "0f c7 0e"} {
			if !strings.Contains(s.ending.Reason, want) {
				t.Errorf("%v: reason %q lacks %q", p, s.ending.Reason, want)
			}
		}
	}
	// Hardware KVM never works around int3.
	if s := handleExit(emulationFailure(0xcc), env, ProfileHardware); s.kind != stepStop {
		t.Errorf("int3 on hardware profile: %+v, want stop", s)
	}
}

func TestEmulationFailureReadsInstructionFromMemoryWhenExitHasNone(t *testing.T) {
	b, r := exitRun(kvm.KVM_EXIT_INTERNAL_ERROR)
	binary.LittleEndian.PutUint32(b[32:], kvm.KVM_INTERNAL_ERROR_EMULATION)
	env := &fakeEnv{rip: 0x1000, insn: []byte{0xcc}}
	if s := handleExit(r, env, ProfileEmulated); s.kind != stepReflectBP {
		t.Fatalf("step %+v, want reflect #BP from the bytes at RIP", s)
	}
	env.ripEr = errors.New("no regs")
	if s := handleExit(r, env, ProfileEmulated); s.kind != stepStop || s.ending.Kind != EndInternalError {
		t.Fatalf("step %+v, want internal error when RIP is unreadable", s)
	}
}

func TestEndingsFromExits(t *testing.T) {
	env := &fakeEnv{rip: 0x1234}
	cases := []struct {
		reason uint32
		event  uint32
		want   EndingKind
	}{
		{kvm.KVM_EXIT_SHUTDOWN, 0, EndTripleFault},
		{kvm.KVM_EXIT_SYSTEM_EVENT, kvm.KVM_SYSTEM_EVENT_SHUTDOWN, EndPoweroff},
		{kvm.KVM_EXIT_SYSTEM_EVENT, kvm.KVM_SYSTEM_EVENT_RESET, EndReset},
		{kvm.KVM_EXIT_SYSTEM_EVENT, kvm.KVM_SYSTEM_EVENT_CRASH, EndPanic},
		{kvm.KVM_EXIT_FAIL_ENTRY, 0, EndInternalError},
		{kvm.KVM_EXIT_DEBUG, 0, EndInternalError},
		{kvm.KVM_EXIT_HLT, 0, EndPoweroff}, // if_flag clear
	}
	for _, c := range cases {
		b, r := exitRun(c.reason)
		binary.LittleEndian.PutUint32(b[32:], c.event)
		s := handleExit(r, env, ProfileHardware)
		if s.kind != stepStop || s.ending.Kind != c.want || s.ending.Reason == "" {
			t.Errorf("exit %d/%d: step %+v, want stop %v", c.reason, c.event, s, c.want)
		}
	}
	if s := handleExit(emulationFailureOther(), env, ProfileEmulated); s.kind != stepStop || s.ending.Kind != EndInternalError {
		t.Errorf("internal error suberror 3: %+v", s)
	}
}

func emulationFailureOther() kvm.Run {
	b, r := exitRun(kvm.KVM_EXIT_INTERNAL_ERROR)
	binary.LittleEndian.PutUint32(b[32:], kvm.KVM_INTERNAL_ERROR_DELIVERY_EV)
	return r
}

func TestExitCodes(t *testing.T) {
	three := 3
	codes := map[int]Ending{
		0:                    {Kind: EndPoweroff},
		3:                    {Kind: EndPoweroff, Status: &three},
		ExitReset:            {Kind: EndReset, Status: &three},
		ExitTripleFault:      {Kind: EndTripleFault},
		ExitPanic:            {Kind: EndPanic},
		ExitEmulationFailure: {Kind: EndEmulationFailure},
		ExitInternalError:    {Kind: EndInternalError},
		ExitStopped:          {Kind: EndStopped},
	}
	for want, e := range codes {
		if got := e.ExitCode(); got != want {
			t.Errorf("%+v: ExitCode %d, want %d", e, got, want)
		}
	}
}
