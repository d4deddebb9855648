package netns

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

func TestRetry(t *testing.T) {
	n := 0
	err := Retry(context.Background(), time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Retry = %v after %d tries, want nil after 3", err, n)
	}

	err = Retry(context.Background(), 5*time.Millisecond, time.Millisecond, func() error { return os.ErrNotExist })
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Retry past its limit = %v, want the last error, wrapped", err)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("vmm exited"))
	err = Retry(ctx, time.Minute, time.Millisecond, func() error { return os.ErrNotExist })
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "vmm exited") {
		t.Fatalf("Retry with an ended context = %v, want its cause and the last error", err)
	}
}

// A namespace from New is a different network namespace, entered by Do,
// and gone after Delete.
func TestNamespace(t *testing.T) {
	if why := Unusable(); why != "" {
		testenv.Missing(t, testenv.Netns, "cannot make a network namespace here: %s", why)
	}
	ns, err := New("tvunit-")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside string
	if err := ns.Do(func() (err error) {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == "" || inside == host {
		t.Errorf("Do ran in net namespace %q, the host's is %q", inside, host)
	}
	if err := ns.IP("link", "show", "lo"); err != nil {
		t.Error(err)
	}
	if err := ns.ConfigureTAP(context.Background(), "lo", "10.9.9.9/32"); err != nil {
		t.Errorf("configuring lo as if it were a tap: %v", err)
	}
	if err := ns.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/var/run/netns/" + string(ns)); !os.IsNotExist(err) {
		t.Errorf("namespace file still there after Delete: %v", err)
	}
}
