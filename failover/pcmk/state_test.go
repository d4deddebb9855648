package pcmk

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeepPreviousKeepsRuns starts a state's VM KeptRuns+2 times: the
// last KeptRuns runs' files survive, oldest first in Runs, and the older
// ones are gone.
func TestKeepPreviousKeepsRuns(t *testing.T) {
	s := State(filepath.Join(t.TempDir(), "n1", "vm1"))
	if err := os.MkdirAll(string(s), 0o755); err != nil {
		t.Fatal(err)
	}
	starts := KeptRuns + 2
	for i := 1; i <= starts; i++ {
		s.KeepPrevious()
		if err := os.WriteFile(s.Path("events.jsonl"), []byte{byte('0' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runs := s.Runs("events.jsonl")
	if len(runs) != KeptRuns+1 {
		t.Fatalf("Runs gave %d paths, want %d", len(runs), KeptRuns+1)
	}
	for k, path := range runs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("run %d of %d: %v", k, len(runs), err)
		}
		// The oldest kept run is start starts-KeptRuns; the current one is
		// the last start.
		if want := byte('0' + starts - KeptRuns + k); len(b) != 1 || b[0] != want {
			t.Errorf("%s holds %q, want start %c's", filepath.Base(path), b, want)
		}
	}
	matches, _ := filepath.Glob(s.Path("events*.jsonl"))
	if len(matches) != KeptRuns+1 {
		t.Errorf("the state holds %d events files (%v), want %d: older runs are removed", len(matches), matches, KeptRuns+1)
	}
	// The next start begins its own file.
	s.KeepPrevious()
	if s.Has("events.jsonl") {
		t.Error("events.jsonl still there after KeepPrevious")
	}
}
