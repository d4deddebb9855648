package queue

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

func TestNewPanicsOnBadMax(t *testing.T) {
	for _, n := range []uint16{0, 3, 65535, 65534} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", n)
				}
			}()
			New(n)
		}()
	}
	if q := New(256); q.Size() != 256 || q.MaxSize() != 256 {
		t.Fatalf("New(256): size %d max %d", q.Size(), q.MaxSize())
	}
}

func TestActivateErrors(t *testing.T) {
	buf := make([]byte, mockMemSize)
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: buf})
	good := func() *Queue {
		q := New(256)
		q.SetSize(16)
		q.SetDescAddr(0x1000)
		q.SetAvailAddr(0x2000)
		q.SetUsedAddr(0x3000)
		q.SetReady(true)
		return q
	}
	cases := []struct {
		name string
		mod  func(q *Queue)
		want error
	}{
		{"ok", func(q *Queue) {}, nil},
		{"not ready", func(q *Queue) { q.SetReady(false) }, ErrNotReady},
		{"size zero", func(q *Queue) { q.SetSize(0) }, ErrQueueSize},
		{"size not pow2", func(q *Queue) { q.SetSize(24) }, ErrQueueSize},
		{"size above max", func(q *Queue) { q.SetSize(512) }, ErrQueueSize},
		{"size max ok", func(q *Queue) { q.SetSize(256) }, nil},
		{"desc misaligned", func(q *Queue) { q.SetDescAddr(0x1008) }, ErrMisaligned},
		{"avail misaligned", func(q *Queue) { q.SetAvailAddr(0x2001) }, ErrMisaligned},
		{"avail 2-aligned ok", func(q *Queue) { q.SetAvailAddr(0x2002) }, nil},
		{"used misaligned", func(q *Queue) { q.SetUsedAddr(0x3002) }, ErrMisaligned},
		{"desc outside", func(q *Queue) { q.SetDescAddr(mockMemSize) }, ErrRingOutsideRAM},
		{"desc straddles end", func(q *Queue) { q.SetDescAddr(mockMemSize - 16*8) }, ErrRingOutsideRAM},
		{"avail event straddles end", func(q *Queue) { q.SetAvailAddr(mockMemSize - (4 + 2*16)) }, ErrRingOutsideRAM},
		{"avail exactly fits", func(q *Queue) { q.SetAvailAddr(mockMemSize - (6 + 2*16)) }, nil},
		{"used event straddles end", func(q *Queue) { q.SetUsedAddr(mockMemSize - (4 + 8*16)) }, ErrRingOutsideRAM},
		{"used overflow", func(q *Queue) { q.SetUsedAddr(math.MaxUint64 &^ 3) }, ErrRingOutsideRAM},
		{"desc overflow", func(q *Queue) { q.SetDescAddr(math.MaxUint64 &^ 15) }, ErrRingOutsideRAM},
		// Size 16: descriptors [0x1000, 0x1100), avail [0x2000, 0x2026)
		// with used_event at 0x2024, used [u, u+0x86) with avail_event.
		{"used over desc", func(q *Queue) { q.SetUsedAddr(0x1000) }, ErrRingOverlap},
		{"used over desc's last entry", func(q *Queue) { q.SetUsedAddr(0x10fc) }, ErrRingOverlap},
		{"used right after desc", func(q *Queue) { q.SetUsedAddr(0x1100) }, nil},
		{"used event over desc", func(q *Queue) { q.SetUsedAddr(0x1000 - 0x84) }, ErrRingOverlap},
		{"used right before desc", func(q *Queue) { q.SetUsedAddr(0x1000 - 0x88) }, nil},
		{"used over avail", func(q *Queue) { q.SetUsedAddr(0x2000) }, ErrRingOverlap},
		{"used over used_event", func(q *Queue) { q.SetUsedAddr(0x2024) }, ErrRingOverlap},
		{"used right after avail", func(q *Queue) { q.SetUsedAddr(0x2028) }, nil},
		{"avail over desc is the driver's business", func(q *Queue) { q.SetAvailAddr(0x1000) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := good()
			tc.mod(q)
			err := q.Activate(mem)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Activate = %v, want %v", err, tc.want)
			}
			if q.Activated() != (err == nil) {
				t.Fatalf("Activated() = %v after err %v", q.Activated(), err)
			}
			if err != nil {
				if _, perr := q.Pop(mem); !errors.Is(perr, ErrNotActivated) {
					t.Fatalf("Pop on failed activation = %v", perr)
				}
			}
		})
	}
}

