package bus

import (
	"errors"
	"testing"
)

type recorder struct {
	reads, writes []uint64
	last          []byte
}

func (r *recorder) Read(off uint64, data []byte) {
	r.reads = append(r.reads, off)
	for i := range data {
		data[i] = byte(off) + byte(i)
	}
}

func (r *recorder) Write(off uint64, data []byte) {
	r.writes = append(r.writes, off)
	r.last = append([]byte(nil), data...)
}

func TestDispatchByRange(t *testing.T) {
	var b Bus
	a, c := &recorder{}, &recorder{}
	if err := b.Register("a", 0x3f8, 8, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Register("c", 0x60, 5, c); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(0x3fd, []byte{7}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2)
	if err := b.Read(0x63, data); err != nil {
		t.Fatal(err)
	}
	if len(a.writes) != 1 || a.writes[0] != 5 || a.last[0] != 7 {
		t.Errorf("device a got writes %v %v, want offset 5 value 7", a.writes, a.last)
	}
	if len(c.reads) != 1 || c.reads[0] != 3 {
		t.Errorf("device c got reads %v, want offset 3", c.reads)
	}
	if data[0] != 3 || data[1] != 4 {
		t.Errorf("read data %v, want [3 4]", data)
	}
}

func TestUnhandledAccess(t *testing.T) {
	var b Bus
	if err := b.Register("a", 0x100, 0x10, &recorder{}); err != nil {
		t.Fatal(err)
	}
	data := []byte{1, 2, 3, 4}
	err := b.Read(0x200, data)
	var u *ErrUnhandled
	if !errors.As(err, &u) || u.Addr != 0x200 || u.Write {
		t.Fatalf("Read outside ranges: err %v", err)
	}
	for _, d := range data {
		if d != 0xff {
			t.Fatalf("unclaimed read filled %v, want all 0xff", data)
		}
	}
	// An access straddling the end of a range is not the device's.
	if err := b.Write(0x10e, []byte{1, 2, 3, 4}); !errors.As(err, &u) || !u.Write {
		t.Fatalf("straddling write: err %v", err)
	}
}

func TestRegisterRejectsOverlapAndBadRanges(t *testing.T) {
	var b Bus
	if err := b.Register("a", 0x1000, 0x100, &recorder{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		base, size uint64
	}{
		{0x10ff, 1}, {0xf00, 0x101}, {0x1000, 0x100}, {0x2000, 0}, {^uint64(0) - 1, 4},
	} {
		if err := b.Register("b", tc.base, tc.size, &recorder{}); err == nil {
			t.Errorf("Register(%#x, %#x) succeeded, want error", tc.base, tc.size)
		}
	}
	if err := b.Register("adjacent", 0x1100, 0x10, &recorder{}); err != nil {
		t.Errorf("adjacent range rejected: %v", err)
	}
}
