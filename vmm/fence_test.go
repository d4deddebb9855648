package vmm

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// counterAddr is where spinCounter counts, in guest RAM: above the kernel
// image at 1 MiB, clear of the boot structures in low memory.
const counterAddr = 0x200000

// spinCounter loops forever: inc dword [counterAddr]; out 0x80, al; jmp
// back. Each pass is an exit (the POST port), so KVM_RUN is entered once a
// pass, and the count in guest RAM shows the guest's progress.
var spinCounter = []byte{
	0xff, 0x05, 0x00, 0x00, 0x20, 0x00, // inc dword [0x200000]
	0xe6, 0x80, // out 0x80, al
	0xeb, 0xf6, // jmp -10
}

// fenceOnPort is a port device that fences its machine from the vCPU that
// writes it, as the probe channel's fence rule does on a vCPU's event.
type fenceOnPort struct{ m *Machine }

func (d fenceOnPort) Read(uint64, []byte) {}
func (d fenceOnPort) Write(uint64, []byte) {
	d.m.BeginFence("fenced from the vCPU")
}

// startTiny builds code as a kernel and runs it; the channel gets Run's
// ending.
func startTiny(t *testing.T, code []byte, cpus int, setup func(*Machine)) (*Machine, chan Ending) {
	t.Helper()
	p := requireKVM(t)
	m, err := New(Config{Kernel: tinyKernel(code), MemBytes: 32 << 20, CPUs: cpus, Profile: p})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if setup != nil {
		setup(m)
	}
	done := make(chan Ending, 1)
	go func() { done <- m.Run() }()
	t.Cleanup(func() {
		m.Stop("test cleanup")
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30 s of Stop")
		}
		m.Close()
	})
	return m, done
}