func TestSetterDeactivates(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetUsedAddr(m.used)
	if _, err := m.q.Pop(m.mem); !errors.Is(err, ErrNotActivated) {
		t.Fatalf("Pop after setter = %v, want ErrNotActivated", err)
	}
	for name, f := range map[string]func() error{
		"AddUsed":             func() error { _, err := m.q.AddUsed(m.mem, &Chain{}, 0); return err },
		"NeedsNotify":         func() error { _, err := m.q.NeedsNotify(m.mem); return err },
		"SetAvailEvent":       func() error { return m.q.SetAvailEvent(m.mem) },
		"EnableNotification":  func() error { _, err := m.q.EnableNotification(m.mem); return err },
		"DisableNotification": func() error { return m.q.DisableNotification(m.mem) },
	} {
		if err := f(); !errors.Is(err, ErrNotActivated) {
			t.Errorf("%s = %v, want ErrNotActivated", name, err)
		}
	}
}

func TestPopEmpty(t *testing.T) {
	m := newMock(t, 8)
	c, err := m.q.Pop(m.mem)
	if c != nil || err != nil {
		t.Fatalf("Pop on empty ring = %v, %v", c, err)
	}
	m.startAt(65535)
	if c, err := m.q.Pop(m.mem); c != nil || err != nil {
		t.Fatalf("Pop on empty ring at 65535 = %v, %v", c, err)
	}
	if m.q.NextAvail() != 65535 {
		t.Fatalf("next_avail moved on empty pop")
	}
}

func TestGoodChainMixed(t *testing.T) {
	m := newMock(t, 8)
	copy(m.buf[mockBufBase:], "hello, ")
	copy(m.buf[mockBufBase+0x100:], "world")
	head := m.chain(2,
		d{addr: mockBufBase, len: 7},
		d{addr: 0xdead_beef_0000, len: 0}, // zero-length: dropped, never bounds-checked
		d{addr: mockBufBase + 0x100, len: 5},
		d{addr: mockBufBase + 0x200, len: 16, flags: DescFWrite},
		d{addr: mockBufBase + 0x300, len: 4, flags: DescFWrite},
	)
	m.publish(head)
	c := m.pop()
	if c.Head() != 2 {
		t.Fatalf("head %d", c.Head())
	}
	want := []Descriptor{
		{mockBufBase, 7, false},
		{mockBufBase + 0x100, 5, false},
		{mockBufBase + 0x200, 16, true},
		{mockBufBase + 0x300, 4, true},
	}
	if got := c.Descriptors(); len(got) != len(want) {
		t.Fatalf("descriptors %+v", got)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("desc %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	if len(c.Readable()) != 2 || len(c.Writable()) != 2 || c.ReadableLen() != 12 || c.WritableLen() != 20 {
		t.Fatalf("readable %d/%d writable %d/%d", len(c.Readable()), c.ReadableLen(), len(c.Writable()), c.WritableLen())
	}
	got, err := c.ReadAllMax(m.mem, 12)
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("ReadAllMax = %q, %v", got, err)
	}
	if got, err := c.ReadAllMax(m.mem, 11); got != nil || !errors.Is(err, ErrReadableTooLong) {
		t.Fatalf("ReadAllMax below the readable length = %q, %v; want ErrReadableTooLong", got, err)
	}
	if m.q.NextAvail() != 1 {
		t.Fatalf("next_avail %d", m.q.NextAvail())
	}
	if c, err := m.q.Pop(m.mem); c != nil || err != nil {
		t.Fatalf("second Pop = %v, %v", c, err)
	}
}

