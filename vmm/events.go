package vmm

import (
	"sync"
	"time"
)

// eventLog keeps what the guest's init reported through the debug device.
type eventLog struct {
	mu       sync.Mutex
	init     time.Time
	hasInit  bool
	exitCode *int
}

func (e *eventLog) recordInit(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.hasInit {
		e.init, e.hasInit = t, true
	}
}

func (e *eventLog) recordStatus(s int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exitCode = &s
}

func (e *eventLog) initStart() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.init, e.hasInit
}

func (e *eventLog) status() *int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exitCode
}
