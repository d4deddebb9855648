package boot

import (
	"testing"

	"gvisor.dev/gvisor/pkg/hostarch"
)

func TestLayoutDisjoint(t *testing.T) {
	for i, a := range bootAreas {
		if a.addr < hostarch.PageSize {
			t.Errorf("%s at %#x is in the first page", a.name, a.addr)
		}
		if a.name != "MP table" && a.addr+a.size > MPTableAddr {
			t.Errorf("%s [%#x, %#x) reaches the MP table", a.name, a.addr, a.addr+a.size)
		}
		if a.addr+a.size > 0x10000 && a.name != "MP table" {
			t.Errorf("%s [%#x, %#x) is not in the first 64 KiB", a.name, a.addr, a.addr+a.size)
		}
		for _, b := range bootAreas[i+1:] {
			if a.addr < b.addr+b.size && b.addr < a.addr+a.size {
				t.Errorf("%s [%#x, %#x) overlaps %s [%#x, %#x)", a.name, a.addr, a.addr+a.size, b.name, b.addr, b.addr+b.size)
			}
		}
	}
	if MPTableAddr+MPTableSize != 640<<10 {
		t.Errorf("MP table does not end base memory")
	}
}

func TestLayoutContents(t *testing.T) {
	if PDPTAddr != PML4Addr+hostarch.PageSize || PDAddr != PDPTAddr+hostarch.PageSize {
		t.Error("page tables are not contiguous from PML4Addr")
	}
	if ModlistAddr < StartInfoAddr+startInfoSize || MemmapAddr < ModlistAddr+modlistEntrySize {
		t.Error("PVH structures overlap")
	}
	if memmapMaxEntries < 5 {
		t.Errorf("room for %d memmap entries", memmapMaxEntries)
	}
	if GDTEntries*8 > hostarch.PageSize || int(BootTSS>>3)+2 > GDTEntries {
		t.Error("GDT does not hold the TSS descriptor")
	}
	if CmdlineMaxSize > hostarch.PageSize {
		t.Error("command line area too small")
	}
	if identityMapEnd != 4<<30 {
		t.Errorf("identity map ends at %#x", identityMapEnd)
	}
}
