package vmm

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/virtio/mmio"
)

// stuckDevice is a virtio device with one queue whose Notify blocks until
// released, as a device stuck in slow disk I/O would.
type stuckDevice struct {
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (d *stuckDevice) DeviceID() uint32                    { return 2 }
func (d *stuckDevice) Features() uint64                    { return 0 }
func (d *stuckDevice) QueueMaxSizes() []uint16             { return []uint16{8} }
func (d *stuckDevice) ReadConfig(_ uint64, data []byte)    { clear(data) }
func (d *stuckDevice) WriteConfig(uint64, []byte)          {}
func (d *stuckDevice) Activate(mmio.ActivateContext) error { return nil }
func (d *stuckDevice) Reset()                              {}
func (d *stuckDevice) release()                            { d.once.Do(func() { close(d.gate) }) }

func (d *stuckDevice) Notify(uint32) {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	<-d.gate
}

// mmioStore: mov eax, v; mov [addr], eax. mmioLoad: mov eax, [addr].
func mmioStore(addr, v uint32) []byte {
	b := []byte{0xb8, 0, 0, 0, 0, 0xa3, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], v)
	binary.LittleEndian.PutUint32(b[6:], addr)
	return b
}

func mmioLoad(addr uint32) []byte {
	b := []byte{0xa1, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], addr)
	return b
}

// TestSlowDeviceDoesNotStallVCPU: the guest brings a device to DRIVER_OK,
// notifies its queue, and keeps reading the device's status register while
// the device is stuck in Notify. The read, and so the guest's power-off,
// must not wait for the device: its Notify runs off the vCPU and outside
// the transport's lock. Closing the machine then waits for the worker.
func TestSlowDeviceDoesNotStallVCPU(t *testing.T) {
	p := requireKVM(t)
	dev := &stuckDevice{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	t.Cleanup(dev.release)
	base, _ := virtioSlot(0)
	reg := func(off uint64) uint32 { return uint32(base + off) }
	code := concat(
		mmioStore(reg(mmio.VIRTIO_MMIO_STATUS), mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE),
		mmioStore(reg(mmio.VIRTIO_MMIO_STATUS), mmio.VIRTIO_CONFIG_S_ACKNOWLEDGE|mmio.VIRTIO_CONFIG_S_DRIVER),
		mmioStore(reg(mmio.VIRTIO_MMIO_DRIVER_FEATURES_SEL), 1),
		mmioStore(reg(mmio.VIRTIO_MMIO_DRIVER_FEATURES), 1), // VIRTIO_F_VERSION_1, bit 32
		mmioStore(reg(mmio.VIRTIO_MMIO_STATUS), 0xb),        // FEATURES_OK
		mmioStore(reg(mmio.VIRTIO_MMIO_STATUS), 0xf),        // DRIVER_OK
		mmioStore(reg(mmio.VIRTIO_MMIO_QUEUE_NOTIFY), 0),
		// Read Status 20000 times: long enough for the notification
		// to reach the device, however it travels.
		[]byte{0xb9, 0x20, 0x4e, 0, 0}, // mov ecx, 20000
		mmioLoad(reg(mmio.VIRTIO_MMIO_STATUS)),
		[]byte{0x49, 0x75, 0xf8}, // dec ecx; jnz back to the load
		cliHlt,
	)
	var out syncBuffer
	m, err := New(Config{Kernel: tinyKernel(code), MemBytes: 32 << 20, CPUs: 1, Profile: p, Console: &out,
		Virtio: []VirtioDevice{{Name: "stuck", Device: dev}}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan Ending, 1)
	go func() { done <- m.Run() }()
	select {
	case e := <-done:
		if e.Kind != EndPoweroff {
			t.Fatalf("ending %+v", e)
		}
	case <-time.After(20 * time.Second):
		m.Stop("test timeout")
		dev.release()
		<-done
		m.Close()
		t.Fatal("the guest stalled behind a device stuck in Notify")
	}
	select {
	case <-dev.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the device was never notified")
	}
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the device's Notify was still running")
	case <-time.After(50 * time.Millisecond):
	}
	dev.release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after Notify did")
	}
}
