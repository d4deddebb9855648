package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// Fuzz input layout: a 16-byte header, then an image repeated to fill guest
// memory (so rings, descriptors and tables all come from the input).
//
//	0     log2 queue size (mod 16)
//	1     bit0 INDIRECT_DESC, bit1 EVENT_IDX
//	2:4   descriptor table GPA
//	4:6   available ring GPA
//	6:8   used ring GPA
//	8:10  initial next_avail / next_used
//	10:14 base "written" count passed to AddUsed
const (
	fuzzHeader  = 16
	fuzzMemSize = 32 << 10
	fuzzHighGPA = 1 << 32 // a second, small region, as above the MMIO hole
	fuzzHighLen = 4 << 10
	fuzzPops    = 64
)

var guestErrors = []error{
	ErrAvailIndexJump, ErrHeadIndex, ErrNextIndex, ErrChainTooLong, ErrLengthOverflow,
	ErrReadableAfterWritable, ErrUnknownFlags, ErrIndirectNotNegotiated, ErrNestedIndirect,
	ErrIndirectWithNext, ErrIndirectLength, ErrZeroLengthChain, ErrBufferOutsideRAM,
	ErrChainOverQueueSize,
}

func FuzzPop(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHeader {
			return
		}
		h, img := data[:fuzzHeader], data[fuzzHeader:]
		low := make([]byte, fuzzMemSize)
		high := make([]byte, fuzzHighLen)
		if len(img) > 0 {
			for i := 0; i < len(low); i += len(img) {
				copy(low[i:], img)
			}
			copy(high, img)
		}
		mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: low}, guestmem.Region{GPA: fuzzHighGPA, Host: high})

		size := uint16(1) << (h[0] % 16)
		q := New(MaxSize)
		q.SetSize(size)
		q.SetIndirect(h[1]&1 != 0)
		q.SetEventIdx(h[1]&2 != 0)
		q.SetDescAddr(uint64(binary.LittleEndian.Uint16(h[2:])))
		q.SetAvailAddr(uint64(binary.LittleEndian.Uint16(h[4:])))
		q.SetUsedAddr(uint64(binary.LittleEndian.Uint16(h[6:])))
		q.SetReady(true)
		if err := q.Activate(mem); err != nil {
			return
		}
		start := binary.LittleEndian.Uint16(h[8:])
		q.SetNextAvail(start)
		q.SetNextUsed(start)
		written := binary.LittleEndian.Uint32(h[10:])

		usedEnd := q.UsedAddr() + usedRingLen(size)
		for i := range fuzzPops {
			before := bytes.Clone(low)
			c, err := q.Pop(mem)
			if !bytes.Equal(before, low) {
				t.Fatal("Pop wrote guest memory")
			}
			if err != nil {
				requireGuestError(t, err)
				if errors.Is(err, ErrAvailIndexJump) {
					return
				}
				continue
			}
			if c == nil {
				return
			}
			checkChain(t, mem, q, c)
			// Fill the writable buffers, then return the chain.
			if _, err := c.WriteAt(mem, make([]byte, c.WritableLen()), 0); err != nil {
				t.Fatalf("WriteAt whole writable area: %v", err)
			}
			if _, err := c.WriteAt(mem, []byte{1}, uint64(c.WritableLen())); !errors.Is(err, ErrWriteBeyondBuffers) {
				t.Fatalf("WriteAt past end = %v", err)
			}
			if _, err := c.ReadAllMax(mem, c.ReadableLen()); err != nil {
				t.Fatalf("ReadAllMax: %v", err)
			}
			if c.ReadableLen() > 0 {
				if _, err := c.ReadAllMax(mem, c.ReadableLen()-1); !errors.Is(err, ErrReadableTooLong) {
					t.Fatalf("ReadAllMax below the readable length = %v", err)
				}
			}
			snap := bytes.Clone(low)
			n, err := q.AddUsed(mem, c, written+uint32(i))
			if err != nil || n > c.WritableLen() {
				t.Fatalf("AddUsed = %d, %v (writable %d)", n, err, c.WritableLen())
			}
			// Activate refuses a used ring over the driver's areas, but
			// the guest image can still hold a bad avail index: a named
			// guest error ends the run, as it would put the device in
			// NEEDS_RESET.
			if _, err := q.NeedsNotify(mem); err != nil {
				requireGuestError(t, err)
				return
			}
			if _, err := q.EnableNotification(mem); err != nil {
				requireGuestError(t, err)
				return
			}
			for j := range low {
				if low[j] != snap[j] && (uint64(j) < q.UsedAddr() || uint64(j) >= usedEnd) {
					t.Fatalf("AddUsed/notify wrote %#x outside the used ring", j)
				}
			}
		}
	})
}

func checkChain(t *testing.T, mem *guestmem.Memory, q *Queue, c *Chain) {
	t.Helper()
	if c.Head() >= q.Size() {
		t.Fatalf("head %d >= size %d", c.Head(), q.Size())
	}
	if len(c.Descriptors()) > int(q.Size()) {
		t.Fatalf("%d descriptors for size %d", len(c.Descriptors()), q.Size())
	}
	var r, w uint64
	seenW := false
	for _, d := range c.Descriptors() {
		if d.Len == 0 || !mem.Contains(d.Addr, uint64(d.Len)) {
			t.Fatalf("descriptor %+v empty or outside RAM", d)
		}
		if d.Write {
			seenW = true
			w += uint64(d.Len)
		} else {
			if seenW {
				t.Fatal("readable after writable")
			}
			r += uint64(d.Len)
		}
	}
	if r != uint64(c.ReadableLen()) || w != uint64(c.WritableLen()) || r+w == 0 || r+w > 0xFFFF_FFFF {
		t.Fatalf("lengths r=%d w=%d, chain says %d %d", r, w, c.ReadableLen(), c.WritableLen())
	}
}

// requireGuestError fails unless err is one of the named guest errors.
func requireGuestError(t *testing.T, err error) {
	t.Helper()
	for _, e := range guestErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("unnamed error %v", err)
}
