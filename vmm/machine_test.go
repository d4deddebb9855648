package vmm

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// tinyKernel wraps 32-bit protected-mode code in the smallest ELF the PVH
// loader accepts: one PT_LOAD at 1 MiB and a PT_NOTE with the Xen
// PHYS32_ENTRY note pointing at it. The code runs with paging off, flat
// segments, interrupts disabled and no IDT.
func tinyKernel(code []byte) []byte {
	const (
		load     = 0x100000
		codeOff  = 0x1000
		noteOff  = 0x200
		ehdrSize = 64
		phdrSize = 56
	)
	b := make([]byte, codeOff+len(code))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], load)
	le.PutUint64(b[32:], ehdrSize) // e_phoff
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], 2) // e_phnum
	le.PutUint16(b[58:], 64)
	// PT_LOAD
	p := b[ehdrSize:]
	le.PutUint32(p[0:], 1)
	le.PutUint32(p[4:], 5) // R+X
	le.PutUint64(p[8:], codeOff)
	le.PutUint64(p[16:], load)
	le.PutUint64(p[24:], load)
	le.PutUint64(p[32:], uint64(len(code)))
	le.PutUint64(p[40:], uint64(len(code))+0x1000)
	le.PutUint64(p[48:], 0x1000)
	// PT_NOTE
	p = b[ehdrSize+phdrSize:]
	le.PutUint32(p[0:], 4)
	le.PutUint32(p[4:], 4)
	le.PutUint64(p[8:], noteOff)
	le.PutUint64(p[32:], 20) // 12-byte header, "Xen\0", 4-byte entry
	le.PutUint64(p[40:], 20)
	le.PutUint64(p[48:], 4)
	n := b[noteOff:]
	le.PutUint32(n[0:], 4)  // namesz
	le.PutUint32(n[4:], 4)  // descsz
	le.PutUint32(n[8:], 18) // XEN_ELFNOTE_PHYS32_ENTRY
	copy(n[12:], "Xen\x00")
	le.PutUint32(n[16:], load)
	copy(b[codeOff:], code)
	return b
}

// Machine code fragments (32-bit protected mode).
var (
	cliHlt = []byte{0xfa, 0xf4}
	// mov al, 0xfe; out 0x64, al; cli; hlt
	i8042Reset = []byte{0xb0, 0xfe, 0xe6, 0x64, 0xfa, 0xf4}
	// ud2 with no IDT: #UD cannot be delivered -> #DF -> triple fault.
	ud2 = []byte{0x0f, 0x0b}
)

// outChar: mov dx, 0x3f8; mov al, c; out dx, al.
func outChar(c byte) []byte { return []byte{0x66, 0xba, 0xf8, 0x03, 0xb0, c, 0xee} }

// storeDebug: mov eax, v; mov [0xd0000000+reg], eax.
func storeDebug(reg uint32, v uint32) []byte {
	b := []byte{0xb8, 0, 0, 0, 0, 0xa3, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], v)
	binary.LittleEndian.PutUint32(b[6:], 0xd0000000+reg)
	return b
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func requireKVM(t *testing.T) Profile {
	t.Helper()
	if !kvm.Available() {
		testenv.Missing(t, testenv.KVM, "%s is absent on this host: skipping a test that runs a guest", kvm.DevicePath)
	}
	p, _ := DetectProfile("/")
	return p
}

// runTiny boots code as a kernel and returns the ending and console output.
func runTiny(t *testing.T, code []byte, cpus int) (Ending, string, *Machine) {
	t.Helper()
	p := requireKVM(t)
	var out syncBuffer
	m, err := New(Config{Kernel: tinyKernel(code), MemBytes: 32 << 20, CPUs: cpus, Profile: p, Console: &out})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	done := make(chan Ending, 1)
	go func() { done <- m.Run() }()
	select {
	case e := <-done:
		return e, out.String(), m
	case <-time.After(60 * time.Second):
		m.Stop("test timeout")
		t.Fatalf("guest did not end within 60 s; console %q", out.String())
	}
	return Ending{}, "", nil
}

func TestGuestHaltWithInterruptsOffIsPoweroff(t *testing.T) {
	e, _, _ := runTiny(t, cliHlt, 1)
	if e.Kind != EndPoweroff || e.ExitCode() != 0 {
		t.Fatalf("ending %+v (%s), want poweroff", e, e)
	}
}

func TestGuestResetThroughI8042(t *testing.T) {
	e, _, _ := runTiny(t, i8042Reset, 1)
	if e.Kind != EndReset || e.ExitCode() != ExitReset {
		t.Fatalf("ending %+v, want reset", e)
	}
}

func TestGuestTripleFault(t *testing.T) {
	e, _, _ := runTiny(t, ud2, 1)
	if e.Kind != EndTripleFault || e.ExitCode() != ExitTripleFault {
		t.Fatalf("ending %+v, want triple fault", e)
	}
}

func TestSerialOutputAndDebugDevice(t *testing.T) {
	code := concat(
		storeDebug(0x04, 1), // TV_DEBUG_EVENT_INIT_START
		outChar('o'), outChar('k'), outChar('\n'),
		storeDebug(0x08, 7), // exit status
		cliHlt)
	e, out, m := runTiny(t, code, 1)
	if out != "ok\n" {
		t.Errorf("console %q, want %q", out, "ok\n")
	}
	if e.Kind != EndPoweroff || e.Status == nil || *e.Status != 7 || e.ExitCode() != 7 {
		t.Fatalf("ending %+v, want poweroff with status 7", e)
	}
	if d, ok := m.BootTime(); !ok || d <= 0 {
		t.Errorf("BootTime = %v, %v: the INIT_START event was not timestamped", d, ok)
	}
}

func TestTwoVCPUsHaltTogether(t *testing.T) {
	// The AP never gets a SIPI; the run ends when the BSP halts for good.
	e, _, _ := runTiny(t, cliHlt, 2)
	if e.Kind != EndPoweroff {
		t.Fatalf("ending %+v, want poweroff", e)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	requireKVM(t)
	k := tinyKernel(cliHlt)
	for name, cfg := range map[string]Config{
		"no cpus":       {Kernel: k, MemBytes: 32 << 20, CPUs: 0, Profile: ProfileHardware},
		"too many cpus": {Kernel: k, MemBytes: 32 << 20, CPUs: MaxCPUs + 1, Profile: ProfileHardware},
		"tiny memory":   {Kernel: k, MemBytes: 1 << 20, CPUs: 1, Profile: ProfileHardware},
		"not a kernel":  {Kernel: []byte("hello"), MemBytes: 32 << 20, CPUs: 1, Profile: ProfileHardware},
	} {
		if m, err := New(cfg); err == nil {
			m.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}
