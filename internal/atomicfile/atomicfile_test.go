package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves the old file and no temporary file.
	boom := errors.New("boom")
	err := Write(path, 0o600, func(f *os.File) error {
		f.WriteString("half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("files left: %v", names)
	}
	// One that succeeds replaces it, with the mode asked for.
	if err := Write(path, 0o600, func(f *os.File) error { _, err := f.WriteString("new"); return err }); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "new" || st.Mode().Perm() != 0o600 {
		t.Errorf("after the write: %q, mode %v (%v); want \"new\", 0600", b, st.Mode(), err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("files left: %v", names)
	}
	// A path that is not a regular file is not replaced.
	link := filepath.Join(dir, "dev")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	if err := Replace(link, 0o600, func(f *os.File) error { return nil }); err == nil {
		t.Error("a symlink was replaced")
	}
	if target, err := os.Readlink(link); err != nil || target != "/dev/null" {
		t.Errorf("the symlink now: %q, %v", target, err)
	}
}
