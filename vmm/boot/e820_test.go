package boot

import (
	"reflect"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

func TestE820Map(t *testing.T) {
	base := []E820Entry{
		{0, 0x9fc00, E820RAM},
		{0x9fc00, 0x400, E820Reserved},
		{0xf0000, 0x10000, E820Reserved},
	}
	for _, tc := range []struct {
		size uint64
		want []E820Entry
	}{
		{16 << 20, append(base[:3:3], E820Entry{0x100000, 15 << 20, E820RAM})},
		{1 << 30, append(base[:3:3], E820Entry{0x100000, 1<<30 - 1<<20, E820RAM})},
		{3 << 30, append(base[:3:3], E820Entry{0x100000, 3<<30 - 1<<20, E820RAM})},
		{8 << 30, append(base[:3:3],
			E820Entry{0x100000, 3<<30 - 1<<20, E820RAM},
			E820Entry{4 << 30, 5 << 30, E820RAM})},
	} {
		ram, err := guestmem.Layout(tc.size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := E820Map(ram)
		if err != nil {
			t.Fatalf("%d MiB: %v", tc.size>>20, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d MiB:\n got %+v\nwant %+v", tc.size>>20, got, tc.want)
		}
		// Sorted, disjoint, and nothing in the MMIO hole.
		for i, e := range got {
			if i > 0 && e.Addr < got[i-1].End() {
				t.Errorf("%d MiB: entry %d overlaps the previous one", tc.size>>20, i)
			}
			if e.End() > guestmem.MMIOHoleStart && e.Addr < guestmem.MMIOHoleEnd {
				t.Errorf("%d MiB: entry %+v in the MMIO hole", tc.size>>20, e)
			}
		}
	}
}

func TestE820MapErrors(t *testing.T) {
	for _, ram := range [][][2]uint64{
		nil,
		{{0x1000, 16 << 20}},
		{{0, 1 << 20}},
		{{0, 16 << 20}, {8 << 20, 1 << 20}},
	} {
		if _, err := E820Map(ram); err == nil {
			t.Errorf("E820Map(%#x) succeeded", ram)
		} else {
			wantErr(t, err, ErrBadRAMLayout)
		}
	}
}

func TestE820TypeString(t *testing.T) {
	if E820RAM.String() != "RAM" || E820Reserved.String() != "reserved" || E820Type(7).String() != "E820Type(7)" {
		t.Error("E820Type.String")
	}
}
