package boot

import (
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
)

// translate walks the 4-level page tables at cr3 in mem the way the MMU
// does and returns the physical address va maps to.
func translate(t *testing.T, mem *guestmem.Memory, cr3, va uint64) (uint64, bool) {
	t.Helper()
	table := cr3
	for level, shift := range []uint{39, 30, 21, 12} {
		e := read64(t, mem, table+(va>>shift&0x1ff)*8)
		if e&ptePresent == 0 {
			return 0, false
		}
		if e&pteWritable == 0 {
			t.Errorf("va %#x: level %d entry %#x not writable", va, level, e)
		}
		frame := e & 0x000f_ffff_ffff_f000
		if level == 2 && e&ptePageSize != 0 {
			return frame&^(1<<21-1) | va&(1<<21-1), true
		}
		if level == 1 && e&ptePageSize != 0 {
			t.Fatalf("va %#x: unexpected 1 GiB page", va)
		}
		table = frame
	}
	t.Fatalf("va %#x: 4 KiB page, want 2 MiB pages", va)
	return 0, false
}

func TestIdentityPageTables(t *testing.T) {
	mem := newMem(16<<20, 0xaa)
	cr3, err := writeIdentityPageTables(mem)
	if err != nil {
		t.Fatal(err)
	}
	if cr3 != PML4Addr {
		t.Fatalf("CR3 %#x, want %#x", cr3, PML4Addr)
	}
	for _, va := range []uint64{
		0, 0x1000, 0x9fc00, 0x100000 + 0x200, 0x1000000, 0x1ffffff, 0x200000 + 0x123,
		1<<30 - 1, 1 << 30, 1<<30 + 0x345678, 2<<30 + 5, 3<<30 + 0x1234, 0xfec00000, 0xfee00000, 4<<30 - 1,
	} {
		pa, ok := translate(t, mem, cr3, va)
		if !ok || pa != va {
			t.Errorf("va %#x -> %#x (mapped %v), want identity", va, pa, ok)
		}
	}
	for _, va := range []uint64{4 << 30, 5<<30 + 0x1000, 512 << 30} {
		if pa, ok := translate(t, mem, cr3, va); ok {
			t.Errorf("va %#x mapped to %#x, want unmapped", va, pa)
		}
	}
	// The PML4 has only entry 0: no stale bytes from RAM in the rest.
	for i := uint64(1); i < 512; i++ {
		if e := read64(t, mem, PML4Addr+i*8); e != 0 {
			t.Fatalf("PML4[%d] = %#x, want 0", i, e)
		}
	}
}
