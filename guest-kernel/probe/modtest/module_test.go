// Package modtest builds the guest's probe driver (the C sources in the
// directory above: Go refuses C files in a package without cgo) out of tree,
// as a module for Debian's stock kernel. The project's own guest kernel has
// the driver built in (guest-kernel/build.sh).
package modtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

// The driver builds as a module against every installed stock kernel's
// headers, with W=1 and no warning in its own sources, and claims the probe
// device's ID.
func TestModuleBuildsAgainstStockHeaders(t *testing.T) {
	kdirs, err := filepath.Glob("/usr/src/linux-headers-*-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(kdirs) == 0 {
		testenv.Missing(t, testenv.Headers, "no /usr/src/linux-headers-*-amd64 (Debian: apt-get install linux-headers-amd64); skipping the out-of-tree module build")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed")
	}
	sources, err := filepath.Glob("../*.[ch]")
	if err != nil {
		t.Fatal(err)
	}
	sources = append(sources, "../Kbuild", "../Makefile")
	devID := deviceID(t)

	for _, kdir := range kdirs {
		t.Run(filepath.Base(kdir), func(t *testing.T) {
			// A copy: kbuild writes its objects beside the sources.
			dir := t.TempDir()
			for _, s := range sources {
				b, err := os.ReadFile(s)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("make", "-C", dir, "KDIR="+kdir, "W=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -C %s KDIR=%s W=1: %v\n%s", dir, kdir, err, out)
			}
			// Warnings from the kernel's own headers are not ours to fix.
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, dir+"/") && strings.Contains(line, "warning:") {
					t.Errorf("driver warning: %s", line)
				}
			}
			ko, err := os.ReadFile(filepath.Join(dir, "tracevisor_probe.ko"))
			if err != nil {
				t.Fatal(err)
			}
			alias := "alias=virtio:d0000" + devID + "v*"
			if !bytes.Contains(ko, []byte(alias)) {
				t.Errorf("tracevisor_probe.ko lacks %q: it would not be loaded for the probe device", alias)
			}
		})
	}
}

// deviceID is TVP_DEVICE_ID from the wire header, as modinfo prints it:
// four upper-case hex digits.
func deviceID(t *testing.T) string {
	b, err := os.ReadFile("../tracevisor_probe.h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`#define TVP_DEVICE_ID 0x([0-9a-fA-F]{4})\b`).FindSubmatch(b)
	if m == nil {
		t.Fatal("tracevisor_probe.h: no four-digit TVP_DEVICE_ID")
	}
	return strings.ToUpper(string(m[1]))
}
