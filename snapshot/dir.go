package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tracevisor/tracevisor/internal/atomicfile"
)

// The files of a snapshot directory.
const (
	// StateFile is the state file's name in a snapshot directory.
	StateFile = "state.tvsnap"
	// MemoryFile is the memory file's name in a snapshot directory.
	MemoryFile = "memory.raw"
)

// Save writes a complete snapshot into dir (created if missing): it removes
// any old state file first, writes ram as the memory file, then the state
// file with header h (its Memory set to the memory file's layout, Created
// to now if zero) and the sections that sections writes. Each file is
// written under a temporary name and renamed into place, the state file
// last, so dir holds a state file only when both are complete and match.
func Save(dir string, h Header, ram []RAM, sections func(*Writer) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	state := filepath.Join(dir, StateFile)
	if err := os.Remove(state); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: removing the old state file: %w", err)
	}
	layout, err := WriteMemory(filepath.Join(dir, MemoryFile), ram)
	if err != nil {
		return err
	}
	h.Memory = layout
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	if err := atomicfile.Write(state, 0o600, func(f *os.File) error { return writeState(f, h, sections) }); err != nil {
		return fmt.Errorf("snapshot: state file: %w", err)
	}
	return nil
}

func writeState(f *os.File, h Header, sections func(*Writer) error) error {
	w := NewWriter(f, h)
	if err := sections(w); err != nil {
		return err
	}
	return w.Close()
}

// Load reads and verifies dir's state file against e (see Read). Map its
// memory with s.MapMemory(dir).
func Load(dir string, e Expect) (*Snapshot, error) {
	f, err := os.Open(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	return Read(f, e) // Read buffers
}

// MapMemory maps dir's memory file privately by the snapshot's layout (see
// the package function MapMemory).
func (s *Snapshot) MapMemory(dir string) (*Mapping, error) {
	return MapMemory(filepath.Join(dir, MemoryFile), s.Info.Memory)
}
