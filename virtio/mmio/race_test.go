package mmio

import (
	"sync"
	"testing"
)

// TestConcurrentSignals drives interrupts from device goroutines while a
// vCPU acks them; run with -race. The line must end matching the status.
func TestConcurrentSignals(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	line := false
	h.tr = New(h.dev, h.mem, func(level bool) {
		mu.Lock()
		if level == line {
			t.Errorf("irq(%v) without a change", level)
		}
		line = level
		mu.Unlock()
	})
	h.activate()
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				h.tr.SignalUsed()
				if i%50 == 0 {
					h.tr.SignalConfig()
				}
			}
		}()
	}
	for i := 0; i < 500; i++ {
		h.w(VIRTIO_MMIO_INTERRUPT_ACK, h.r(VIRTIO_MMIO_INTERRUPT_STATUS))
	}
	wg.Wait()
	isr := h.r(VIRTIO_MMIO_INTERRUPT_STATUS)
	mu.Lock()
	defer mu.Unlock()
	if line != (isr != 0) {
		t.Fatalf("line %v with isr %#x", line, isr)
	}
}
