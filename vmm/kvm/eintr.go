package kvm

import (
	"errors"

	"golang.org/x/sys/unix"
)

// retry calls an ioctl wrapper until it is not interrupted. Go's runtime
// signals its threads (preemption, the vCPU kicks), and KVM ioctls such as
// KVM_CREATE_VM return EINTR when a signal arrives: setup ioctls are simply
// repeated. KVM_RUN is not retried here; its EINTR is a kick (VCPU.Run).
func retry(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// retryValue is retry for wrappers that return a value.
func retryValue[T any](f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
}
