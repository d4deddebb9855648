// Package guestfiles is the one rule for where the vmm finds the project's
// guest kernel and initramfs when it is given none: the vmm uses it to
// load them, and the golden snapshot store to name the guest a snapshot
// was booted from.
package guestfiles

import (
	"os"
	"path/filepath"
	"strings"
)

// The project's guest, relative to a build directory.
const (
	Kernel    = "guest-kernel/vmlinux"
	Initramfs = "initramfs.cpio"
)

// Dirs are the build directories searched, in order: build (the value
// of TRACEVISOR_BUILD, if any), the directory of the vmm executable exe
// (make puts it in build/, make install-pcmk beside the guest), and
// ./build.
func Dirs(build, exe string) []string {
	var dirs []string
	if build != "" {
		dirs = append(dirs, build)
	}
	if exe != "" {
		dirs = append(dirs, filepath.Dir(exe))
	}
	return append(dirs, "build")
}

// Find returns the first dir/rel of dirs that exists, and every path
// tried (for an error that says where it looked).
func Find(dirs []string, rel string) (string, []string) {
	var tried []string
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", tried
}

// BuildFromEnv returns TRACEVISOR_BUILD's value in env (KEY=VALUE
// entries, the last one counting, as exec does), or "".
func BuildFromEnv(env []string) string {
	v := ""
	for _, e := range env {
		if rest, ok := strings.CutPrefix(e, "TRACEVISOR_BUILD="); ok {
			v = rest
		}
	}
	return v
}
