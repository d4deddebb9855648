package api

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/probe/probetest"
	"github.com/tracevisor/tracevisor/vmm"
)

// snapMachine is a fakeMachine that can also be snapshotted.
type snapMachine struct {
	*fakeMachine
	mu      sync.Mutex
	dirs    []string
	paused  []bool
	resumes int
	err     error
}

func (s *snapMachine) Snapshot(dir string, stayPaused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.dirs, s.paused = append(s.dirs, dir), append(s.paused, stayPaused)
	if stayPaused {
		s.fakeMachine.mu.Lock()
		s.fakeMachine.st.State = vmm.StatePaused
		s.fakeMachine.mu.Unlock()
	}
	return nil
}

func (s *snapMachine) Resume() error {
	s.mu.Lock()
	s.resumes++
	s.mu.Unlock()
	s.fakeMachine.mu.Lock()
	s.fakeMachine.st.State = vmm.StateRunning
	s.fakeMachine.mu.Unlock()
	return nil
}

func serveSnap(t *testing.T, m Machine) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := Listen(sock, probetest.New(t).Host, NewControl(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return sock
}

// snapshot and resume reach the machine with what the client asked, and
// answer with the machine's status; bad directories and failures come
// back as errors, and a machine that cannot be snapshotted says so.
func TestSnapshotAndResumeOverTheSocket(t *testing.T) {
	m := &snapMachine{fakeMachine: newFakeMachine()}
	sock := serveSnap(t, m)
	dir := filepath.Join(t.TempDir(), "snap")
	r, err := Snapshot(sock, dir, true)
	if err != nil || r.Machine == nil || r.Machine.State != vmm.StatePaused || r.SnapshotNS <= 0 {
		t.Fatalf("snapshot --paused: %+v, %v", r, err)
	}
	if _, err := Snapshot(sock, dir, false); err != nil {
		t.Fatal(err)
	}
	if len(m.dirs) != 2 || m.dirs[0] != dir || !m.paused[0] || m.paused[1] {
		t.Fatalf("the machine got snapshots %q paused %v", m.dirs, m.paused)
	}
	if r, err := Resume(sock); err != nil || r.Machine.State != vmm.StateRunning || m.resumes != 1 {
		t.Fatalf("resume: %+v, %v (%d resumes)", r, err, m.resumes)
	}
	for _, tc := range []struct{ dir, want string }{
		{"", "no directory"},
		{"relative/snap", "not an absolute path"},
	} {
		if _, err := Snapshot(sock, tc.dir, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("snapshot to %q: %v, want an error saying %q", tc.dir, err, tc.want)
		}
	}
	m.err = errors.New("vmm: the guest is fenced")
	if _, err := Snapshot(sock, dir, false); err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Errorf("a failing snapshot answered %v", err)
	}
	if len(m.dirs) != 2 {
		t.Errorf("refused requests reached the machine: %q", m.dirs)
	}

	plain := serveSnap(t, newFakeMachine())
	if _, err := Snapshot(plain, dir, false); err == nil || !strings.Contains(err.Error(), "cannot be snapshotted") {
		t.Errorf("snapshot of a machine without Snapshot: %v", err)
	}
}

// dumpMachine is a fakeMachine that can be dumped.
type dumpMachine struct {
	*fakeMachine
	mu    sync.Mutex
	paths []string
}

func (d *dumpMachine) Dump(path string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paths = append(d.paths, path)
	return nil
}

// dump reaches the machine with the path asked for and answers with the
// time it took; a missing or relative path is refused before it, and a
// machine that cannot be dumped says so.
func TestDumpOverTheSocket(t *testing.T) {
	m := &dumpMachine{fakeMachine: newFakeMachine()}
	sock := serveSnap(t, m)
	core := filepath.Join(t.TempDir(), "vm.core")
	r, err := Dump(sock, core)
	if err != nil || r.Machine == nil || r.DumpNS <= 0 {
		t.Fatalf("dump: %+v, %v", r, err)
	}
	for _, tc := range []struct{ path, want string }{
		{"", "no file"},
		{"vm.core", "not an absolute path"},
	} {
		if _, err := Dump(sock, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dump to %q: %v, want an error saying %q", tc.path, err, tc.want)
		}
	}
	if len(m.paths) != 1 || m.paths[0] != core {
		t.Errorf("the machine got dumps %q, want [%s]", m.paths, core)
	}
	plain := serveSnap(t, newFakeMachine())
	if _, err := Dump(plain, core); err == nil || !strings.Contains(err.Error(), "cannot be dumped") {
		t.Errorf("dump of a machine without Dump: %v", err)
	}
}
