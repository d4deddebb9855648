package snapshot

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestSaveLoad: Save writes a directory that Load verifies and whose memory
// maps back; the header records the memory layout Save wrote.
func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	ram := testRAM()
	h := testHeader()
	h.Memory = nil // Save fills it
	err := Save(dir, h, ram, func(w *Writer) error {
		return w.Section("vcpu/0/regs", regs{RIP: 42})
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, testExpect)
	if err != nil {
		t.Fatal(err)
	}
	var r regs
	if err := s.Section("vcpu/0/regs", &r); err != nil || r.RIP != 42 {
		t.Fatalf("section: %+v, %v", r, err)
	}
	if len(s.Info.Memory) != 2 || s.Info.Created.IsZero() {
		t.Fatalf("info %+v", s.Info)
	}
	m, err := s.MapMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !bytes.Equal(m.Regions()[1].Host, ram[1].Data) {
		t.Errorf("memory differs")
	}
	if err := VerifyMemory(filepath.Join(dir, MemoryFile), s.Info.Memory); err != nil {
		t.Error(err)
	}
}

// TestSaveFailureLeavesNoState: a Save whose sections fail, over an
// existing snapshot, leaves no state file (the old one is gone, the new
// one never appears): the directory is not a snapshot, rather than an old
// state paired with new memory.
func TestSaveFailureLeavesNoState(t *testing.T) {
	dir := t.TempDir()
	ok := func(w *Writer) error { return w.Section("a", 1) }
	if err := Save(dir, testHeader(), testRAM(), ok); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("device refused to save")
	err := Save(dir, testHeader(), testRAM()[:1], func(w *Writer) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Save: %v", err)
	}
	if _, err := Load(dir, testExpect); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after a failed Save: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	if _, err := os.Stat(filepath.Join(dir, MemoryFile)); err != nil {
		t.Errorf("memory file: %v", err)
	}
}
