package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// restoredMock is m's driver side over a copy of its memory (as a snapshot
// restores it) with the device side rebuilt from s.
func restoredMock(t *testing.T, m *mockQueue, s State) *mockQueue {
	t.Helper()
	r := *m
	r.buf = bytes.Clone(m.buf)
	r.mem = guestmem.FromRegions(guestmem.Region{GPA: 0, Host: r.buf})
	q, err := FromState(r.mem, s)
	if err != nil {
		t.Fatalf("FromState: %v", err)
	}
	r.q = q
	return &r
}

// jsonRoundTrip encodes s, decodes it with unknown fields refused (as the
// snapshot reader does) and checks both the value and its re-encoding.
func jsonRoundTrip(t *testing.T, s State) State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	b2, _ := json.Marshal(back)
	if back != s || !bytes.Equal(b, b2) {
		t.Fatalf("JSON round trip: %+v -> %s -> %+v", s, b, back)
	}
	return back
}

// A queue used across the 16-bit wrap, saved and rebuilt over a copy of
// memory, goes on where it was: the next Pop is the next published entry,
// the next used element lands in the next slot, and the EVENT_IDX
// bookkeeping is carried (the restored queue does not interrupt where the
// original would not).
func TestStateRestoreContinues(t *testing.T) {
	m := newMock(t, 8)
	m.q.SetEventIdx(true)
	m.q.SetIndirect(true)
	if err := m.q.Activate(m.mem); err != nil {
		t.Fatal(err)
	}
	m.startAt(65534)
	for i := uint16(0); i < 3; i++ {
		m.chain(i, d{addr: mockBufBase + 0x100*uint64(i), len: 16, flags: DescFWrite})
		m.publish(i)
		if _, err := m.q.AddUsed(m.mem, m.pop(), 4); err != nil {
			t.Fatal(err)
		}
	}
	// The driver wants an interrupt only once used.idx passes 65534+10.
	m.setUsedEvent(8) // 65534 + 10, wrapped
	if _, err := m.q.NeedsNotify(m.mem); err != nil {
		t.Fatal(err)
	}
	// One more entry published, not popped: in flight at snapshot time.
	m.chain(3, d{addr: mockBufBase + 0x300, len: 16, flags: DescFWrite})
	m.publish(3)

	s, err := m.q.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.NextAvail != 1 || s.NextUsed != 1 || !s.EventIdx || !s.Indirect || !s.SignalledValid {
		t.Fatalf("State = %+v", s)
	}
	r := restoredMock(t, m, jsonRoundTrip(t, s))

	c := r.pop()
	if c.Head() != 3 || r.q.NextAvail() != 2 {
		t.Fatalf("restored Pop: head %d next_avail %d, want head 3, 2", c.Head(), r.q.NextAvail())
	}
	if c, err := r.q.Pop(r.mem); c != nil || err != nil {
		t.Fatalf("second restored Pop = %v, %v: the entry was duplicated", c, err)
	}
	if _, err := r.q.AddUsed(r.mem, c, 7); err != nil {
		t.Fatal(err)
	}
	if id, n := r.usedElem(1); r.usedIdx() != 2 || id != 3 || n != 7 {
		t.Fatalf("used idx %d, element 1 = (%d, %d); want 2, (3, 7)", r.usedIdx(), id, n)
	}
	// Elements written before the snapshot are untouched.
	if id, _ := r.usedElem(0); id != 2 {
		t.Fatalf("used element 0 = %d, want 2", id)
	}
	if notify, err := r.q.NeedsNotify(r.mem); err != nil || notify {
		t.Fatalf("NeedsNotify after restore = %v, %v; want false (used_event not reached)", notify, err)
	}
	// The original is untouched by the clone.
	if m.usedIdx() != 1 || m.q.NextAvail() != 1 {
		t.Fatalf("original moved: used idx %d next_avail %d", m.usedIdx(), m.q.NextAvail())
	}
}

func TestStateNotActivated(t *testing.T) {
	q := New(8)
	if _, err := q.State(); !errors.Is(err, ErrNotActivated) {
		t.Fatalf("State of a fresh queue = %v, want ErrNotActivated", err)
	}
}

// A snapshot is hostile input: FromState refuses what Activate refuses,
// and cursors no device could have reached.
func TestFromStateRefusesHostile(t *testing.T) {
	m := newMock(t, 8)
	good, err := m.q.State()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromState(m.mem, good); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	cases := []struct {
		name string
		mod  func(s *State)
		want error
	}{
		{"max zero", func(s *State) { s.MaxSize = 0 }, ErrStateMaxSize},
		{"max not pow2", func(s *State) { s.MaxSize = 24 }, ErrStateMaxSize},
		{"size zero", func(s *State) { s.Size = 0 }, ErrQueueSize},
		{"size not pow2", func(s *State) { s.Size = 6 }, ErrQueueSize},
		{"size above max", func(s *State) { s.MaxSize = 4 }, ErrQueueSize},
		{"desc outside RAM", func(s *State) { s.DescAddr = mockMemSize }, ErrRingOutsideRAM},
		{"used wraps", func(s *State) { s.UsedAddr = 1<<64 - 4 }, ErrRingOutsideRAM},
		{"avail misaligned", func(s *State) { s.AvailAddr++ }, ErrMisaligned},
		{"used over desc", func(s *State) { s.UsedAddr = s.DescAddr }, ErrRingOverlap},
		{"too many in flight", func(s *State) { s.NextAvail = s.NextUsed + 9 }, ErrStateCursors},
		{"used ahead of avail", func(s *State) { s.NextUsed = s.NextAvail + 1 }, ErrStateCursors},
	}
	for _, tc := range cases {
		s := good
		tc.mod(&s)
		if q, err := FromState(m.mem, s); !errors.Is(err, tc.want) || q != nil {
			t.Errorf("%s: FromState = %v, %v; want %v", tc.name, q, err, tc.want)
		}
	}
	// The full queue in flight is a state a device can be in.
	s := good
	s.NextAvail = s.NextUsed + 8
	if _, err := FromState(m.mem, s); err != nil {
		t.Errorf("size chains in flight refused: %v", err)
	}
}
