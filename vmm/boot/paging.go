package boot

import (
	"encoding/binary"

	"github.com/tracevisor/tracevisor/guestmem"
	"gvisor.dev/gvisor/pkg/hostarch"
)

// Page-table entry bits (Intel SDM vol. 3A, 4.5).
const (
	ptePresent  uint64 = 1 << 0
	pteWritable uint64 = 1 << 1
	// ptePageSize in a page-directory entry maps a 2 MiB page.
	ptePageSize uint64 = 1 << 7
)

// identityMapEnd is the end of the identity map the 64-bit boot protocol
// entry gets: the kernel, boot_params, the command line and the initrd all
// lie below it (the initrd is placed below 4 GiB).
const identityMapEnd uint64 = identityPDs << 30

// entriesPerTable is the number of 8-byte entries in a 4 KiB table.
const entriesPerTable = hostarch.PageSize / 8

// identityPageTables returns the PML4, the PDPT and the identityPDs page
// directories, contiguous from PML4Addr, that map virtual X to physical X
// for X in [0, 4 GiB) with 2 MiB pages, read/write, supervisor. The kernel
// replaces them early; the MMIO hole is mapped too, which is harmless.
func identityPageTables() []byte {
	tables := make([]byte, (2+identityPDs)*hostarch.PageSize)
	put := func(tableAddr uint64, i int, v uint64) {
		off := tableAddr - PML4Addr + uint64(i)*8
		binary.LittleEndian.PutUint64(tables[off:], v)
	}
	put(PML4Addr, 0, PDPTAddr|ptePresent|pteWritable)
	for gib := 0; gib < identityPDs; gib++ {
		pd := PDAddr + uint64(gib)*hostarch.PageSize
		put(PDPTAddr, gib, pd|ptePresent|pteWritable)
		for i := 0; i < entriesPerTable; i++ {
			phys := uint64(gib)<<30 | uint64(i)*hostarch.HugePageSize
			put(pd, i, phys|ptePresent|pteWritable|ptePageSize)
		}
	}
	return tables
}

// writeIdentityPageTables writes identityPageTables at PML4Addr and returns
// the CR3 value that selects them.
func writeIdentityPageTables(mem *guestmem.Memory) (cr3 uint64, err error) {
	if err := mem.WriteAt(identityPageTables(), PML4Addr); err != nil {
		return 0, err
	}
	return PML4Addr, nil
}
