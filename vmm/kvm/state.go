package kvm

// Saving and restoring the KVM-held state of a paused guest (issue 12):
// one VCPUState per vCPU and one VMState per VM, both plain JSON-encodable
// values. Guest memory and the VMM's own devices are not here.
//
// What the host cannot give is detected, not assumed: a piece whose
// capability is absent (or whose ioctl the host refuses) is left out and
// named in the state's Absent list; a restore that needs a piece the host
// cannot take fails before it changes anything.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// Capabilities the state layer asks about (<linux/kvm.h>).
const (
	KVM_CAP_DEBUGREGS   = 50
	KVM_CAP_XSAVE       = 55
	KVM_CAP_XCRS        = 56
	KVM_CAP_GET_TSC_KHZ = 61
	KVM_CAP_XSAVE2      = 208
)

// KVM_VCPUEVENT_VALID_* flags of struct kvm_vcpu_events.
const (
	KVM_VCPUEVENT_VALID_NMI_PENDING  = 1 << 0
	KVM_VCPUEVENT_VALID_SIPI_VECTOR  = 1 << 1
	KVM_VCPUEVENT_VALID_SHADOW       = 1 << 2
	KVM_VCPUEVENT_VALID_SMM          = 1 << 3
	KVM_VCPUEVENT_VALID_PAYLOAD      = 1 << 4
	KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 1 << 5
)

// KVM_IRQCHIP_* chip ids of KVM_GET_IRQCHIP on x86.
const (
	KVM_IRQCHIP_PIC_MASTER = 0
	KVM_IRQCHIP_PIC_SLAVE  = 1
	KVM_IRQCHIP_IOAPIC     = 2
)

// MSRs the state layer treats specially.
const (
	MSR_IA32_TSC            = 0x10
	MSR_KVM_WALL_CLOCK      = 0x11
	MSR_KVM_SYSTEM_TIME     = 0x12
	MSR_IA32_TSC_DEADLINE   = 0x6e0
	MSR_TSC_AUX             = 0xc0000103
	MSR_KVM_WALL_CLOCK_NEW  = 0x4b564d00
	MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01
)

// Sizes and bounds of the state pieces.
const (
	fpuSize        = 416  // struct kvm_fpu
	xsaveLegacy    = 4096 // struct kvm_xsave without extra[]
	maxXSAVE       = 1 << 20
	maxMSRs        = 4096
	maxCPUID       = 256
	maxXCRs        = 16 // KVM_MAX_XCRS
	lapicSize      = gokvm.LAPICRegSize
	ioapicPins     = 24
	ioapicStateLen = 8 + 4*4 + 8*ioapicPins // struct kvm_ioapic_state
	picStateLen    = 16                     // struct kvm_pic_state
)

// alwaysSavedMSRs are read even where KVM_GET_MSR_INDEX_LIST omits them:
// the TSC and the kvmclock MSRs (old and new numbers).
var alwaysSavedMSRs = []uint32{MSR_IA32_TSC, MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW}

// FPU is struct kvm_fpu (KVM_GET_FPU), the legacy x87/SSE state, saved
// where the host has no KVM_CAP_XSAVE.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	Pad1       uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	Pad2       uint32
}

// MSR is one model-specific register.
type MSR struct {
	Index uint32
	Data  uint64
}

// XCR is one extended control register (XCR0 is the XSAVE feature mask).
type XCR struct {
	XCR   uint32
	Value uint64
}

// VCPUState is what KVM holds for one vCPU. A nil (or empty) optional
// piece was not saved; Absent says why. Exactly one of FPU and XSAVE is
// set when the floating-point state was saved.
type VCPUState struct {
	ID         int                 // vCPU id it was saved from
	CPUID      []gokvm.CPUIDEntry2 `json:",omitempty"` // KVM_GET_CPUID2
	TSCKHz     uint64              `json:",omitempty"` // KVM_GET_TSC_KHZ; 0 when absent
	Regs       gokvm.Regs
	Sregs      gokvm.Sregs
	FPU        *FPU              `json:",omitempty"` // KVM_GET_FPU (hosts without KVM_CAP_XSAVE)
	XSAVE      []byte            `json:",omitempty"` // KVM_GET_XSAVE/KVM_GET_XSAVE2 area, >= 4096 bytes
	XCRS       []XCR             `json:",omitempty"` // KVM_GET_XCRS (KVM_CAP_XCRS)
	DebugRegs  *gokvm.DebugRegs  `json:",omitempty"` // KVM_GET_DEBUGREGS (KVM_CAP_DEBUGREGS)
	MSRs       []MSR             // the MSRs that read successfully
	LAPIC      []byte            `json:",omitempty"` // KVM_GET_LAPIC register page (1024 bytes)
	VCPUEvents *gokvm.VCPUEvents `json:",omitempty"` // KVM_GET_VCPU_EVENTS (KVM_CAP_VCPU_EVENTS)
	MPState    *uint32           `json:",omitempty"` // KVM_GET_MP_STATE (KVM_CAP_MP_STATE)
	Absent     []string          `json:",omitempty"` // pieces not saved, each with the reason
}

