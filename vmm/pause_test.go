package vmm

import (
	"errors"
	"testing"
	"time"
)

// within runs fn and fails the test if it does not return in d.
func within(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return in %v", what, d)
	}
	return nil
}

// A pause stops the guest (its count and every vCPU's KVM_RUN entries
// stand still), the status says so, and Resume lets it count on.
func TestPauseStopsTheGuestAndResumeLetsItGoOn(t *testing.T) {
	m, _ := startTiny(t, spinCounter, 2, nil)
	waitCounter(t, m, 100)
	if err := within(t, 30*time.Second, "Pause", m.Pause); err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.State != StatePaused || !m.Paused() {
		t.Fatalf("state %q after Pause, want paused", st.State)
	}
	count := guestCounter(t, m)
	time.Sleep(200 * time.Millisecond)
	if c := guestCounter(t, m); c != count {
		t.Errorf("the paused guest counted from %d to %d", count, c)
	}
	for i, c := range m.Status().VCPUs {
		if c.KVMRuns != st.VCPUs[i].KVMRuns {
			t.Errorf("vCPU %d entered KVM_RUN %d times while paused", i, c.KVMRuns-st.VCPUs[i].KVMRuns)
		}
	}
	// A second Pause changes nothing.
	if err := within(t, 30*time.Second, "Pause again", m.Pause); err != nil {
		t.Fatalf("Pause on a paused machine: %v", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if s := m.Status().State; s != StateRunning || m.Paused() {
		t.Fatalf("state %q after Resume, want running", s)
	}
	waitCounter(t, m, count+100)
	// And it pauses again after a resume.
	if err := within(t, 30*time.Second, "Pause after Resume", m.Pause); err != nil {
		t.Fatal(err)
	}
	c := guestCounter(t, m)
	time.Sleep(100 * time.Millisecond)
	if c2 := guestCounter(t, m); c2 != c {
		t.Errorf("the guest counted from %d to %d in its second pause", c, c2)
	}
	m.Resume()
	waitCounter(t, m, c+100)
}

// A pause ends with the run: Stop on a paused guest ends Run (parked vCPUs
// leave), with the stopped ending; and Pause after the end says so.
func TestStopEndsAPausedRun(t *testing.T) {
	m, done := startTiny(t, spinCounter, 2, nil)
	waitCounter(t, m, 10)
	if err := within(t, 30*time.Second, "Pause", m.Pause); err != nil {
		t.Fatal(err)
	}
	m.Stop("stopped while paused")
	select {
	case e := <-done:
		if e.Kind != EndStopped {
			t.Fatalf("ending %+v, want stopped", e)
		}
		done <- e // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of Stop on a paused guest")
	}
	if err := m.Pause(); !errors.Is(err, ErrEnded) {
		t.Errorf("Pause after the run: %v, want ErrEnded", err)
	}
}

// A fence on a paused guest completes (the parked vCPUs leave for good),
// and the fenced guest can no longer be paused or resumed into running.
func TestFenceEndsAPause(t *testing.T) {
	m, _ := startTiny(t, spinCounter, 2, nil)
	waitCounter(t, m, 10)
	if err := within(t, 30*time.Second, "Pause", m.Pause); err != nil {
		t.Fatal(err)
	}
	st, err := fenceWithin(t, m, "fenced while paused")
	if err != nil || st.State != StateFenced || !st.VCPUs[0].Fenced || !st.VCPUs[0].Regs {
		t.Fatalf("fence of a paused guest: %+v, %v", st, err)
	}
	if err := m.Pause(); !errors.Is(err, ErrFenced) {
		t.Errorf("Pause of a fenced guest: %v, want ErrFenced", err)
	}
	m.Resume()
	count := guestCounter(t, m)
	time.Sleep(100 * time.Millisecond)
	if c := guestCounter(t, m); c != count || m.Status().State != StateFenced {
		t.Errorf("after Resume of a fenced guest: counted %d -> %d, state %q", count, c, m.Status().State)
	}
}

// Before Run there is nothing to pause.
func TestPauseBeforeRun(t *testing.T) {
	p := requireKVM(t)
	m, err := New(Config{Kernel: tinyKernel(spinCounter), MemBytes: 32 << 20, CPUs: 1, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pause(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Pause before Run: %v, want ErrNotStarted", err)
	}
	if err := m.Snapshot(t.TempDir(), false); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Snapshot before Run: %v, want ErrNotStarted", err)
	}
}
