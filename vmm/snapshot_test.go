package vmm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/virtio/blk"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	vnet "github.com/tracevisor/tracevisor/virtio/net"
	"github.com/tracevisor/tracevisor/vmm/devices/uart"
	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// savedCounter reads the guest's count from a snapshot's memory file
// (guest RAM from 0 is the file's first region).
func savedCounter(t *testing.T, dir string) uint32 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, snapshot.MemoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], counterAddr); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// A guest snapshotted while it counts goes on counting in a machine
// restored from the snapshot, from the count it had (not from zero, not
// beyond), while the original, resumed, counts on by itself; the clone's
// writes stay its own (the memory file keeps the snapshot's count).
func TestSnapshotRestoreContinues(t *testing.T) {
	m, _ := startTiny(t, spinCounter, 2, nil)
	waitCounter(t, m, 1000)
	dir := t.TempDir()
	if err := within(t, time.Minute, "Snapshot", func() error { return m.Snapshot(dir, false) }); err != nil {
		t.Fatal(err)
	}
	saved := savedCounter(t, dir)
	if saved < 1000 {
		t.Fatalf("the snapshot holds count %d, the guest was past 1000", saved)
	}
	if s := m.Status().State; s != StateRunning {
		t.Fatalf("original's state %q after Snapshot(stayPaused=false), want running", s)
	}
	waitCounter(t, m, saved+1000) // the original goes on

	c, err := New(Config{MemBytes: 32 << 20, CPUs: 2, Profile: m.cfg.Profile, Restore: dir})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	defer c.Close()
	if !c.Restored() || c.Cmdline() != m.Cmdline() {
		t.Fatalf("restored %v, command line %q; want the original's %q", c.Restored(), c.Cmdline(), m.Cmdline())
	}
	if got := guestCounter(t, c); got != saved {
		t.Fatalf("restored memory holds count %d, the snapshot %d", got, saved)
	}
	done := make(chan Ending, 1)
	go func() { done <- c.Run() }()
	defer func() {
		c.Stop("test over")
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("the restored Run did not return in 30 s of Stop")
		}
	}()
	waitCounter(t, c, saved+1000)
	st := c.Status()
	if st.State != StateRunning || st.VCPUs[0].KVMRuns == 0 {
		t.Fatalf("restored status %+v", st)
	}
	if _, ok := c.BootTime(); ok {
		t.Errorf("a restored machine reports a boot time")
	}
	if got := savedCounter(t, dir); got != saved {
		t.Errorf("the clone's writes reached the memory file: count %d there, %d saved", got, saved)
	}
}

// Snapshot with stayPaused leaves the guest paused, the count in memory
// equal to the snapshot's; Resume lets it go on. A second snapshot of the
// paused guest keeps it paused.
func TestSnapshotStayPaused(t *testing.T) {
	m, _ := startTiny(t, spinCounter, 1, nil)
	waitCounter(t, m, 100)
	dir := t.TempDir()
	if err := within(t, time.Minute, "Snapshot", func() error { return m.Snapshot(dir, true) }); err != nil {
		t.Fatal(err)
	}
	if s := m.Status().State; s != StatePaused {
		t.Fatalf("state %q after Snapshot(stayPaused=true), want paused", s)
	}
	saved := savedCounter(t, dir)
	time.Sleep(100 * time.Millisecond)
	if got := guestCounter(t, m); got != saved {
		t.Fatalf("paused guest's count %d, the snapshot's %d", got, saved)
	}
	if err := within(t, time.Minute, "Snapshot again", func() error { return m.Snapshot(dir, false) }); err != nil {
		t.Fatal(err)
	}
	if s := m.Status().State; s != StatePaused {
		t.Fatalf("state %q after a snapshot of a paused guest, want paused still", s)
	}
	m.Resume()
	waitCounter(t, m, saved+100)
}