func guestCounter(t *testing.T, m *Machine) uint32 {
	t.Helper()
	var b [4]byte
	if err := m.Memory().ReadAt(b[:], counterAddr); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// waitCounter waits until the guest has counted past n.
func waitCounter(t *testing.T, m *Machine, n uint32) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for guestCounter(t, m) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not count past %d in 60 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fenceWithin is m.Fence with a deadline.
func fenceWithin(t *testing.T, m *Machine, reason string) (Status, error) {
	t.Helper()
	type answer struct {
		st  Status
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		st, err := m.Fence(reason)
		ch <- answer{st, err}
	}()
	select {
	case a := <-ch:
		return a.st, a.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Fence(%q) did not return in 30 s: a vCPU is still in the guest", reason)
	}
	return Status{}, nil
}

func TestFenceStopsTheGuestForGood(t *testing.T) {
	var hooked bool
	m, done := startTiny(t, spinCounter, 2, func(m *Machine) {
		m.OnFence(func() { time.Sleep(20 * time.Millisecond); hooked = true })
	})
	waitCounter(t, m, 100)
	if s := m.Status(); s.State != StateRunning {
		t.Fatalf("state %q before the fence, want running", s.State)
	}
	before := time.Now()
	st, err := fenceWithin(t, m, "test fence")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fence took %v (every vCPU out of KVM_RUN); Fence returned after %v", time.Duration(st.FenceTookNS), time.Since(before))
	if !hooked {
		t.Error("Fence returned before its OnFence hook did")
	}
	if st.State != StateFenced || st.FenceReason != "test fence" || st.FencedAtNS < before.UnixNano() || st.FenceTookNS <= 0 {
		t.Fatalf("status after Fence: %+v", st)
	}
	if len(st.VCPUs) != 2 {
		t.Fatalf("%d vCPUs in the status, want 2", len(st.VCPUs))
	}
	bsp := st.VCPUs[0]
	const load = 0x100000
	if !bsp.Fenced || !bsp.Regs || bsp.RIP < load || bsp.RIP >= load+uint64(len(spinCounter)) {
		t.Fatalf("vCPU 0 at the fence: %+v; want its registers, RIP inside the loop", bsp)
	}
	if !st.VCPUs[1].Fenced {
		t.Errorf("vCPU 1 (an AP that never got a SIPI) was not fenced: %+v", st.VCPUs[1])
	}

	// Nothing moves for 200 ms: the guest's count, the vCPU's RIP, the
	// KVM_RUN entries.
	count := guestCounter(t, m)
	time.Sleep(200 * time.Millisecond)
	if c := guestCounter(t, m); c != count {
		t.Errorf("the guest counted from %d to %d after the fence", count, c)
	}
	r, err := m.vcpus[0].kvm.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if r.RIP != bsp.RIP {
		t.Errorf("RIP moved from %#x to %#x after the fence", bsp.RIP, r.RIP)
	}
	again := m.Status()
	for i, c := range again.VCPUs {
		if c.KVMRuns != st.VCPUs[i].KVMRuns {
			t.Errorf("vCPU %d entered KVM_RUN %d more times after the fence", i, c.KVMRuns-st.VCPUs[i].KVMRuns)
		}
	}
	if bsp.KVMRuns < 100 {
		t.Errorf("vCPU 0 counted %d KVM_RUN entries before the fence; the loop exits once a pass", bsp.KVMRuns)
	}

	// Idempotent: the first fence stands.
	if m.BeginFence("second") {
		t.Error("BeginFence on a fenced machine began a fence")
	}
	st2, err := fenceWithin(t, m, "third")
	if err != nil || st2.FencedAtNS != st.FencedAtNS || st2.FenceReason != "test fence" {
		t.Errorf("second Fence: %+v, %v; want the first fence's status", st2, err)
	}

	// The machine lives on until stopped, then ends as fenced.
	select {
	case e := <-done:
		t.Fatalf("Run returned %+v after a fence, before any Stop", e)
	case <-time.After(100 * time.Millisecond):
	}
	m.Stop("test stop")
	select {
	case e := <-done:
		if e.Kind != EndFenced || e.ExitCode() != ExitFenced {
			t.Fatalf("ending %+v (exit %d), want fenced (%d)", e, e.ExitCode(), ExitFenced)
		}
		done <- e // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of Stop")
	}
}

func TestFenceFromTheVCPUItself(t *testing.T) {
	// out 0x81, al, then the counting loop: the vCPU that writes the port
	// begins the fence while it is handling its own exit.
	code := append([]byte{0xe6, 0x81}, spinCounter...)
	m, _ := startTiny(t, code, 1, func(m *Machine) {
		if err := m.pio.Register("fence-on-write", 0x81, 1, fenceOnPort{m}); err != nil {
			t.Fatal(err)
		}
	})
	ch := make(chan Status, 1)
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for !m.Fenced() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		st, _ := m.Fence("from the test")
		ch <- st
	}()
	select {
	case st := <-ch:
		if st.State != StateFenced || st.FenceReason != "fenced from the vCPU" || !st.VCPUs[0].Fenced {
			t.Fatalf("status %+v, want fenced from the vCPU", st)
		}
		if c := guestCounter(t, m); c > 1 {
			t.Errorf("the guest counted %d passes after fencing itself before the loop; want at most 1", c)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("a fence begun on the vCPU never completed")
	}
}

func TestFenceAfterTheRunEnded(t *testing.T) {
	e, _, m := runTiny(t, cliHlt, 1)
	if e.Kind != EndPoweroff {
		t.Fatalf("ending %+v", e)
	}
	if _, err := fenceWithin(t, m, "too late"); !errors.Is(err, ErrEnded) {
		t.Fatalf("Fence after the run ended: %v, want ErrEnded", err)
	}
	if s := m.Status(); s.State != StateEnded {
		t.Errorf("state %q, want ended", s.State)
	}
}

func TestStopWithoutFenceIsStopped(t *testing.T) {
	m, done := startTiny(t, spinCounter, 1, nil)
	waitCounter(t, m, 10)
	m.Stop("plain stop")
	select {
	case e := <-done:
		if e.Kind != EndStopped || e.ExitCode() != ExitStopped {
			t.Fatalf("ending %+v, want stopped", e)
		}
		done <- e
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of Stop")
	}
}
