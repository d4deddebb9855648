package tests

import (
	"strings"
	"testing"
)

func TestVirtioConsoleIsTheGuestConsole(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--console", "virtio", "--", "sh", "-c", "cat /sys/class/tty/console/active; echo via-$((2+3)); exit 4")
	if r.code != 4 || !strings.Contains(r.stdout, "hvc0") || !strings.Contains(r.stdout, "via-5") {
		t.Fatalf("want the command on hvc0, its output and exit 4: %s", r)
	}
}

func TestVirtioConsoleInteractiveInput(t *testing.T) {
	t.Parallel()
	r := vmmInteractive(t, "/ # ", "echo hvc-typed-$((5*5))\nexit 6\n", "--console", "virtio")
	if r.code != 6 || !strings.Contains(r.stdout, "hvc-typed-25") {
		t.Fatalf("want typed input run on hvc0 and exit 6: %s", r)
	}
}