// IOAPICState is struct kvm_ioapic_state.
type IOAPICState struct {
	BaseAddress uint64
	IORegSel    uint32
	ID          uint32
	IRR         uint32
	Pad         uint32
	RedirTbl    [ioapicPins]uint64
}

// ClockState is KVM_GET_CLOCK's answer.
type ClockState struct {
	Clock    uint64 // kvmclock, ns
	Flags    uint32 // KVM_CLOCK_TSC_STABLE, KVM_CLOCK_REALTIME, KVM_CLOCK_HOST_TSC
	Realtime uint64 // host CLOCK_REALTIME at the same instant, if Flags says so
	HostTSC  uint64 // host TSC at the same instant, if Flags says so
}

// VMState is what KVM holds for the VM itself: the in-kernel irqchip, PIT
// and kvmclock. A nil piece was not saved (the VM does not have it);
// Absent says why.
type VMState struct {
	PICMaster *gokvm.PICState  `json:",omitempty"`
	PICSlave  *gokvm.PICState  `json:",omitempty"`
	IOAPIC    *IOAPICState     `json:",omitempty"`
	PIT2      *gokvm.PITState2 `json:",omitempty"`
	Clock     *ClockState      `json:",omitempty"`
	Absent    []string         `json:",omitempty"`
}

// checkExtension is KVM_CHECK_EXTENSION on fd (the system or a VM).
func checkExtension(fd uintptr, cap int) int {
	r, err := retryValue(func() (uintptr, error) { return ioctlValue(fd, KVM_CHECK_EXTENSION, uintptr(cap)) })
	if err != nil {
		return 0
	}
	return int(r)
}

// refused reports whether err says the host does not offer an ioctl
// (rather than that the call itself went wrong).
func refused(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENXIO) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

// noLAPIC reports whether KVM_GET_LAPIC's error says the vCPU has no
// in-kernel LAPIC (the VM was made without KVM_CREATE_IRQCHIP): KVM answers
// EINVAL for that, the only check it makes on the call.
func noLAPIC(err error) bool { return errors.Is(err, unix.EINVAL) || refused(err) }

// xsaveSize returns the XSAVE area size this VM takes and whether it
// comes from KVM_CAP_XSAVE2 (use KVM_GET_XSAVE2); 0 without KVM_CAP_XSAVE.
func (c *VCPU) xsaveSize() (int, bool) {
	if n := checkExtension(c.vmfd, KVM_CAP_XSAVE2); n > 0 {
		if n < xsaveLegacy {
			n = xsaveLegacy
		}
		return n, true
	}
	if checkExtension(c.vmfd, KVM_CAP_XSAVE) != 0 {
		return xsaveLegacy, false
	}
	return 0, false
}

