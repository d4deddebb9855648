package tests

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Each test boots its own guest; they run two at a time (the host has two
// cores and a one-vCPU guest keeps one busy).

func TestCommandOutputAndStatus(t *testing.T) {
	t.Parallel()
	report := filepath.Join(t.TempDir(), "report.json")
	r := vmm(t, "", "run", "--report", report, "--", "sh", "-c", "echo $((6*7)); echo to-stderr >&2")
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); lines[0] != "42" {
		t.Errorf("first output line %q, want 42: %s", lines[0], r)
	}
	if !strings.Contains(r.stdout, "to-stderr") {
		t.Errorf("the command's stderr did not reach the console: %s", r)
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("carriage returns in output piped to a file: %q", r.stdout)
	}
	var rep struct {
		BootToInitMS float64 `json:"boot_to_init_ms"`
		ExitCode     int     `json:"exit_code"`
		Status       *int    `json:"command_status"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.BootToInitMS <= 0 || rep.Status == nil || *rep.Status != 0 {
		t.Errorf("report %s: want a boot time and command status 0", b)
	}
}

func TestCommandFalseExitsOne(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "false")
	if r.code != 1 {
		t.Fatalf("vmm run -- false: want exit 1: %s", r)
	}
}

func TestCommandKilledBySignal(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "sh", "-c", "echo before; kill -KILL $$; echo after")
	if r.code != 128+9 {
		t.Fatalf("want exit 137 (128+SIGKILL): %s", r)
	}
	if !strings.Contains(r.stdout, "before") || strings.Contains(r.stdout, "after") {
		t.Errorf("output %q", r.stdout)
	}
}

func TestMissingCommandIs127(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "no-such-program")
	if r.code != 127 || !strings.Contains(r.stdout, "no-such-program") {
		t.Fatalf("want exit 127 and a message naming the program: %s", r)
	}
}

func TestTwoVCPUs(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--cpus", "2", "--", "cat", "/sys/devices/system/cpu/online")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0-1" {
		t.Fatalf("want both CPUs online (0-1): %s", r)
	}
}

func TestInteractiveShellReadsConsoleInput(t *testing.T) {
	t.Parallel()
	// Type as a person would: after the shell's prompt appears.
	r := vmmInteractive(t, "/ # ", "echo typed-$((3+4))\nexit 5\n")
	if r.code != 5 || !strings.Contains(r.stdout, "typed-7") {
		t.Fatalf("want the shell to run typed input and exit 5: %s", r)
	}
}

func TestGuestPanicEnding(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "sh", "-c", "echo c > /proc/sysrq-trigger")
	if r.code != 82 || !strings.Contains(r.stderr, "panic") {
		t.Fatalf("want exit 82 and a panic reason: %s", r)
	}
}

func TestGuestRebootEnding(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "reboot", "-f")
	if r.code != 80 || !strings.Contains(r.stderr, "reset") {
		t.Fatalf("want exit 80 and a reset reason: %s", r)
	}
}

// bootParams is guest shell that prints the kernel's boot_params as the
// boot left them: the boot protocol version and type_of_loader (offset
// 0x210 of struct boot_params).
const bootParams = `echo proto=$(cat /sys/kernel/boot_params/version); echo loader=$(od -An -tx1 -j528 -N1 /sys/kernel/boot_params/data)`

var bootParamsRE = regexp.MustCompile(`proto=(0x[0-9a-f]{4})\s+loader=\s*([0-9a-f]{2})`)

// guestBootParams returns what bootParams printed.
func guestBootParams(t *testing.T, r result) (proto, loader string) {
	t.Helper()
	m := bootParamsRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the guest did not print its boot_params: %s", r)
	}
	return m[1], m[2]
}

// The default kernel, a vmlinux, boots through PVH: the kernel builds its
// boot_params itself from the PVH start info, with protocol 2.12 and
// loader type 0xb0 (arch/x86/platform/pvh/enlighten.c).
func TestPVHBoot(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--", "sh", "-c", bootParams)
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	if proto, loader := guestBootParams(t, r); proto != "0x020c" || loader != "b0" {
		t.Errorf("PVH boot: boot_params version %s, type_of_loader %s; want 0x020c and b0 (set by the kernel's PVH entry)", proto, loader)
	}
}

// A bzImage boots through the 64-bit boot protocol: boot_params is the
// zero page vmm filled, with the bzImage's own setup header (its protocol
// version) and type_of_loader 0xff (a loader with no assigned ID). A PVH
// boot would show 0x020c and 0xb0 instead (TestPVHBoot).
func TestBzImageBoot(t *testing.T) {
	t.Parallel()
	bz := filepath.Join(buildDir, "guest-kernel/bzImage")
	r := vmm(t, "", "run", "--kernel", bz, "--", "sh", "-c", "echo bz-$((1+1)); "+bootParams)
	if r.code != 0 || !strings.Contains(r.stdout, "bz-2") {
		t.Fatalf("bzImage boot: %s", r)
	}
	b, err := os.ReadFile(bz)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 0x208 {
		t.Fatalf("%s: %d bytes, too short for a setup header", bz, len(b))
	}
	want := fmt.Sprintf("0x%04x", binary.LittleEndian.Uint16(b[0x206:])) // setup_header.version
	if want == "0x020c" {
		t.Fatalf("%s declares boot protocol 2.12, the version PVH reports: the test cannot tell the paths apart", bz)
	}
	if proto, loader := guestBootParams(t, r); proto != want || loader != "ff" {
		t.Errorf("bzImage boot: boot_params version %s, type_of_loader %s; want %s (the bzImage's header) and ff (vmm's loader type)", proto, loader, want)
	}
}
