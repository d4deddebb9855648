// Package virtiotest plays the guest driver's side of split virtqueues in
// device tests: it lays rings out in test memory, posts buffers and reads
// back what the device used, and records interrupts.
package virtiotest

import (
	"sync"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
)

// Descriptor flags: VIRTQ_DESC_F_NEXT and VIRTQ_DESC_F_WRITE.
const (
	descNext  = 1
	descWrite = 2
)

// BufStride is the room each posted buffer gets in test memory.
const BufStride = 0x100

// Ring is one split queue of Size entries laid out in test memory:
// descriptors at Desc, the avail ring at Avail, the used ring at Used,
// buffer i at Buf + i*BufStride. Post and PostChain take descriptors
// round the table, as a driver reuses freed ones: the device must have
// used a chain before Size more descriptors are posted after it.
type Ring struct {
	Mem                    *guestmem.Memory
	Desc, Avail, Used, Buf uint64
	Size                   uint16
	n                      uint16 // avail entries published
	next                   uint16 // next free descriptor
}

// Buf is one descriptor of a chain for PostChain: Len bytes at Addr,
// device-writable when Write.
type Buf struct {
	Addr  uint64
	Len   uint32
	Write bool
}

// NewMemory returns size bytes of test guest memory at guest address 0.
func NewMemory(size int) *guestmem.Memory {
	return guestmem.FromRegions(guestmem.Region{GPA: 0, Host: make([]byte, size)})
}

// Post puts one single-descriptor buffer of size bytes, starting with data,
// on the avail ring; write makes it device-writable. It returns the
// buffer's guest address.
func (r *Ring) Post(data []byte, size uint32, write bool) uint64 {
	addr := r.Buf + uint64(r.next)*BufStride
	r.Mem.WriteAt(data, addr)
	r.PostChain(Buf{Addr: addr, Len: size, Write: write})
	return addr
}

// PostChain puts one chain of bufs (readable ones first, as the spec
// wants of drivers) on the avail ring: descriptors at the next free table
// entries, linked with NEXT. The buffers' contents are the caller's; they
// may overlap, as a guest's may. It returns the chain's head index.
func (r *Ring) PostChain(bufs ...Buf) uint16 {
	head := r.next
	for i, b := range bufs {
		d := r.Desc + uint64(r.next)*16
		flags := uint16(0)
		if b.Write {
			flags |= descWrite
		}
		if i < len(bufs)-1 {
			flags |= descNext
		}
		r.Mem.Write64(d, b.Addr)
		r.Mem.Write32(d+8, b.Len)
		r.Mem.Write16(d+12, flags)
		r.next = (r.next + 1) % r.Size
		r.Mem.Write16(d+14, r.next)
	}
	r.Mem.Write16(r.Avail+4+2*uint64(r.n%r.Size), head)
	r.n++
	r.Mem.Write16(r.Avail+2, r.n)
	return head
}

// UsedIdx reads the used ring's index.
func (r *Ring) UsedIdx() uint16 { v, _ := r.Mem.Read16(r.Used + 2); return v }

// UsedLen reads the length of used element i.
func (r *Ring) UsedLen(i uint16) uint32 {
	v, _ := r.Mem.Read32(r.Used + 4 + 8*uint64(i%r.Size) + 4)
	return v
}

// UsedBuffer returns the first n bytes of the buffer used element i names.
func (r *Ring) UsedBuffer(i uint16, n uint32) []byte {
	id, _ := r.Mem.Read32(r.Used + 4 + 8*uint64(i%r.Size))
	b := make([]byte, n)
	r.Mem.ReadAt(b, r.Buf+uint64(id)*BufStride)
	return b
}

// Config is the queue's configuration as a driver programs it.
func (r *Ring) Config() mmio.QueueConfig {
	return mmio.QueueConfig{Size: r.Size, Ready: true, Desc: r.Desc, Driver: r.Avail, Device: r.Used}
}

// IRQ records a device's interrupts and DEVICE_NEEDS_RESET reports.
type IRQ struct {
	mu                  sync.Mutex
	used, config, reset int
}

// SignalUsed implements mmio.Interrupt.
func (f *IRQ) SignalUsed() { f.mu.Lock(); f.used++; f.mu.Unlock() }

// SignalConfig implements mmio.Interrupt.
func (f *IRQ) SignalConfig() { f.mu.Lock(); f.config++; f.mu.Unlock() }

// SetNeedsReset is what the transport offers devices after bad guest input.
func (f *IRQ) SetNeedsReset(error) { f.mu.Lock(); f.reset++; f.mu.Unlock() }

// Counts returns how many used-buffer interrupts, configuration interrupts
// and needs-reset reports the device made.
func (f *IRQ) Counts() (used, config, reset int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used, f.config, f.reset
}
