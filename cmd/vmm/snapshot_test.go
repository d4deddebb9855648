package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	vnet "github.com/tracevisor/tracevisor/virtio/net"
	"github.com/tracevisor/tracevisor/vmm"
)

// snapshotDir writes a snapshot directory whose only section is a NIC
// net0 with mac; enough for the run flags' checks and snapshotMACs.
func snapshotDir(t *testing.T, mac [6]byte) string {
	t.Helper()
	dev, err := json.Marshal(vnet.State{MAC: mac, LinkUp: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := snapshot.Header{VMMVersion: "test", Profile: "hardware", Config: map[string]int{}}
	err = snapshot.Save(dir, h, []snapshot.RAM{{GPA: 0, Data: make([]byte, snapshot.PageSize)}}, func(w *snapshot.Writer) error {
		return w.Section("virtio/net0", mmio.State{DeviceID: 1, Device: dev})
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// --restore is checked before anything is opened: a directory without a
// snapshot, and the flags only a boot uses, are refused, each saying why.
func TestRestoreFlagsAreChecked(t *testing.T) {
	dir := snapshotDir(t, [6]byte{0x52, 0x54, 0, 0, 0, 1})
	restoreFlags := func() runFlags {
		f := runFlagsForTest()
		f.kernel, f.initrd, f.restore = "", "", dir
		return f
	}
	if _, err := checkRun(restoreFlags(), meminfoOf(1<<20)); err != nil {
		t.Fatalf("a good --restore: %v", err)
	}
	empty := t.TempDir()
	noMem := snapshotDir(t, [6]byte{})
	os.Remove(filepath.Join(noMem, snapshot.MemoryFile))
	for _, tc := range []struct {
		name  string
		edit  func(f *runFlags)
		wants []string
	}{
		{"no snapshot there", func(f *runFlags) { f.restore = empty }, []string{"--restore", "no snapshot there", snapshot.StateFile, "vmm snapshot"}},
		{"no such directory", func(f *runFlags) { f.restore = filepath.Join(empty, "none") }, []string{"no snapshot there"}},
		{"no memory file", func(f *runFlags) { f.restore = noMem }, []string{snapshot.MemoryFile}},
		{"a kernel", func(f *runFlags) { f.kernel = "/boot/vmlinux" }, []string{"--kernel with --restore"}},
		{"an initrd", func(f *runFlags) { f.initrd = "/boot/initrd" }, []string{"--initrd with --restore"}},
		{"a command line", func(f *runFlags) { f.cmdline = "quiet" }, []string{"--cmdline with --restore"}},
		{"boot probes", func(f *runFlags) { f.probes = []string{"catalogue:oom"} }, []string{"--probe with --restore", "vmm probe attach"}},
		{"a report over the snapshot", func(f *runFlags) { f.report = filepath.Join(dir, snapshot.MemoryFile) }, []string{"--report", "--restore"}},
	} {
		f := restoreFlags()
		tc.edit(&f)
		_, err := checkRun(f, meminfoOf(1<<20))
		wantErr(t, tc.name, err, tc.wants...)
	}
	if code := runCmd([]string{"--restore", dir, "--", "true"}); code != exitUsage {
		t.Errorf("vmm run --restore DIR -- true: exit %d, want %d (a restored guest runs its own command)", code, exitUsage)
	}
}

// A restored NIC takes the snapshot's MAC when --net gives none, and one
// that names another is refused with the MAC to give.
func TestRestoredNICKeepsItsMAC(t *testing.T) {
	t.Setenv("TRACEVISOR_SWITCH_DIR", t.TempDir())
	mac := [6]byte{0x52, 0x54, 0, 0xab, 0xcd, 0xef}
	saved := snapshotMACs(snapshotDir(t, mac), 2)
	if len(saved) != 1 || saved[0] != mac {
		t.Fatalf("snapshotMACs = %v, want net0 %x only", saved, mac)
	}
	devs, _, closeAll, err := openNICs([]string{"switch:a"}, saved)
	if err != nil {
		t.Fatal(err)
	}
	if got := devs[0].Device.(*vnet.Device).MAC(); got != mac {
		t.Errorf("restored NIC has MAC %x, the snapshot's is %x", got, mac)
	}
	closeAll()
	devs, _, closeAll, err = openNICs([]string{"switch:b,mac=52:54:00:ab:cd:ef"}, saved)
	if err != nil {
		t.Fatalf("the snapshot's own MAC given: %v", err)
	}
	closeAll()
	_, _, _, err = openNICs([]string{"switch:c,mac=52:54:00:00:00:02"}, saved)
	wantErr(t, "another MAC on a restored NIC", err, "52:54:00:ab:cd:ef", "keeps it")
	// A boot gets a random MAC, or the one it names.
	devs, _, closeAll, err = openNICs([]string{"switch:d", "switch:e,mac=52:54:00:00:00:02"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if devs[0].Device.(*vnet.Device).MAC() == mac || devs[1].Device.(*vnet.Device).MAC() != [6]byte{0x52, 0x54, 0, 0, 0, 2} {
		t.Errorf("boot MACs %x %x", devs[0].Device.(*vnet.Device).MAC(), devs[1].Device.(*vnet.Device).MAC())
	}
}

// snapMachine is an api.Snapshotter for the snapshot command's tests.
type snapMachine struct {
	fakeMachine
	mu     sync.Mutex
	dirs   []string
	paused []bool
	resume int
	dumps  []string
}

func (m *snapMachine) Snapshot(dir string, stayPaused bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs, m.paused = append(m.dirs, dir), append(m.paused, stayPaused)
	if stayPaused {
		m.fakeMachine.mu.Lock()
		m.fakeMachine.st.State = vmm.StatePaused
		m.fakeMachine.mu.Unlock()
	}
	return nil
}

func (m *snapMachine) Resume() error {
	m.mu.Lock()
	m.resume++
	m.mu.Unlock()
	m.fakeMachine.mu.Lock()
	m.fakeMachine.st.State = vmm.StateRunning
	m.fakeMachine.mu.Unlock()
	return nil
}

// vmm snapshot sends an absolute directory and the paused flag, and says
// where the snapshot went and how the guest is; its usage errors exit 2.
func TestSnapshotCommand(t *testing.T) {
	m := &snapMachine{fakeMachine: fakeMachine{st: vmm.Status{State: vmm.StateRunning}}}
	sock := serveFake(t, m)
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if err := takeSnapshot(&out, sock, "snap", true); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if len(m.dirs) != 1 || m.dirs[0] != filepath.Join(wd, "snap") || !m.paused[0] {
		t.Fatalf("the vmm got %q (paused %v), want %s paused", m.dirs, m.paused, filepath.Join(wd, "snap"))
	}
	if !strings.Contains(out.String(), "snapshot written to "+filepath.Join(wd, "snap")) || !strings.Contains(out.String(), "the guest is paused") {
		t.Errorf("output %q", out.String())
	}
	if code := snapshotCmd([]string{"--api", sock, "/tmp/x"}); code != 0 || len(m.dirs) != 2 || m.paused[1] {
		t.Errorf("vmm snapshot --api SOCK /tmp/x: exit %d, calls %q %v", code, m.dirs, m.paused)
	}
	if code := resumeCmd([]string{"--api", sock}); code != 0 || m.resume != 1 {
		t.Errorf("vmm resume: exit %d, %d resumes", code, m.resume)
	}
	for _, args := range [][]string{{"/tmp/x"}, {"--api", sock}, {"--api", sock, "a", "b"}, {"--bogus"}} {
		if code := snapshotCmd(args); code != exitUsage {
			t.Errorf("vmm snapshot %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code := resumeCmd(nil); code != exitUsage {
		t.Errorf("vmm resume without --api: exit %d, want %d", code, exitUsage)
	}
	if code := snapshotCmd([]string{"--api", filepath.Join(t.TempDir(), "none.sock"), "/tmp/x"}); code != exitError {
		t.Errorf("vmm snapshot to no vmm: exit %d, want %d", code, exitError)
	}
}

// Dump implements api.Dumper: it records the path.
func (m *snapMachine) Dump(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dumps = append(m.dumps, path)
	return nil
}

// vmm dump sends an absolute path and says where the core went; its usage
// errors exit 2, a vmm that is not there 1.
func TestDumpCommand(t *testing.T) {
	m := &snapMachine{fakeMachine: fakeMachine{st: vmm.Status{State: vmm.StateFenced}}}
	sock := serveFake(t, m)
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if err := dumpCore(&out, sock, "vm.core"); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := filepath.Join(wd, "vm.core")
	if len(m.dumps) != 1 || m.dumps[0] != want {
		t.Fatalf("the vmm got dumps %q, want [%s]", m.dumps, want)
	}
	if !strings.Contains(out.String(), "core written to "+want) || !strings.Contains(out.String(), "the guest is fenced") {
		t.Errorf("output %q", out.String())
	}
	for _, args := range [][]string{{"/tmp/x"}, {"--api", sock}, {"--api", sock, "a", "b"}, {"--bogus"}} {
		if code := dumpCmd(args); code != exitUsage {
			t.Errorf("vmm dump %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code := dumpCmd([]string{"--api", filepath.Join(t.TempDir(), "none.sock"), "/tmp/x"}); code != exitError {
		t.Errorf("vmm dump to no vmm: exit %d, want %d", code, exitError)
	}
}
