package vmm

import (
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/vmm/kvm"
)

// clockResync is how old a kvmclock-to-host mapping may get before
// GuestClock samples KVM_GET_CLOCK again.
const clockResync = time.Second

// GuestClock maps this VM's kvmclock readings (what a guest reads from its
// kvm-clock clocksource) to host wall-clock time, from KVM_GET_CLOCK.
type GuestClock struct {
	vm *kvm.VM

	mu     sync.Mutex
	offset int64 // host Unix ns minus kvmclock ns
	at     time.Time
	ok     bool
}

// GuestClock returns the machine's kvmclock mapping.
func (m *Machine) GuestClock() *GuestClock { return &GuestClock{vm: m.vm} }

// HostNS maps a guest kvmclock reading to host Unix nanoseconds. ok is
// false when KVM_GET_CLOCK fails.
func (c *GuestClock) HostNS(guestNS uint64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || time.Since(c.at) > clockResync {
		c.sample()
	}
	return int64(guestNS) + c.offset, c.ok
}

// sample reads KVM_GET_CLOCK; where KVM gives no realtime pairing, the host
// time is the midpoint of the two reads around the ioctl.
func (c *GuestClock) sample() {
	before := time.Now()
	kc, rt, hasRT, err := c.vm.Clock()
	after := time.Now()
	if err != nil {
		c.ok = false
		return
	}
	host := before.UnixNano() + after.Sub(before).Nanoseconds()/2
	if hasRT {
		host = int64(rt)
	}
	c.offset, c.at, c.ok = host-int64(kc), after, true
}