// Snapshot refuses a fenced guest and one whose run ended.
func TestSnapshotRefusesFencedAndEnded(t *testing.T) {
	m, _ := startTiny(t, spinCounter, 1, nil)
	waitCounter(t, m, 10)
	if _, err := fenceWithin(t, m, "fenced"); err != nil {
		t.Fatal(err)
	}
	if err := m.Snapshot(t.TempDir(), false); !errors.Is(err, ErrFenced) {
		t.Errorf("Snapshot of a fenced guest: %v, want ErrFenced", err)
	}
	e, _, ended := runTiny(t, cliHlt, 1)
	if e.Kind != EndPoweroff {
		t.Fatalf("ending %+v", e)
	}
	if err := ended.Snapshot(t.TempDir(), false); !errors.Is(err, ErrEnded) {
		t.Errorf("Snapshot after the run: %v, want ErrEnded", err)
	}
}

// fakeSnapshot writes a snapshot of a 1-vCPU, 32 MiB machine with no
// virtio devices the way Snapshot lays one out, with states that pass
// every check; edit may change the header and the sections first.
func fakeSnapshot(t *testing.T, edit func(h *snapshot.Header, secs map[string]any)) string {
	t.Helper()
	m := &Machine{cfg: Config{CPUs: 1, MemBytes: 32 << 20, Profile: ProfileHardware}}
	e := m.expect()
	h := snapshot.Header{VMMVersion: e.VMMVersion, Profile: e.Profile, Config: e.Config}
	secs := map[string]any{
		sectionMachine:    machineState{Cmdline: "console=ttyS0"},
		sectionVM:         kvm.VMState{},
		sectionVCPU + "0": kvm.VCPUState{ID: 0},
		sectionUART:       uart.State{},
		sectionI8042:      struct{}{},
		sectionCMOS:       struct{}{},
		sectionDebug:      struct{}{},
	}
	if edit != nil {
		edit(&h, secs)
	}
	dir := t.TempDir()
	ram := []snapshot.RAM{{GPA: 0, Data: make([]byte, 32<<20)}}
	err := snapshot.Save(dir, h, ram, func(w *snapshot.Writer) error {
		for name, v := range secs {
			if err := w.Section(name, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// stubKVM makes New's first KVM call fail with errReachedKVM and records
// that it came.
func stubKVM(t *testing.T) *bool {
	t.Helper()
	reached := false
	old := openKVM
	openKVM = func() (*kvm.System, error) { reached = true; return nil, errReachedKVM }
	t.Cleanup(func() { openKVM = old })
	return &reached
}

var errReachedKVM = errors.New("test: New reached KVM")

// A restore refuses a snapshot of another version, host profile or
// configuration, a missing one, one with a section too many or too few and
// one with a device state no device can be in, each with an error saying
// which, before its first KVM call; a snapshot that passes every check
// gets to KVM. No /dev/kvm is needed.
func TestRestoreRefusesBeforeKVM(t *testing.T) {
	reached := stubKVM(t)
	cfg := Config{CPUs: 1, MemBytes: 32 << 20, Profile: ProfileHardware}
	cases := []struct {
		name string
		edit func(h *snapshot.Header, secs map[string]any)
		cfg  func(c *Config)
		want []string
		is   error
	}{
		{"another VMM version", func(h *snapshot.Header, _ map[string]any) { h.VMMVersion = "v0.0.1-other" }, nil,
			[]string{"v0.0.1-other"}, snapshot.ErrMismatch},
		{"another host profile", func(h *snapshot.Header, _ map[string]any) { h.Profile = "emulated" }, nil,
			[]string{"emulated"}, snapshot.ErrMismatch},
		{"more vCPUs here", nil, func(c *Config) { c.CPUs = 2 },
			[]string{"cpus: 1 in the snapshot, 2 here"}, snapshot.ErrMismatch},
		{"more memory here", nil, func(c *Config) { c.MemBytes = 64 << 20 },
			[]string{"mem_bytes"}, snapshot.ErrMismatch},
		{"a virtio console here", nil, func(c *Config) { c.VirtioConsole = true },
			[]string{"console", "devices"}, snapshot.ErrMismatch},
		{"no snapshot there", nil, func(c *Config) { c.Restore = filepath.Join(t.TempDir(), "none") },
			[]string{snapshot.StateFile, "no such file"}, os.ErrNotExist},
		{"a section this VMM lacks", func(_ *snapshot.Header, secs map[string]any) { secs["dev/floppy"] = struct{}{} }, nil,
			[]string{"would drop", "dev/floppy"}, nil},
		{"a section missing", func(_ *snapshot.Header, secs map[string]any) { delete(secs, sectionCMOS) }, nil,
			[]string{sectionCMOS}, snapshot.ErrNoSection},
		{"a vCPU state of another vCPU", func(_ *snapshot.Header, secs map[string]any) { secs[sectionVCPU+"0"] = kvm.VCPUState{ID: 3} }, nil,
			[]string{"vcpu/0"}, nil},
		{"a UART state no UART is in", func(_ *snapshot.Header, secs map[string]any) { secs[sectionUART] = uart.State{IER: 0xff} }, nil,
			[]string{"uart", "IER"}, nil},
		{"a section of another layout", func(_ *snapshot.Header, secs map[string]any) {
			secs[sectionMachine] = map[string]any{"cmdline": "", "extra": 1}
		}, nil, []string{sectionMachine, "extra"}, snapshot.ErrDecode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			*reached = false
			c := cfg
			c.Restore = fakeSnapshot(t, tc.edit)
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			m, err := New(c)
			if err == nil {
				m.Close()
				t.Fatal("New restored a snapshot it should refuse")
			}
			t.Logf("refused: %v", err)
			if *reached || errors.Is(err, errReachedKVM) {
				t.Fatalf("New reached KVM before refusing: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	t.Run("a good snapshot", func(t *testing.T) {
		*reached = false
		c := cfg
		c.Restore = fakeSnapshot(t, nil)
		if _, err := New(c); !errors.Is(err, errReachedKVM) || !*reached {
			t.Fatalf("New on a snapshot that passes every check: %v; want it to get to KVM", err)
		}
	})
}

// The configuration fingerprint holds what the guest saw of its machine
// and nothing of a clone's own identity or the host's plumbing.
func TestSnapshotConfigFingerprint(t *testing.T) {
	disk := func(ro bool) mmio.Device {
		path := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := blk.Open(path, ro)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return blk.NewDevice(d)
	}
	sw := vnet.NewSwitch()
	nic := func(mac byte) mmio.Device {
		d := vnet.New([6]byte{0x52, 0x54, 0, 0, 0, mac}, sw.Port())
		t.Cleanup(func() { d.Close() })
		return d
	}
	base := func() Config {
		return Config{CPUs: 2, MemBytes: 256 << 20, Profile: ProfileHardware, Virtio: []VirtioDevice{
			{Name: "disk0", Device: disk(false)}, {Name: "net0", Device: nic(1)}, {Name: "probe", Device: nic(9), NotifyOnVCPU: true},
		}}
	}
	sum := func(c Config) string {
		if c.VirtioConsole {
			c.Virtio = append([]VirtioDevice{{Name: "console", Device: nic(7)}}, c.Virtio...)
		}
		m := &Machine{cfg: c}
		_, s, err := snapshot.Fingerprint(m.snapshotConfig())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := sum(base())
	same := map[string]func(*Config){
		"another MAC":           func(c *Config) { c.Virtio[1].Device = nic(2) },
		"another disk image":    func(c *Config) { c.Virtio[0].Device = disk(false) },
		"another kernel":        func(c *Config) { c.Kernel = []byte("other") },
		"another command line":  func(c *Config) { c.Cmdline = "quiet" },
		"another initrd":        func(c *Config) { c.Initrd = []byte("cpio") },
		"profiling":             func(c *Config) { c.ProfileGuest = true },
		"diagnostics":           func(c *Config) { c.Log = os.Stderr },
		"another snapshot path": func(c *Config) { c.Restore = "/elsewhere" },
		"notifications by vCPU": func(c *Config) { c.Virtio[0].NotifyOnVCPU = true },
		"another host profile":  func(c *Config) { c.Profile = ProfileEmulated }, // the header's, beside it
	}
	for name, edit := range same {
		c := base()
		edit(&c)
		if got := sum(c); got != want {
			t.Errorf("%s changes the fingerprint", name)
		}
	}
	differ := map[string]func(*Config){
		"more vCPUs":          func(c *Config) { c.CPUs = 4 },
		"more memory":         func(c *Config) { c.MemBytes = 512 << 20 },
		"a virtio console":    func(c *Config) { c.VirtioConsole = true },
		"a read-only disk":    func(c *Config) { c.Virtio[0].Device = disk(true) },
		"devices reordered":   func(c *Config) { c.Virtio[0], c.Virtio[1] = c.Virtio[1], c.Virtio[0] },
		"a device renamed":    func(c *Config) { c.Virtio[1].Name = "net1" },
		"a device less":       func(c *Config) { c.Virtio = c.Virtio[:2] },
		"another device type": func(c *Config) { c.Virtio[0].Device = nic(3) },
	}
	for name, edit := range differ {
		c := base()
		edit(&c)
		if got := sum(c); got == want {
			t.Errorf("%s leaves the fingerprint as it was", name)
		}
	}
}

// fakeLayer keeps one string in a section of its own.
type fakeLayer struct {
	state    string
	calls    []string
	loaded   string
	failLoad error
}

func (l *fakeLayer) SaveState(w *snapshot.Writer) error {
	l.calls = append(l.calls, "save")
	return w.Section("test/layer", l.state)
}

func (l *fakeLayer) LoadState(s *snapshot.Snapshot) error {
	l.calls = append(l.calls, "load")
	if l.failLoad != nil {
		return l.failLoad
	}
	return s.Section("test/layer", &l.loaded)
}

func (l *fakeLayer) RestoreState() error {
	l.calls = append(l.calls, "restore")
	return nil
}

// The Layer's state goes into the snapshot and comes back, loaded before
// the restore and applied after it; a restore without the Layer, or whose
// Layer refuses its state, refuses the snapshot. The virtio console (a
// transport the tiny guest never touches) comes along.
func TestSnapshotCarriesTheLayer(t *testing.T) {
	p := requireKVM(t)
	cfg := Config{MemBytes: 32 << 20, CPUs: 1, Profile: p, VirtioConsole: true}
	orig := &fakeLayer{state: "probes 1 2 3"}
	c := cfg
	c.Kernel, c.Layer = tinyKernel(spinCounter), orig
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Ending, 1)
	go func() { done <- m.Run() }()
	t.Cleanup(func() {
		m.Stop("test over")
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return in 30 s of Stop")
		}
		m.Close()
	})
	waitCounter(t, m, 100)
	dir := t.TempDir()
	if err := within(t, time.Minute, "Snapshot", func() error { return m.Snapshot(dir, false) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(orig.calls, ",") != "save" {
		t.Fatalf("layer calls %v, want one save", orig.calls)
	}

	back := &fakeLayer{}
	c = cfg
	c.Restore, c.Layer = dir, back
	r, err := New(c)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	r.Close()
	if back.loaded != orig.state || strings.Join(back.calls, ",") != "load,restore" {
		t.Fatalf("restored layer got %q, calls %v; want %q, load then restore", back.loaded, back.calls, orig.state)
	}

	c.Layer = nil
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "test/layer") {
		t.Fatalf("restore without the layer: %v, want the layer's section refused as dropped", err)
	}
	c.Layer = &fakeLayer{failLoad: errors.New("layer says no")}
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "layer says no") {
		t.Fatalf("restore with a refusing layer: %v", err)
	}
	c.Layer, c.VirtioConsole = back, false
	if _, err := New(c); !errors.Is(err, snapshot.ErrMismatch) {
		t.Fatalf("restore without the virtio console: %v, want a mismatch", err)
	}
}