// SaveState reads the vCPU's state. The guest must be paused: no KVM_RUN
// in flight on this or any other vCPU of the VM. Call it from the vCPU's
// thread. sys supplies KVM_GET_MSR_INDEX_LIST.
//
// KVM_GET_MP_STATE comes first: it makes KVM accept pending INIT/SIPI
// events, which can change the LAPIC and registers read afterwards.
// KVM_GET_VCPU_EVENTS comes last, after every other read that could
// still move pending-event state.
func (c *VCPU) SaveState(sys *System) (*VCPUState, error) {
	if sys == nil {
		return nil, fmt.Errorf("vCPU %d save: no /dev/kvm handle for the MSR list", c.ID)
	}
	st := &VCPUState{ID: c.ID}
	fail := func(piece string, err error) (*VCPUState, error) {
		return nil, fmt.Errorf("vCPU %d save: %s: %w", c.ID, piece, err)
	}
	absent := func(piece, why string) { st.Absent = append(st.Absent, piece+": "+why) }
	// optional records a refused ioctl as absent and passes other errors on.
	optional := func(piece string, err error) error {
		if err == nil || !refused(err) {
			return err
		}
		absent(piece, fmt.Sprintf("refused by this host (%v)", err))
		return nil
	}

	if checkExtension(c.vmfd, KVM_CAP_MP_STATE) == 0 {
		absent("MPState", "no KVM_CAP_MP_STATE")
	} else {
		var mp gokvm.MPState
		err := retry(func() error { return gokvm.GetMPState(c.fd, &mp) })
		if err == nil {
			st.MPState = &mp.State
		} else if err = optional("MPState", err); err != nil {
			return fail("KVM_GET_MP_STATE", err)
		}
	}

	regs, err := c.Regs()
	if err != nil {
		return fail("KVM_GET_REGS", err)
	}
	st.Regs = *regs
	sregs, err := c.Sregs()
	if err != nil {
		return fail("KVM_GET_SREGS", err)
	}
	st.Sregs = *sregs

	if size, x2 := c.xsaveSize(); size > 0 {
		b, err := getXSAVE(c.fd, size, x2)
		switch {
		case err == nil:
			st.XSAVE = b
		case refused(err):
			absent("XSAVE", fmt.Sprintf("refused by this host (%v); legacy FPU saved instead", err))
		default:
			return fail("KVM_GET_XSAVE", err)
		}
	} else {
		absent("XSAVE", "no KVM_CAP_XSAVE; legacy FPU saved instead")
	}
	if st.XSAVE == nil {
		f, err := getFPU(c.fd)
		if err != nil {
			return fail("KVM_GET_FPU", err)
		}
		st.FPU = f
	}

	if checkExtension(c.vmfd, KVM_CAP_XCRS) == 0 {
		absent("XCRS", "no KVM_CAP_XCRS")
	} else {
		var x gokvm.XCRS
		err := retry(func() error { return gokvm.GetXCRS(c.fd, &x) })
		if err == nil {
			if x.NrXRCS > maxXCRs {
				return fail("KVM_GET_XCRS", fmt.Errorf("%d XCRs, at most %d", x.NrXRCS, maxXCRs))
			}
			// nr_xcrs is 0 where the host CPU has no XSAVE: nothing to keep.
			for i := 0; i < int(x.NrXRCS); i++ {
				st.XCRS = append(st.XCRS, XCR{XCR: x.Registers[i].XRC, Value: x.Registers[i].Value})
			}
		} else if err = optional("XCRS", err); err != nil {
			return fail("KVM_GET_XCRS", err)
		}
	}

	if checkExtension(c.vmfd, KVM_CAP_DEBUGREGS) == 0 {
		absent("DebugRegs", "no KVM_CAP_DEBUGREGS")
	} else {
		var d gokvm.DebugRegs
		err := retry(func() error { return gokvm.GetDebugRegs(c.fd, &d) })
		if err == nil {
			st.DebugRegs = &d
		} else if err = optional("DebugRegs", err); err != nil {
			return fail("KVM_GET_DEBUGREGS", err)
		}
	}

	var lapic gokvm.LAPICState
	switch err := retry(func() error { return gokvm.GetLocalAPIC(c.fd, &lapic) }); {
	case err == nil:
		st.LAPIC = append([]byte(nil), lapic.Regs[:]...)
	case noLAPIC(err):
		absent("LAPIC", fmt.Sprintf("no in-kernel LAPIC (%v)", err))
	default:
		return fail("KVM_GET_LAPIC", err)
	}

	cpuid := &gokvm.CPUID{Nent: maxCPUID, Entries: make([]gokvm.CPUIDEntry2, maxCPUID)}
	err = retry(func() error { return gokvm.GetCPUID2(c.fd, cpuid) })
	if err == nil {
		if int(cpuid.Nent) > maxCPUID {
			return fail("KVM_GET_CPUID2", fmt.Errorf("%d entries, at most %d", cpuid.Nent, maxCPUID))
		}
		st.CPUID = cpuid.Entries[:cpuid.Nent]
	} else if err = optional("CPUID", err); err != nil {
		return fail("KVM_GET_CPUID2", err)
	}

	if checkExtension(c.vmfd, KVM_CAP_GET_TSC_KHZ) == 0 {
		absent("TSCKHz", "no KVM_CAP_GET_TSC_KHZ")
	} else {
		khz, err := retryValue(func() (uint64, error) { return gokvm.GetTSCKHz(c.fd) })
		if err == nil {
			st.TSCKHz = khz
		} else if err = optional("TSCKHz", err); err != nil {
			return fail("KVM_GET_TSC_KHZ", err)
		}
	}

	list, err := msrIndexList(sys.fd())
	if err != nil {
		return fail("KVM_GET_MSR_INDEX_LIST", err)
	}
	msrs, unreadable, err := c.readMSRs(withMSRs(list, alwaysSavedMSRs))
	if err != nil {
		return fail("KVM_GET_MSRS", err)
	}
	st.MSRs = msrs
	if len(unreadable) > 0 {
		absent("MSRs", fmt.Sprintf("%d listed MSRs do not read on this vCPU: %#x", len(unreadable), unreadable))
	}

	if checkExtension(c.vmfd, KVM_CAP_VCPU_EVENTS) == 0 {
		absent("VCPUEvents", "no KVM_CAP_VCPU_EVENTS")
	} else {
		var ev gokvm.VCPUEvents
		err := retry(func() error { return gokvm.GetVCPUEvents(c.fd, &ev) })
		if err == nil {
			st.VCPUEvents = &ev
		} else if err = optional("VCPUEvents", err); err != nil {
			return fail("KVM_GET_VCPU_EVENTS", err)
		}
	}
	return st, nil
}

