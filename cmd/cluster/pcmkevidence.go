package main

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

// maxEvidence bounds each file keepEvidence copies (its end is kept): a
// vmm.log holds a guest's whole console.
const maxEvidence = 1 << 20

// keepEvidence copies the VMs' state files under state (each instance's
// agent, fast-path, vmm and event logs of its kept runs) into dir, so
// that a run that went wrong can still be examined after the runs that
// follow have rotated them away. Only regular files are copied (not the
// API sockets).
func keepEvidence(state, dir string) error {
	return filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(state, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(vmmnode.Tail(path, maxEvidence)), 0o644)
	})
}

// failedRun reports whether a run went wrong in any cluster: the
// client was not served by the standby, or the failed VM took more than
// one start to come back.
func failedRun(rs []pcmkResult) bool {
	for _, r := range rs {
		if r.Err != "" || r.Starts > 1 {
			return true
		}
	}
	return false
}
