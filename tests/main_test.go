// Package tests holds tracevisor's end-to-end tests: they run the vmm binary
// against the project's real guest kernel and initramfs (built by `make
// all`; `make test` builds them first).
//
// Where /dev/kvm is absent every test skips, saying so. Where it is present
// and the build is missing, the tests fail: they never skip silently.
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

var buildDir string

// goldenDir is the golden store (failover/golden) the tests' clusters
// share: a node is booted once for the whole package, snapshotted once
// it serves, and every later cluster whose node boots alike restores it.
var goldenDir string

func TestMain(m *testing.M) {
	buildDir = os.Getenv("TRACEVISOR_BUILD")
	if buildDir == "" {
		buildDir, _ = filepath.Abs("../build")
	}
	dir, err := os.MkdirTemp("", "tracevisor-golden-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goldenDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need returns the path of the vmm binary after checking the guest build.
func need(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that boots a real guest")
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		testenv.Missing(t, testenv.KVM, "/dev/kvm is absent on this host: skipping a test that boots a real guest")
	}
	for _, f := range []string{"vmm", "guest-kernel/vmlinux", "guest-kernel/bzImage", "initramfs.cpio"} {
		if _, err := os.Stat(filepath.Join(buildDir, f)); err != nil {
			t.Fatalf("%s missing in %s: run 'make all' (make test does it)", f, buildDir)
		}
	}
	return filepath.Join(buildDir, "vmm")
}

// result is one vmm run.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// vmm runs the vmm binary with args and stdin, with a generous timeout (a
// guest boot on an emulating host takes tens of seconds).
func vmm(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r, err := runVMM(t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runVMM is vmm for goroutines other than the test's: it returns failures
// instead of ending the test.
func runVMM(t *testing.T, stdin string, args ...string) (result, error) {
	cmd := vmmCommand(t, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(8 * time.Minute):
		cmd.Process.Kill()
		<-done
		return result{}, fmt.Errorf("vmm %v did not finish in 8 minutes\nstdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if r.code, err = exitCode(err); err != nil {
		return result{}, err
	}
	t.Logf("vmm %s -> exit %d in %.1fs", strings.Join(args, " "), r.code, r.elapsed.Seconds())
	return r, nil
}

// vmmCommand is the vmm binary with args, pointed at the build directory.
func vmmCommand(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(need(t), args...)
	cmd.Env = vmmEnv()
	return cmd
}

// vmmEnv is the environment vmm runs with: the test's build directory.
func vmmEnv() []string { return append(os.Environ(), "TRACEVISOR_BUILD="+buildDir) }

// exitCode turns cmd.Wait's error into the process's exit code; any other
// failure is returned.
func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	}
	return 0, err
}

// vmmInteractive runs `vmm run` with no command and types input once the
// console shows prompt.
func vmmInteractive(t *testing.T, prompt, input string, runFlags ...string) result {
	t.Helper()
	cmd := vmmCommand(t, append([]string{"run"}, runFlags...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &promptWatcher{prompt: prompt, seen: make(chan struct{})}
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-out.seen:
		io.WriteString(stdin, input)
	case err = <-done:
		t.Fatalf("vmm ended before its prompt (%v)\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("no prompt in 5 minutes\nstdout:\n%s", out.String())
	}
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("vmm did not end after the input\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if r.code, err = exitCode(err); err != nil {
		t.Fatal(err)
	}
	t.Logf("vmm run (interactive) -> exit %d in %.1fs", r.code, r.elapsed.Seconds())
	return r
}

// promptWatcher collects output and closes seen once prompt has appeared.
type promptWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	prompt string
	seen   chan struct{}
	once   sync.Once
}

func (p *promptWatcher) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	if strings.Contains(p.buf.String(), p.prompt) {
		p.once.Do(func() { close(p.seen) })
	}
	return len(b), nil
}

func (p *promptWatcher) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}