func TestIndirectValid(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetIndirect(true)
	const table = mockBufBase + 0x1000
	m.setTable(table,
		d{addr: mockBufBase + 0x100, len: 3, flags: DescFNext, next: 2},
		d{addr: mockBufBase + 0x300, len: 8, flags: DescFWrite}, // last
		d{addr: mockBufBase + 0x200, len: 4, flags: DescFNext | DescFWrite, next: 1},
	)
	// One direct readable descriptor, then the indirect one (WRITE on it is
	// ignored per spec).
	head := m.chain(0,
		d{addr: mockBufBase, len: 2},
		d{addr: table, len: 3 * 16, flags: DescFIndirect | DescFWrite},
	)
	m.publish(head)
	c := m.pop()
	want := []Descriptor{
		{mockBufBase, 2, false},
		{mockBufBase + 0x100, 3, false},
		{mockBufBase + 0x200, 4, true},
		{mockBufBase + 0x300, 8, true},
	}
	got := c.Descriptors()
	if len(got) != len(want) {
		t.Fatalf("descriptors %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("desc %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if c.ReadableLen() != 5 || c.WritableLen() != 12 {
		t.Fatalf("lens %d %d", c.ReadableLen(), c.WritableLen())
	}
}

func TestIndirectTableOfQueueSize(t *testing.T) {
	m := newMock(t, 4)
	m.q.SetIndirect(true)
	const table = mockBufBase + 0x1000
	var xs []d
	for i := range 4 {
		xs = append(xs, d{addr: mockBufBase, len: 1, flags: DescFNext, next: uint16(i + 1)})
	}
	xs[3].flags = 0
	m.setTable(table, xs...)
	m.setDesc(0, d{addr: table, len: 4 * 16, flags: DescFIndirect})
	m.publish(0)
	if c := m.pop(); len(c.Descriptors()) != 4 {
		t.Fatalf("got %d descriptors", len(c.Descriptors()))
	}
}

// TestDirectPlusIndirectAtQueueSize: a chain of exactly the queue size,
// split between the table and an indirect table, is accepted (the indirect
// descriptor itself is not one of the chain's buffers).
func TestDirectPlusIndirectAtQueueSize(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetIndirect(true)
	const table = mockBufBase + 0x1000
	m.setTable(table, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 1}, d{addr: mockBufBase, len: 1, flags: DescFWrite})
	xs := make([]d, 7)
	for i := range 6 {
		xs[i] = d{addr: mockBufBase, len: 1}
	}
	xs[6] = d{addr: table, len: 32, flags: DescFIndirect}
	m.publish(m.chain(0, xs...))
	if c := m.pop(); len(c.Descriptors()) != 8 || c.ReadableLen() != 7 || c.WritableLen() != 1 {
		t.Fatalf("got %d descriptors, %d+%d bytes", len(c.Descriptors()), c.ReadableLen(), c.WritableLen())
	}
}

// bigMem returns a memory with a 2 GiB region at 4 GiB (virtual only: pages
// are never touched) so a chain can total more than 4 GiB.
func bigMemRegion() guestmem.Region {
	return guestmem.Region{GPA: 1 << 32, Host: make([]byte, 1<<31)}
}

func TestPopRejections(t *testing.T) {
	const table = mockBufBase + 0x1000
	type setup func(m *mockQueue)
	cases := []struct {
		name     string
		indirect bool
		setup    setup
		want     error
	}{
		{"head index", false, func(m *mockQueue) { m.publish(8) }, ErrHeadIndex},
		{"head index max", false, func(m *mockQueue) { m.publish(65535) }, ErrHeadIndex},
		{"next index", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 8})
			m.publish(0)
		}, ErrNextIndex},
		{"self loop", false, func(m *mockQueue) {
			m.setDesc(3, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 3})
			m.publish(3)
		}, ErrChainTooLong},
		{"two-node loop", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 1})
			m.setDesc(1, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 0})
			m.publish(0)
		}, ErrChainTooLong},
		{"readable after writable", false, func(m *mockQueue) {
			m.publish(m.chain(0, d{addr: mockBufBase, len: 1, flags: DescFWrite}, d{addr: mockBufBase, len: 1}))
		}, ErrReadableAfterWritable},
		{"unknown flags", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockBufBase, len: 1, flags: 0x8})
			m.publish(0)
		}, ErrUnknownFlags},
		{"packed avail flag", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockBufBase, len: 1, flags: 1 << 7})
			m.publish(0)
		}, ErrUnknownFlags},
		{"zero-length chain", false, func(m *mockQueue) {
			m.publish(m.chain(0, d{addr: mockBufBase, len: 0}, d{addr: mockBufBase, len: 0, flags: DescFWrite}))
		}, ErrZeroLengthChain},
		{"buffer past end", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockMemSize - 4, len: 8})
			m.publish(0)
		}, ErrBufferOutsideRAM},
		{"buffer addr overflow", false, func(m *mockQueue) {
			m.setDesc(0, d{addr: math.MaxUint64 - 3, len: 8, flags: DescFWrite})
			m.publish(0)
		}, ErrBufferOutsideRAM},
		{"indirect not negotiated", false, func(m *mockQueue) {
			m.setTable(table, d{addr: mockBufBase, len: 1})
			m.setDesc(0, d{addr: table, len: 16, flags: DescFIndirect})
			m.publish(0)
		}, ErrIndirectNotNegotiated},
		{"nested indirect", true, func(m *mockQueue) {
			m.setTable(table, d{addr: table + 0x100, len: 16, flags: DescFIndirect})
			m.setDesc(0, d{addr: table, len: 16, flags: DescFIndirect})
			m.publish(0)
		}, ErrNestedIndirect},
		{"indirect with next", true, func(m *mockQueue) {
			m.setTable(table, d{addr: mockBufBase, len: 1})
			m.setDesc(0, d{addr: table, len: 16, flags: DescFIndirect | DescFNext, next: 1})
			m.setDesc(1, d{addr: mockBufBase, len: 1})
			m.publish(0)
		}, ErrIndirectWithNext},
		{"indirect len zero", true, func(m *mockQueue) {
			m.setDesc(0, d{addr: table, len: 0, flags: DescFIndirect})
			m.publish(0)
		}, ErrIndirectLength},
		{"indirect len not multiple of 16", true, func(m *mockQueue) {
			m.setDesc(0, d{addr: table, len: 24, flags: DescFIndirect})
			m.publish(0)
		}, ErrIndirectLength},
		{"indirect len above queue size", true, func(m *mockQueue) {
			m.setDesc(0, d{addr: table, len: 9 * 16, flags: DescFIndirect})
			m.publish(0)
		}, ErrIndirectLength},
		{"indirect table outside RAM", true, func(m *mockQueue) {
			m.setDesc(0, d{addr: mockMemSize - 16, len: 32, flags: DescFIndirect})
			m.publish(0)
		}, ErrBufferOutsideRAM},
		{"indirect next index", true, func(m *mockQueue) {
			m.setTable(table, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 2}, d{addr: mockBufBase, len: 1})
			m.setDesc(0, d{addr: table, len: 32, flags: DescFIndirect})
			m.publish(0)
		}, ErrNextIndex},
		{"indirect loop", true, func(m *mockQueue) {
			m.setTable(table, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 1}, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 0})
			m.setDesc(0, d{addr: table, len: 32, flags: DescFIndirect})
			m.publish(0)
		}, ErrChainTooLong},
		{"indirect readable after writable across tables", true, func(m *mockQueue) {
			m.setTable(table, d{addr: mockBufBase, len: 1})
			m.publish(m.chain(0, d{addr: mockBufBase, len: 1, flags: DescFWrite}, d{addr: table, len: 16, flags: DescFIndirect}))
		}, ErrReadableAfterWritable},
		{"direct plus indirect over queue size", true, func(m *mockQueue) {
			// 7 buffers in the table, the 8th entry points at an indirect
			// table of 2: 9 buffers in a queue of 8, though each table is
			// within its own bounds.
			m.setTable(table, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 1}, d{addr: mockBufBase, len: 1})
			xs := make([]d, 8)
			for i := range 7 {
				xs[i] = d{addr: mockBufBase, len: 1}
			}
			xs[7] = d{addr: table, len: 32, flags: DescFIndirect}
			m.publish(m.chain(0, xs...))
		}, ErrChainOverQueueSize},
		{"direct zero-length plus indirect over queue size", true, func(m *mockQueue) {
			// Zero-length descriptors are dropped from the chain but are
			// still descriptors of it.
			m.setTable(table, d{addr: mockBufBase, len: 1, flags: DescFNext, next: 1}, d{addr: mockBufBase, len: 1})
			xs := make([]d, 8)
			for i := range 7 {
				xs[i] = d{addr: mockBufBase, len: 0}
			}
			xs[7] = d{addr: table, len: 32, flags: DescFIndirect}
			m.publish(m.chain(0, xs...))
		}, ErrChainOverQueueSize},
		{"indirect buffer outside RAM", true, func(m *mockQueue) {
			m.setTable(table, d{addr: mockMemSize, len: 1})
			m.setDesc(0, d{addr: table, len: 16, flags: DescFIndirect})
			m.publish(0)
		}, ErrBufferOutsideRAM},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMock(t, 8)
			m.q.SetIndirect(tc.indirect)
			tc.setup(m)
			c, err := m.q.Pop(m.mem)
			if c != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Pop = %v, %v; want %v", c, err, tc.want)
			}
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ChainError", err)
			}
			if m.q.NextAvail() != 1 {
				t.Fatalf("next_avail %d after bad chain, want 1", m.q.NextAvail())
			}
			if c, err := m.q.Pop(m.mem); c != nil || err != nil {
				t.Fatalf("Pop after bad chain = %v, %v", c, err)
			}
		})
	}
}

