package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
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

func TestBzImageBoot(t *testing.T) {
	t.Parallel()
	r := vmm(t, "", "run", "--kernel", filepath.Join(buildDir, "guest-kernel/bzImage"), "--", "sh", "-c", "echo bz-$((1+1))")
	if r.code != 0 || !strings.Contains(r.stdout, "bz-2") {
		t.Fatalf("bzImage boot: %s", r)
	}
}