// withMSRs returns list plus the indices of extra it lacks.
func withMSRs(list, extra []uint32) []uint32 {
	out := append([]uint32(nil), list...)
	have := make(map[uint32]bool, len(list))
	for _, i := range list {
		have[i] = true
	}
	for _, i := range extra {
		if !have[i] {
			out = append(out, i)
			have[i] = true
		}
	}
	return out
}

// readMSRs reads indices with as few KVM_GET_MSRS as it can: the kernel
// stops at the first MSR it cannot read, so that one is set aside and the
// read goes on after it.
func (c *VCPU) readMSRs(indices []uint32) (msrs []MSR, unreadable []uint32, err error) {
	rest := make([]MSR, len(indices))
	for i, idx := range indices {
		rest[i].Index = idx
	}
	for len(rest) > 0 {
		got, err := getMSRs(c.fd, rest)
		if err != nil {
			return nil, nil, err
		}
		msrs = append(msrs, got...)
		if len(got) == len(rest) {
			break
		}
		unreadable = append(unreadable, rest[len(got)].Index)
		rest = rest[len(got)+1:]
	}
	return msrs, unreadable, nil
}

// restoreOrderMSRs returns msrs in the order KVM_SET_MSRS must see them:
// the TSC first (a TSC-deadline value is relative to it) and the TSC
// deadline last; the others keep their order.
func restoreOrderMSRs(msrs []MSR) []MSR {
	out := append([]MSR(nil), msrs...)
	rank := func(m MSR) int {
		switch m.Index {
		case MSR_IA32_TSC:
			return 0
		case MSR_IA32_TSC_DEADLINE:
			return 2
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// checkRestore refuses, before anything is written, a state this vCPU
// cannot take: a piece whose capability the host lacks, a size the host
// does not use, an MSR this vCPU cannot access. It only reads.
func (c *VCPU) checkRestore(st *VCPUState) error {
	need := func(cap int, name, piece string) error {
		if checkExtension(c.vmfd, cap) == 0 {
			return fmt.Errorf("the state has %s but this host lacks %s", piece, name)
		}
		return nil
	}
	if st.FPU != nil && st.XSAVE != nil {
		return errors.New("the state has both FPU and XSAVE; it must have one")
	}
	if st.XSAVE != nil {
		size, _ := c.xsaveSize()
		switch {
		case size == 0:
			return need(KVM_CAP_XSAVE, "KVM_CAP_XSAVE", "an XSAVE area")
		case len(st.XSAVE) < xsaveLegacy || len(st.XSAVE) > maxXSAVE:
			return fmt.Errorf("XSAVE area of %d bytes: want %d to %d", len(st.XSAVE), xsaveLegacy, maxXSAVE)
		case len(st.XSAVE) > size:
			return fmt.Errorf("XSAVE area of %d bytes but this host takes %d (KVM_CAP_XSAVE2): it holds state this host cannot load", len(st.XSAVE), size)
		}
	}
	if st.XCRS != nil {
		if err := need(KVM_CAP_XCRS, "KVM_CAP_XCRS", "XCRs"); err != nil {
			return err
		}
		if len(st.XCRS) > maxXCRs {
			return fmt.Errorf("%d XCRs, at most %d", len(st.XCRS), maxXCRs)
		}
	}
	if st.DebugRegs != nil {
		if err := need(KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", "debug registers"); err != nil {
			return err
		}
	}
	if st.MPState != nil {
		if err := need(KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "an MP state"); err != nil {
			return err
		}
	}
	if len(st.CPUID) > maxCPUID {
		return fmt.Errorf("%d CPUID entries, at most %d", len(st.CPUID), maxCPUID)
	}
	if st.LAPIC != nil {
		if len(st.LAPIC) != lapicSize {
			return fmt.Errorf("LAPIC page of %d bytes, want %d", len(st.LAPIC), lapicSize)
		}
		var cur gokvm.LAPICState
		if err := retry(func() error { return gokvm.GetLocalAPIC(c.fd, &cur) }); err != nil {
			return fmt.Errorf("the state has a LAPIC but this vCPU has none in the kernel (KVM_GET_LAPIC: %w)", err)
		}
	}
	if st.VCPUEvents != nil {
		if err := need(KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "vCPU events"); err != nil {
			return err
		}
		var cur gokvm.VCPUEvents
		if err := retry(func() error { return gokvm.GetVCPUEvents(c.fd, &cur) }); err != nil {
			return fmt.Errorf("KVM_GET_VCPU_EVENTS: %w", err)
		}
		// The flags KVM reports are the ones this VM accepts (payload and
		// triple-fault reporting are opt-in per VM).
		ok := cur.Flags | KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR
		if extra := st.VCPUEvents.Flags &^ ok; extra != 0 {
			return fmt.Errorf("vCPU events carry flags %#x this VM does not accept (KVM_CAP_EXCEPTION_PAYLOAD or KVM_CAP_X86_TRIPLE_FAULT_EVENT not enabled)", extra)
		}
	}
	if st.TSCKHz != 0 && checkExtension(c.vmfd, KVM_CAP_GET_TSC_KHZ) != 0 {
		cur, err := retryValue(func() (uint64, error) { return gokvm.GetTSCKHz(c.fd) })
		if err == nil && cur != st.TSCKHz && checkExtension(c.vmfd, KVM_CAP_TSC_CONTROL) == 0 {
			return fmt.Errorf("TSC of %d kHz, this host runs %d kHz and lacks KVM_CAP_TSC_CONTROL to change it", st.TSCKHz, cur)
		}
	}
	if len(st.MSRs) > maxMSRs {
		return fmt.Errorf("%d MSRs, at most %d", len(st.MSRs), maxMSRs)
	}
	// Reading every MSR of the state proves each one exists here; a read
	// changes nothing.
	got, err := getMSRs(c.fd, st.MSRs)
	if err != nil {
		return fmt.Errorf("KVM_GET_MSRS: %w", err)
	}
	if len(got) < len(st.MSRs) {
		return fmt.Errorf("MSR %#x is not supported by this vCPU", st.MSRs[len(got)].Index)
	}
	return nil
}

// RestoreState loads st into the vCPU. The guest must be paused and the
// call made from the vCPU's thread; a fresh vCPU (or the one st came from)
// is the intended target. Everything st needs is checked first, so a
// refusal changes nothing; a failure after that names the piece and leaves
// the vCPU partly restored.
//
// The order follows the KVM API's dependencies:
//   - CPUID first: which MSRs and XSAVE features exist depends on it; then
//     the TSC frequency, before any TSC value.
//   - SREGS before LAPIC: SREGS carries the APIC base MSR, and setting it
//     can reset the LAPIC.
//   - REGS before VCPU_EVENTS: KVM_SET_REGS drops a pending exception,
//     which the events put back.
//   - LAPIC before MSRs: the TSC-deadline MSR only loads while the LAPIC
//     is in TSC-deadline mode. Among the MSRs the TSC goes first and the
//     TSC deadline last.
//   - VCPU_EVENTS after MSRs and everything else; MP_STATE last of all,
//     since KVM_SET_SREGS may itself change the MP state and INIT/SIPI
//     states are only accepted once the SMM state (in the events) is in.
func (c *VCPU) RestoreState(st *VCPUState) error {
	if st == nil {
		return fmt.Errorf("vCPU %d restore: no state", c.ID)
	}
	if err := c.checkRestore(st); err != nil {
		return fmt.Errorf("vCPU %d restore refused: %w", c.ID, err)
	}
	fail := func(piece string, err error) error {
		return fmt.Errorf("vCPU %d restore: %s: %w", c.ID, piece, err)
	}

	if len(st.CPUID) > 0 {
		id := &gokvm.CPUID{Nent: uint32(len(st.CPUID)), Entries: st.CPUID}
		if err := c.SetCPUID2(id); err != nil {
			return fail("KVM_SET_CPUID2", err)
		}
	}
	if st.TSCKHz != 0 && checkExtension(c.vmfd, KVM_CAP_TSC_CONTROL) != 0 {
		cur, err := retryValue(func() (uint64, error) { return gokvm.GetTSCKHz(c.fd) })
		if err != nil || cur != st.TSCKHz {
			if err := retry(func() error { return gokvm.SetTSCKHz(c.fd, st.TSCKHz) }); err != nil {
				return fail("KVM_SET_TSC_KHZ", err)
			}
		}
	}
	sregs := st.Sregs
	if err := c.SetSregs(&sregs); err != nil {
		return fail("KVM_SET_SREGS", err)
	}
	regs := st.Regs
	if err := c.SetRegs(&regs); err != nil {
		return fail("KVM_SET_REGS", err)
	}
	if st.XSAVE != nil {
		size, _ := c.xsaveSize()
		if err := setXSAVE(c.fd, st.XSAVE, size); err != nil {
			return fail("KVM_SET_XSAVE", err)
		}
	} else if st.FPU != nil {
		if err := setFPU(c.fd, st.FPU); err != nil {
			return fail("KVM_SET_FPU", err)
		}
	}
	if st.XCRS != nil {
		x := gokvm.XCRS{NrXRCS: uint32(len(st.XCRS))}
		for i, r := range st.XCRS {
			x.Registers[i] = gokvm.XRC{XRC: r.XCR, Value: r.Value}
		}
		if err := retry(func() error { return gokvm.SetXCRS(c.fd, &x) }); err != nil {
			return fail("KVM_SET_XCRS", err)
		}
	}
	if st.DebugRegs != nil {
		d := *st.DebugRegs
		if err := retry(func() error { return gokvm.SetDebugRegs(c.fd, &d) }); err != nil {
			return fail("KVM_SET_DEBUGREGS", err)
		}
	}
	if st.LAPIC != nil {
		var l gokvm.LAPICState
		copy(l.Regs[:], st.LAPIC)
		if err := retry(func() error { return gokvm.SetLocalAPIC(c.fd, &l) }); err != nil {
			return fail("KVM_SET_LAPIC", err)
		}
	}
	if err := c.restoreMSRs(restoreOrderMSRs(st.MSRs)); err != nil {
		return fail("KVM_SET_MSRS", err)
	}
	if st.VCPUEvents != nil {
		ev := *st.VCPUEvents
		ev.Flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR
		if err := retry(func() error { return gokvm.SetVCPUEvents(c.fd, &ev) }); err != nil {
			return fail("KVM_SET_VCPU_EVENTS", err)
		}
	}
	if st.MPState != nil {
		mp := gokvm.MPState{State: *st.MPState}
		if err := retry(func() error { return gokvm.SetMPState(c.fd, &mp) }); err != nil {
			return fail("KVM_SET_MP_STATE", err)
		}
	}
	return nil
}

// restoreMSRs writes msrs with as few KVM_SET_MSRS as it can. KVM stops
// at the first MSR it refuses; one that already holds the saved value
// needs no write and is passed over (some hosts refuse host writes of an
// MSR they read, e.g. MSR_KVM_ASYNC_PF_ACK on a vCPU without in-kernel
// LAPIC); any other refusal is an error naming the MSR.
func (c *VCPU) restoreMSRs(msrs []MSR) error {
	for rest := msrs; len(rest) > 0; {
		n, err := setMSRs(c.fd, rest)
		if err != nil {
			return err
		}
		if n >= len(rest) {
			return nil
		}
		bad := rest[n]
		cur, err := getMSRs(c.fd, []MSR{{Index: bad.Index}})
		if err != nil || len(cur) != 1 || cur[0].Data != bad.Data {
			return fmt.Errorf("MSR %#x (value %#x) refused", bad.Index, bad.Data)
		}
		rest = rest[n+1:]
	}
	return nil
}

// getIRQChip reads one chip of the in-kernel irqchip.
func (vm *VM) getIRQChip(id uint32) (*gokvm.IRQChip, error) {
	ch := &gokvm.IRQChip{ChipID: id}
	err := retry(func() error { return gokvm.GetIRQChip(vm.fd, ch) })
	return ch, err
}

func decodePIC(ch *gokvm.IRQChip) *gokvm.PICState {
	b := ch.Chip[:picStateLen]
	return &gokvm.PICState{
		LastIRR: b[0], IRR: b[1], IMR: b[2], ISR: b[3], PriorityAdd: b[4], IRQBase: b[5],
		ReadRegSelect: b[6], Poll: b[7], SpecialMask: b[8], InitState: b[9], AutoEOI: b[10],
		RotateOnAutoEOI: b[11], SpecialFullyNestedMode: b[12], Init4: b[13], ELCR: b[14], ELCRMask: b[15],
	}
}

func encodePIC(p *gokvm.PICState, ch *gokvm.IRQChip) {
	copy(ch.Chip[:picStateLen], []byte{
		p.LastIRR, p.IRR, p.IMR, p.ISR, p.PriorityAdd, p.IRQBase,
		p.ReadRegSelect, p.Poll, p.SpecialMask, p.InitState, p.AutoEOI,
		p.RotateOnAutoEOI, p.SpecialFullyNestedMode, p.Init4, p.ELCR, p.ELCRMask,
	})
}

func decodeIOAPIC(ch *gokvm.IRQChip) *IOAPICState {
	b := ch.Chip[:ioapicStateLen]
	le := binary.LittleEndian
	s := &IOAPICState{
		BaseAddress: le.Uint64(b[0:]), IORegSel: le.Uint32(b[8:]), ID: le.Uint32(b[12:]),
		IRR: le.Uint32(b[16:]), Pad: le.Uint32(b[20:]),
	}
	for i := range s.RedirTbl {
		s.RedirTbl[i] = le.Uint64(b[24+8*i:])
	}
	return s
}

func encodeIOAPIC(s *IOAPICState, ch *gokvm.IRQChip) {
	b := ch.Chip[:ioapicStateLen]
	le := binary.LittleEndian
	le.PutUint64(b[0:], s.BaseAddress)
	le.PutUint32(b[8:], s.IORegSel)
	le.PutUint32(b[12:], s.ID)
	le.PutUint32(b[16:], s.IRR)
	le.PutUint32(b[20:], s.Pad)
	for i, r := range s.RedirTbl {
		le.PutUint64(b[24+8*i:], r)
	}
}

// SaveState reads the VM's in-kernel devices and clock: the PICs and
// IOAPIC (KVM_GET_IRQCHIP), the PIT (KVM_GET_PIT2) and kvmclock
// (KVM_GET_CLOCK). A device the VM was not given is recorded as absent.
// The guest must be paused.
func (vm *VM) SaveState() (*VMState, error) {
	st := &VMState{}
	fail := func(piece string, err error) (*VMState, error) {
		return nil, fmt.Errorf("VM save: %s: %w", piece, err)
	}
	absent := func(piece string, err error) {
		st.Absent = append(st.Absent, fmt.Sprintf("%s: not created in this VM (%v)", piece, err))
	}

	master, err := vm.getIRQChip(KVM_IRQCHIP_PIC_MASTER)
	switch {
	case err == nil:
		st.PICMaster = decodePIC(master)
		slave, err := vm.getIRQChip(KVM_IRQCHIP_PIC_SLAVE)
		if err != nil {
			return fail("KVM_GET_IRQCHIP (PIC slave)", err)
		}
		st.PICSlave = decodePIC(slave)
		io, err := vm.getIRQChip(KVM_IRQCHIP_IOAPIC)
		if err != nil {
			return fail("KVM_GET_IRQCHIP (IOAPIC)", err)
		}
		st.IOAPIC = decodeIOAPIC(io)
	case refused(err):
		absent("irqchip", err)
	default:
		return fail("KVM_GET_IRQCHIP (PIC master)", err)
	}

	var pit gokvm.PITState2
	switch err := retry(func() error { return gokvm.GetPIT2(vm.fd, &pit) }); {
	case err == nil:
		st.PIT2 = &pit
	case refused(err):
		absent("PIT2", err)
	default:
		return fail("KVM_GET_PIT2", err)
	}

	if vm.CheckExtension(KVM_CAP_ADJUST_CLOCK) == 0 {
		st.Absent = append(st.Absent, "Clock: no KVM_CAP_ADJUST_CLOCK")
	} else {
		var cd gokvm.ClockData
		if err := retry(func() error { return gokvm.GetClock(vm.fd, &cd) }); err != nil {
			return fail("KVM_GET_CLOCK", err)
		}
		st.Clock = &ClockState{Clock: cd.Clock, Flags: cd.Flags, Realtime: cd.Realtime, HostTSC: cd.HostTSC}
	}
	return st, nil
}

// RestoreState loads st into the VM. Every device st has must exist in
// this VM (the VMM creates the irqchip and PIT before restoring), which is
// checked before anything is written. Call it after the vCPUs' RestoreState,
// just before resuming: kvmclock is set last and resumes from the saved
// value, so the guest does not see the time it spent saved (KVM_SET_CLOCK
// without KVM_CLOCK_REALTIME).
func (vm *VM) RestoreState(st *VMState) error {
	if st == nil {
		return errors.New("VM restore: no state")
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("VM restore refused: "+format, args...)
	}
	if (st.PICMaster == nil) != (st.PICSlave == nil) || (st.PICMaster == nil) != (st.IOAPIC == nil) {
		return refuse("the irqchip state must have both PICs and the IOAPIC, or none")
	}
	if st.PICMaster != nil {
		if _, err := vm.getIRQChip(KVM_IRQCHIP_PIC_MASTER); err != nil {
			return refuse("the state has an irqchip but this VM has none in the kernel (KVM_GET_IRQCHIP: %v)", err)
		}
	}
	if st.PIT2 != nil {
		var cur gokvm.PITState2
		if err := retry(func() error { return gokvm.GetPIT2(vm.fd, &cur) }); err != nil {
			return refuse("the state has a PIT but this VM has none in the kernel (KVM_GET_PIT2: %v)", err)
		}
	}
	if st.Clock != nil && vm.CheckExtension(KVM_CAP_ADJUST_CLOCK) == 0 {
		return refuse("the state has a kvmclock value but this host lacks KVM_CAP_ADJUST_CLOCK")
	}
	fail := func(piece string, err error) error {
		return fmt.Errorf("VM restore: %s: %w", piece, err)
	}

	if st.PICMaster != nil {
		chips := []struct {
			id   uint32
			name string
			fill func(*gokvm.IRQChip)
		}{
			{KVM_IRQCHIP_PIC_MASTER, "PIC master", func(ch *gokvm.IRQChip) { encodePIC(st.PICMaster, ch) }},
			{KVM_IRQCHIP_PIC_SLAVE, "PIC slave", func(ch *gokvm.IRQChip) { encodePIC(st.PICSlave, ch) }},
			{KVM_IRQCHIP_IOAPIC, "IOAPIC", func(ch *gokvm.IRQChip) { encodeIOAPIC(st.IOAPIC, ch) }},
		}
		for _, c := range chips {
			ch := &gokvm.IRQChip{ChipID: c.id}
			c.fill(ch)
			if err := retry(func() error { return gokvm.SetIRQChip(vm.fd, ch) }); err != nil {
				return fail("KVM_SET_IRQCHIP ("+c.name+")", err)
			}
		}
	}
	if st.PIT2 != nil {
		pit := *st.PIT2
		if err := retry(func() error { return gokvm.SetPIT2(vm.fd, &pit) }); err != nil {
			return fail("KVM_SET_PIT2", err)
		}
	}
	if st.Clock != nil {
		cd := gokvm.ClockData{Clock: st.Clock.Clock}
		if err := retry(func() error { return gokvm.SetClock(vm.fd, &cd) }); err != nil {
			return fail("KVM_SET_CLOCK", err)
		}
	}
	return nil
}
