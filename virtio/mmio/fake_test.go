package mmio

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// fakeDevice records the transport's calls.
type fakeDevice struct {
	mu          sync.Mutex
	id          uint32
	features    uint64
	maxSizes    []uint16
	config      [16]byte
	activateErr error
	activations []ActivateContext
	resets      int
	notifies    []uint32
}

func (d *fakeDevice) DeviceID() uint32        { return d.id }
func (d *fakeDevice) Features() uint64        { return d.features }
func (d *fakeDevice) QueueMaxSizes() []uint16 { return d.maxSizes }

func (d *fakeDevice) ReadConfig(offset uint64, data []byte) {
	for i := range data {
		if o := offset + uint64(i); o < uint64(len(d.config)) {
			data[i] = d.config[o]
		} else {
			data[i] = 0
		}
	}
}

func (d *fakeDevice) WriteConfig(offset uint64, data []byte) {
	for i, b := range data {
		if o := offset + uint64(i); o < uint64(len(d.config)) {
			d.config[o] = b
		}
	}
}

func (d *fakeDevice) Activate(ctx ActivateContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.activations = append(d.activations, ctx)
	return d.activateErr
}

func (d *fakeDevice) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resets++
}

func (d *fakeDevice) Notify(q uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notifies = append(d.notifies, q)
}

// harness is a transport with a fake device and a recorded IRQ line.
type harness struct {
	t      *testing.T
	dev    *fakeDevice
	mem    *guestmem.Memory
	tr     *Transport
	levels []bool
	errs   []error
}

const blkFeatures = 1<<9 | 1<<6 // VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_BLK_SIZE

func newHarness(t *testing.T) *harness {
	h := &harness{t: t}
	h.dev = &fakeDevice{id: 2, features: blkFeatures | 1<<28 /* INDIRECT_DESC */, maxSizes: []uint16{256, 128}}
	h.mem = guestmem.FromRegions(guestmem.Region{GPA: 0, Host: make([]byte, 4096)})
	h.tr = New(h.dev, h.mem, func(level bool) { h.levels = append(h.levels, level) })
	h.tr.SetRejectHook(func(err error) { h.errs = append(h.errs, err) })
	return h
}

func (h *harness) r(off uint64) uint32 {
	var b [4]byte
	h.tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func (h *harness) w(off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	h.tr.Write(off, b[:])
}

// addStatus does what Linux's virtio_add_status does: read, OR, write.
func (h *harness) addStatus(bit uint32) {
	h.w(VIRTIO_MMIO_STATUS, h.r(VIRTIO_MMIO_STATUS)|bit)
}

func (h *harness) status() uint32 { return h.r(VIRTIO_MMIO_STATUS) }

// rejected reports whether some ignored access wrapped target since the
// last call, and forgets the recorded errors.
func (h *harness) rejected(target error) bool {
	defer func() { h.errs = nil }()
	for _, e := range h.errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}

// negotiate walks reset, ACKNOWLEDGE, DRIVER and writes features, ending
// with FEATURES_OK; it returns the status read back.
func (h *harness) negotiate(features uint64) uint32 {
	h.w(VIRTIO_MMIO_STATUS, 0)
	h.addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, uint32(features>>32))
	h.w(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0)
	h.w(VIRTIO_MMIO_DRIVER_FEATURES, uint32(features))
	h.addStatus(VIRTIO_CONFIG_S_FEATURES_OK)
	return h.status()
}

// setupQueue programs queue i as Linux's vm_setup_vq does.
func (h *harness) setupQueue(i, num uint32, desc, avail, used uint64) {
	h.w(VIRTIO_MMIO_QUEUE_SEL, i)
	h.w(VIRTIO_MMIO_QUEUE_NUM, num)
	h.w(VIRTIO_MMIO_QUEUE_DESC_LOW, uint32(desc))
	h.w(VIRTIO_MMIO_QUEUE_DESC_HIGH, uint32(desc>>32))
	h.w(VIRTIO_MMIO_QUEUE_AVAIL_LOW, uint32(avail))
	h.w(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, uint32(avail>>32))
	h.w(VIRTIO_MMIO_QUEUE_USED_LOW, uint32(used))
	h.w(VIRTIO_MMIO_QUEUE_USED_HIGH, uint32(used>>32))
	h.w(VIRTIO_MMIO_QUEUE_READY, 1)
}

// activate brings the device all the way to DRIVER_OK with both queues.
func (h *harness) activate() {
	h.t.Helper()
	if st := h.negotiate(VIRTIO_F_VERSION_1 | blkFeatures); st&VIRTIO_CONFIG_S_FEATURES_OK == 0 {
		h.t.Fatalf("FEATURES_OK not kept: status %#x", st)
	}
	h.setupQueue(0, 256, 0x1000, 0x2000, 0x3000)
	h.setupQueue(1, 64, 0x4000, 0x5000, 0x6000)
	h.addStatus(VIRTIO_CONFIG_S_DRIVER_OK)
	if len(h.dev.activations) != 1 {
		h.t.Fatalf("Activate called %d times, want 1", len(h.dev.activations))
	}
	h.errs = nil
}