func TestLengthOverflow(t *testing.T) {
	m := newMock(t, 8)
	m.mem = guestmem.FromRegions(guestmem.Region{GPA: 0, Host: m.buf}, bigMemRegion())
	if err := m.q.Activate(m.mem); err != nil {
		t.Fatal(err)
	}
	// Overlapping buffers are legal; two 2 GiB ones total 4 GiB > 2^32-1.
	m.publish(m.chain(0, d{addr: 1 << 32, len: 1 << 31}, d{addr: 1 << 32, len: 1 << 31, flags: DescFWrite}))
	if _, err := m.q.Pop(m.mem); !errors.Is(err, ErrLengthOverflow) {
		t.Fatalf("Pop = %v, want ErrLengthOverflow", err)
	}
	// Exactly 2^32-1 is fine.
	m.publish(m.chain(2, d{addr: 1 << 32, len: 1 << 31}, d{addr: 1 << 32, len: 1<<31 - 1, flags: DescFWrite}))
	c := m.pop()
	if c.ReadableLen() != 1<<31 || c.WritableLen() != 1<<31-1 {
		t.Fatalf("lens %d %d", c.ReadableLen(), c.WritableLen())
	}
}

func TestAvailIndexJump(t *testing.T) {
	for _, start := range []uint16{0, 65530} {
		m := newMock(t, 8)
		m.startAt(start)
		m.setDesc(0, d{addr: mockBufBase, len: 1})
		m.setAvailIdx(start + 9)
		c, err := m.q.Pop(m.mem)
		if c != nil || !errors.Is(err, ErrAvailIndexJump) {
			t.Fatalf("start %d: Pop = %v, %v", start, c, err)
		}
		if m.q.NextAvail() != start {
			t.Fatalf("next_avail moved on jump")
		}
		// Exactly size ahead is fine.
		m.setAvailIdx(start + 8)
		for i := range 8 {
			if c := m.pop(); c.Head() != 0 {
				t.Fatalf("pop %d head %d", i, c.Head())
			}
		}
		// idx going backwards looks like a huge jump.
		m.setAvailIdx(start + 7)
		if _, err := m.q.Pop(m.mem); !errors.Is(err, ErrAvailIndexJump) {
			t.Fatalf("backwards idx: %v", err)
		}
	}
}

