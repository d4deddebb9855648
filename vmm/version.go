package vmm

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// BuildVersion, when set at link time (go build -ldflags "-X
// github.com/tracevisor/tracevisor/vmm.BuildVersion=v1.2.3"), is this
// VMM's version as Version reports it.
var BuildVersion string

// Version names this build of the VMM in a snapshot's header; a restore
// refuses a snapshot that another version took, since the state sections
// are this build's layout. It is, first that applies:
//
//   - BuildVersion, set at link time;
//   - "git:<revision>", the commit the binary was built from (Go stamps it
//     when building inside a checkout), for a clean tree;
//   - "git:<revision>+dirty.<sha256 of the executable, 12 hex>" for a tree
//     with changes, or "devel.<executable hash>" without VCS information
//     (go test, go run): two builds of uncommitted code get two versions,
//     so a snapshot is only restored by the very binary that wrote it.
func Version() string { return version() }

var version = sync.OnceValue(func() string {
	if BuildVersion != "" {
		return BuildVersion
	}
	rev, dirty := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	switch {
	case rev != "" && !dirty:
		return "git:" + rev
	case rev != "":
		return "git:" + rev + "+dirty." + executableHash()
	}
	return "devel." + executableHash()
})

// executableHash is the first 12 hex digits of the running executable's
// SHA-256, or "unknown".
func executableHash() string {
	path, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:12]
}
