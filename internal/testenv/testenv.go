// Package testenv is the one place where a test decides what to do when a
// host capability it needs is absent: skip, saying why — or, where the
// environment requires that capability (CI does), fail. A suite therefore
// cannot go green by skipping what the machine was supposed to have.
//
// TRACEVISOR_REQUIRE lists required capabilities, comma-separated, or
// "all". TRACEVISOR_SKIPLOG names a file to which every skip appends one
// line ("capability<TAB>test<TAB>reason"), so a runner can print a skip
// summary (.ci/run does).
package testenv

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Capabilities a test may need from the host.
const (
	KVM       = "kvm"       // /dev/kvm usable
	Root      = "root"      // running as root
	TUN       = "tun"       // /dev/net/tun and the right to make a tap
	Netns     = "netns"     // network namespaces (ip netns) usable
	GCC       = "gcc"       // a C compiler
	Headers   = "headers"   // Debian linux-headers-*-amd64 for out-of-tree modules
	Cpio      = "cpio"      // GNU cpio
	GDB       = "gdb"       // the GNU debugger (reads the vmm's core dumps)
	Build     = "build"     // the project's guest kernel and initramfs (make all)
	Pacemaker = "pacemaker" // pacemaker, corosync, crmsh and fence-agents installed
)

// Env variables read by this package.
const (
	RequireEnv = "TRACEVISOR_REQUIRE"
	SkipLogEnv = "TRACEVISOR_SKIPLOG"
)

// T is the part of testing.TB this package uses.
type T interface {
	Helper()
	Name() string
	Skip(args ...any)
	Fatal(args ...any)
}

// Required reports whether the environment requires capability.
func Required(capability string) bool {
	for _, c := range strings.Split(os.Getenv(RequireEnv), ",") {
		c = strings.TrimSpace(c)
		if c == "all" || c == capability {
			return true
		}
	}
	return false
}

// Missing is called by a test that found capability absent: it fails the
// test when the environment requires the capability, and skips it
// otherwise; either way the message says what is missing and why.
func Missing(t T, capability, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if Required(capability) {
		t.Fatal(fmt.Sprintf("%s is required here (%s=%s) but absent: %s", capability, RequireEnv, os.Getenv(RequireEnv), why))
		return
	}
	logSkip(capability, t.Name(), why)
	t.Skip(fmt.Sprintf("no %s: %s", capability, why))
}

var logMu sync.Mutex

// logSkip appends one line to the skip log, if one is named.
func logSkip(capability, test, why string) {
	path := os.Getenv(SkipLogEnv)
	if path == "" {
		return
	}
	logMu.Lock()
	defer logMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%s\n", capability, test, strings.ReplaceAll(why, "\n", " "))
}

// WaitFor polls cond every millisecond until it holds, and fails the test
// if it still does not after d: the one bounded wait for unit tests.
func WaitFor(t T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("timed out after %v waiting for %s", d, what))
			return
		}
		time.Sleep(time.Millisecond)
	}
}