func TestWrapAround(t *testing.T) {
	m := newMock(t, 4)
	m.startAt(65534)
	for i := range uint16(4) {
		m.setDesc(i, d{addr: mockBufBase + 0x100*uint64(i), len: 0x10, flags: DescFWrite})
	}
	m.publish(3, 1, 2, 0) // avail slots 2, 3, 0, 1
	var chains []*Chain
	for _, want := range []uint16{3, 1, 2, 0} {
		c := m.pop()
		if c.Head() != want {
			t.Fatalf("head %d, want %d", c.Head(), want)
		}
		chains = append(chains, c)
	}
	if m.q.NextAvail() != 2 {
		t.Fatalf("next_avail %d, want 2", m.q.NextAvail())
	}
	for i, c := range chains {
		if _, err := m.q.AddUsed(m.mem, c, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if m.usedIdx() != 2 || m.q.NextUsed() != 2 {
		t.Fatalf("used idx %d next_used %d", m.usedIdx(), m.q.NextUsed())
	}
	for i, used := range []uint16{65534, 65535, 0, 1} {
		id, n := m.usedElem(used)
		if id != uint32(chains[i].Head()) || n != uint32(i) {
			t.Fatalf("used[%d] = {%d, %d}", used, id, n)
		}
	}
}

func TestAddUsed(t *testing.T) {
	m := newMock(t, 8)
	m.publish(m.chain(0, d{addr: mockBufBase, len: 4}, d{addr: mockBufBase + 0x100, len: 10, flags: DescFWrite}, d{addr: mockBufBase + 0x200, len: 6, flags: DescFWrite}))
	m.publish(m.chain(5, d{addr: mockBufBase, len: 4}))
	c1, c2 := m.pop(), m.pop()

	cases := []struct {
		c        *Chain
		written  uint32
		wantLen  uint32
		wantHead uint32
	}{
		{c1, 100, 16, 0}, // clamped to writable bytes
		{c2, 5, 0, 5},    // read-only chain: always 0
	}
	for i, tc := range cases {
		n, err := m.q.AddUsed(m.mem, tc.c, tc.written)
		if err != nil || n != tc.wantLen {
			t.Fatalf("AddUsed #%d = %d, %v", i, n, err)
		}
		id, l := m.usedElem(uint16(i))
		if id != tc.wantHead || l != tc.wantLen {
			t.Fatalf("used[%d] = {%d,%d}, want {%d,%d}", i, id, l, tc.wantHead, tc.wantLen)
		}
		if m.usedIdx() != uint16(i+1) {
			t.Fatalf("used idx %d", m.usedIdx())
		}
		if used, ul := tc.c.Used(); !used || ul != tc.wantLen {
			t.Fatalf("Used() = %v %d", used, ul)
		}
	}
	if _, err := m.q.AddUsed(m.mem, c1, 1); !errors.Is(err, ErrChainAlreadyUsed) {
		t.Fatalf("double AddUsed = %v", err)
	}
	if _, err := m.q.AddUsed(m.mem, nil, 1); !errors.Is(err, ErrStaleChain) {
		t.Fatalf("nil chain = %v", err)
	}
	other := newMock(t, 8)
	other.publish(other.chain(0, d{addr: mockBufBase, len: 4}))
	if _, err := m.q.AddUsed(m.mem, other.pop(), 0); !errors.Is(err, ErrStaleChain) {
		t.Fatalf("foreign chain = %v", err)
	}
	// A chain popped before a re-activation is stale.
	m.publish(m.chain(0, d{addr: mockBufBase, len: 4}))
	c3 := m.pop()
	if err := m.q.Activate(m.mem); err != nil {
		t.Fatal(err)
	}
	if _, err := m.q.AddUsed(m.mem, c3, 0); !errors.Is(err, ErrStaleChain) {
		t.Fatalf("stale chain = %v", err)
	}
	if m.usedIdx() != 2 {
		t.Fatalf("used idx %d after refused AddUsed", m.usedIdx())
	}
}

func TestChainCopy(t *testing.T) {
	m := newMock(t, 8)
	copy(m.buf[mockBufBase:], "abcdef")
	m.publish(m.chain(0,
		d{addr: mockBufBase, len: 6},
		d{addr: mockBufBase + 0x100, len: 3, flags: DescFWrite},
		d{addr: mockBufBase + 0x200, len: 4, flags: DescFWrite},
	))
	c := m.pop()
	p := make([]byte, 3)
	if n, err := c.ReadAt(m.mem, p, 2); n != 3 || err != nil || string(p) != "cde" {
		t.Fatalf("ReadAt = %d %v %q", n, err, p)
	}
	if _, err := c.ReadAt(m.mem, p, 4); !errors.Is(err, ErrWriteBeyondBuffers) {
		t.Fatalf("ReadAt past end = %v", err)
	}
	if n, err := c.WriteAt(m.mem, []byte("XYZW"), 1); n != 4 || err != nil {
		t.Fatalf("WriteAt = %d %v", n, err)
	}
	if got := string(m.buf[mockBufBase+0x100 : mockBufBase+0x103]); got != "\x00XY" {
		t.Fatalf("first writable = %q", got)
	}
	if got := string(m.buf[mockBufBase+0x200 : mockBufBase+0x205]); got != "ZW\x00\x00\x00" {
		t.Fatalf("second writable = %q", got)
	}
	snap := bytes.Clone(m.buf)
	for _, off := range []uint64{0, 6, 7, math.MaxUint64} {
		// 8 bytes never fit in the 7 writable bytes.
		if n, err := c.WriteAt(m.mem, make([]byte, 8), off); n != 0 || !errors.Is(err, ErrWriteBeyondBuffers) {
			t.Fatalf("WriteAt off %d = %d, %v", off, n, err)
		}
	}
	if !bytes.Equal(snap, m.buf) {
		t.Fatal("refused WriteAt wrote memory")
	}
	if n, err := c.WriteAt(m.mem, nil, 7); n != 0 || err != nil {
		t.Fatalf("empty WriteAt at end = %d %v", n, err)
	}
}

// TestNeverWritesDriverAreas runs every device operation and checks that the
// only bytes changed are in the used ring and in writable buffers.
func TestNeverWritesDriverAreas(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetIndirect(true)
	m.q.SetEventIdx(true)
	for i := range m.buf[mockBufBase:] {
		m.buf[mockBufBase+i] = byte(i)
	}
	const table = mockBufBase + 0x8000
	m.setTable(table, d{addr: mockBufBase + 0x100, len: 8, flags: DescFNext, next: 1}, d{addr: mockBufBase + 0x200, len: 8, flags: DescFWrite})
	m.publish(m.chain(0, d{addr: mockBufBase, len: 8}, d{addr: table, len: 32, flags: DescFIndirect}))
	m.publish(m.chain(2, d{addr: mockBufBase + 0x300, len: 8}, d{addr: mockBufBase + 0x400, len: 8, flags: DescFWrite}))
	m.setUsedEvent(0)
	snap := bytes.Clone(m.buf)

	for range 2 {
		c := m.pop()
		if _, err := c.ReadAllMax(m.mem, c.ReadableLen()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteAt(m.mem, bytes.Repeat([]byte{0xee}, 8), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := m.q.AddUsed(m.mem, c, 8); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.q.NeedsNotify(m.mem); err != nil {
		t.Fatal(err)
	}
	if _, err := m.q.EnableNotification(m.mem); err != nil {
		t.Fatal(err)
	}
	allowed := func(i uint64) bool {
		if i >= m.used && i < m.used+usedRingLen(m.size) {
			return true
		}
		return (i >= mockBufBase+0x200 && i < mockBufBase+0x208) || (i >= mockBufBase+0x400 && i < mockBufBase+0x408)
	}
	for i := range uint64(len(m.buf)) {
		if m.buf[i] != snap[i] && !allowed(i) {
			t.Fatalf("byte %#x changed from %#x to %#x", i, snap[i], m.buf[i])
		}
	}
}

func TestNeedsNotifyNoEventIdx(t *testing.T) {
	m := newMock(t, 8)
	for _, tc := range []struct {
		flags uint16
		want  bool
	}{{0, true}, {AvailFNoInterrupt, false}, {0xfffe, true}, {0xffff, false}} {
		m.availFlags(tc.flags)
		if got, err := m.q.NeedsNotify(m.mem); err != nil || got != tc.want {
			t.Fatalf("flags %#x: NeedsNotify = %v, %v", tc.flags, got, err)
		}
	}
}

func TestNeedEvent(t *testing.T) {
	cases := []struct {
		event, new, old uint16
		want            bool
	}{
		{0, 1, 0, true},
		{1, 1, 0, false}, // driver wants to hear when idx passes 1
		{0, 0, 0, false}, // nothing new
		{5, 10, 3, true},
		{10, 10, 3, false},
		{2, 10, 3, false}, // event before old: already signalled
		{3, 10, 3, true},
		{9, 10, 3, true},
		{65535, 1, 65534, true}, // window wraps
		{0, 1, 65534, true},
		{1, 1, 65534, false},
		{65533, 1, 65534, false},
	}
	for _, tc := range cases {
		if got := needEvent(tc.event, tc.new, tc.old); got != tc.want {
			t.Errorf("needEvent(%d, %d, %d) = %v", tc.event, tc.new, tc.old, got)
		}
	}
}

func TestNeedsNotifyEventIdx(t *testing.T) {
	for _, start := range []uint16{0, 65534} {
		m := newMock(t, 8)
		m.q.SetEventIdx(true)
		m.startAt(start)
		m.availFlags(AvailFNoInterrupt) // ignored with EVENT_IDX
		for i := range uint16(8) {
			m.setDesc(i, d{addr: mockBufBase, len: 4, flags: DescFWrite})
		}
		use := func(n int) {
			for range n {
				m.publish(0)
				if _, err := m.q.AddUsed(m.mem, m.pop(), 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		notify := func() bool {
			got, err := m.q.NeedsNotify(m.mem)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		m.setUsedEvent(start + 100)
		if !notify() {
			t.Fatalf("start %d: first NeedsNotify must be true", start)
		}
		steps := []struct {
			use   int
			event uint16 // relative to start
			want  bool
		}{
			{1, 0, true},  // used 0->1, event 0 in [0,1)
			{1, 0, false}, // 1->2, event 0 already passed
			{2, 3, true},  // 2->4, event 3 in [2,4)
			{0, 3, false}, // nothing new
			{1, 5, false}, // 4->5, event 5 not reached
			{1, 5, true},  // 5->6
		}
		for i, s := range steps {
			use(s.use)
			m.setUsedEvent(start + s.event)
			if got := notify(); got != s.want {
				t.Fatalf("start %d step %d: NeedsNotify = %v, want %v (next_used %d)", start, i, got, s.want, m.q.NextUsed())
			}
		}
	}
}

func TestNotificationControl(t *testing.T) {
	m := newMock(t, 8)
	if err := m.q.DisableNotification(m.mem); err != nil || m.usedFlags() != UsedFNoNotify {
		t.Fatalf("Disable: %v flags %#x", err, m.usedFlags())
	}
	if pending, err := m.q.EnableNotification(m.mem); err != nil || pending || m.usedFlags() != 0 {
		t.Fatalf("Enable: %v %v flags %#x", pending, err, m.usedFlags())
	}
	m.publish(m.chain(0, d{addr: mockBufBase, len: 1}))
	if pending, err := m.q.EnableNotification(m.mem); err != nil || !pending {
		t.Fatalf("Enable with pending: %v %v", pending, err)
	}

	m = newMock(t, 8)
	m.q.SetEventIdx(true)
	m.startAt(65535)
	m.publish(m.chain(0, d{addr: mockBufBase, len: 1}))
	m.pop()
	if err := m.q.DisableNotification(m.mem); err != nil || m.usedFlags() != 0 {
		t.Fatalf("Disable with EVENT_IDX: %v flags %#x", err, m.usedFlags())
	}
	if pending, err := m.q.EnableNotification(m.mem); err != nil || pending || m.availEvent() != 0 {
		t.Fatalf("Enable with EVENT_IDX: %v %v avail_event %d", pending, err, m.availEvent())
	}
	if err := m.q.SetAvailEvent(m.mem); err != nil || m.availEvent() != 0 {
		t.Fatalf("SetAvailEvent: %v %d", err, m.availEvent())
	}
}

func TestReset(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetEventIdx(true)
	m.q.SetIndirect(true)
	m.publish(m.chain(0, d{addr: mockBufBase, len: 1}))
	c := m.pop()
	m.q.Reset()
	if m.q.Ready() || m.q.Activated() || m.q.EventIdx() || m.q.Indirect() || m.q.NextAvail() != 0 ||
		m.q.Size() != MaxSize || m.q.DescAddr() != 0 || m.q.AvailAddr() != 0 || m.q.UsedAddr() != 0 {
		t.Fatalf("Reset left state: %+v", *m.q)
	}
	m.q.SetSize(8)
	m.q.SetDescAddr(m.desc)
	m.q.SetAvailAddr(m.avail)
	m.q.SetUsedAddr(m.used)
	m.q.SetReady(true)
	if err := m.q.Activate(m.mem); err != nil {
		t.Fatal(err)
	}
	if _, err := m.q.AddUsed(m.mem, c, 0); !errors.Is(err, ErrStaleChain) {
		t.Fatalf("AddUsed after reset = %v", err)
	}
}
