package queue

import (
	"encoding/binary"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Test memory layout (one region at GPA 0).
const (
	mockMemSize = 1 << 20
	mockDesc    = 0x1000
	mockBufBase = 0x80000 // buffers and indirect tables go from here up
)

// mockQueue is a driver-side fake: it lays out a descriptor table,
// available and used ring in a byte slice wrapped as guest memory, and lets
// tests write descriptors and publish available entries.
type mockQueue struct {
	t        testing.TB
	buf      []byte
	mem      *guestmem.Memory
	q        *Queue
	size     uint16
	desc     uint64
	avail    uint64
	used     uint64
	availIdx uint16
}

// newMock builds a ready, activated queue of the given size with the rings
// packed after one another at mockDesc.
func newMock(t testing.TB, size uint16) *mockQueue {
	t.Helper()
	buf := make([]byte, mockMemSize)
	m := &mockQueue{t: t, buf: buf, mem: guestmem.FromRegions(guestmem.Region{GPA: 0, Host: buf}), size: size}
	m.desc = mockDesc
	m.avail = m.desc + descTableLen(size)
	m.used = (m.avail + availRingLen(size) + 3) &^ 3
	m.q = New(MaxSize)
	m.q.SetSize(size)
	m.q.SetDescAddr(m.desc)
	m.q.SetAvailAddr(m.avail)
	m.q.SetUsedAddr(m.used)
	m.q.SetReady(true)
	if err := m.q.Activate(m.mem); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	return m
}

// d is a descriptor as the driver writes it.
type d struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func putDesc(b []byte, x d) {
	binary.LittleEndian.PutUint64(b[0:], x.addr)
	binary.LittleEndian.PutUint32(b[8:], x.len)
	binary.LittleEndian.PutUint16(b[12:], x.flags)
	binary.LittleEndian.PutUint16(b[14:], x.next)
}

// setDesc writes descriptor i of the main table.
func (m *mockQueue) setDesc(i uint16, x d) {
	putDesc(m.buf[m.desc+16*uint64(i):], x)
}

// setTable writes a descriptor table (e.g. an indirect one) at gpa.
func (m *mockQueue) setTable(gpa uint64, xs ...d) {
	for i, x := range xs {
		putDesc(m.buf[gpa+16*uint64(i):], x)
	}
}

// chain writes xs at main-table indices start, start+1, ... linking them
// with NEXT (the last gets no NEXT unless its flags already say so), and
// returns start.
func (m *mockQueue) chain(start uint16, xs ...d) uint16 {
	for i, x := range xs {
		idx := start + uint16(i)
		if i < len(xs)-1 {
			x.flags |= DescFNext
			x.next = idx + 1
		}
		m.setDesc(idx, x)
	}
	return start
}

// publish puts heads in the available ring and bumps avail.idx.
func (m *mockQueue) publish(heads ...uint16) {
	for _, h := range heads {
		slot := uint64(m.availIdx % m.size)
		binary.LittleEndian.PutUint16(m.buf[m.avail+4+2*slot:], h)
		m.availIdx++
	}
	m.setAvailIdx(m.availIdx)
}

func (m *mockQueue) setAvailIdx(i uint16) {
	m.availIdx = i
	binary.LittleEndian.PutUint16(m.buf[m.avail+2:], i)
}

// startAt sets both the driver's and the device's cursors to i.
func (m *mockQueue) startAt(i uint16) {
	m.setAvailIdx(i)
	m.q.SetNextAvail(i)
	m.q.SetNextUsed(i)
	binary.LittleEndian.PutUint16(m.buf[m.used+2:], i)
}

func (m *mockQueue) availFlags(f uint16) {
	binary.LittleEndian.PutUint16(m.buf[m.avail:], f)
}

func (m *mockQueue) setUsedEvent(v uint16) {
	binary.LittleEndian.PutUint16(m.buf[m.avail+4+2*uint64(m.size):], v)
}

func (m *mockQueue) usedIdx() uint16 { return binary.LittleEndian.Uint16(m.buf[m.used+2:]) }
func (m *mockQueue) usedFlags() uint16 {
	return binary.LittleEndian.Uint16(m.buf[m.used:])
}
func (m *mockQueue) availEvent() uint16 {
	return binary.LittleEndian.Uint16(m.buf[m.used+4+8*uint64(m.size):])
}

// usedElem returns used-ring element at ring index i (taken modulo size).
func (m *mockQueue) usedElem(i uint16) (id, n uint32) {
	off := m.used + 4 + 8*uint64(i%m.size)
	return binary.LittleEndian.Uint32(m.buf[off:]), binary.LittleEndian.Uint32(m.buf[off+4:])
}

// pop pops and fails the test on error or empty ring.
func (m *mockQueue) pop() *Chain {
	m.t.Helper()
	c, err := m.q.Pop(m.mem)
	if err != nil {
		m.t.Fatalf("Pop: %v", err)
	}
	if c == nil {
		m.t.Fatalf("Pop: empty ring")
	}
	return c
}
