package kvm

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRetryRepeatsOnlyEINTR(t *testing.T) {
	calls := 0
	err := retry(func() error {
		calls++
		if calls < 3 {
			return unix.EINTR
		}
		return unix.EINVAL
	})
	if calls != 3 || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("retry made %d calls and returned %v; want 3 calls ending in EINVAL", calls, err)
	}
	v, err := retryValue(func() (int, error) {
		calls++
		if calls < 5 {
			return 0, unix.EINTR
		}
		return 42, nil
	})
	if v != 42 || err != nil {
		t.Fatalf("retryValue = %d, %v", v, err)
	}
}
