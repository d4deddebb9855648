package boot

import (
	"encoding/binary"
	"testing"
)

func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

func TestMPStructSizes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{mpFloatingPointer{}, 16},
		{mpConfigTableHeader{}, 44},
		{mpProcessorEntry{}, 20},
		{mpBusEntry{}, 8},
		{mpIOAPICEntry{}, 8},
		{mpIOInterruptEntry{}, 8},
		{mpLocalInterruptEntry{}, 8},
	} {
		if got := binary.Size(tc.v); got != tc.want {
			t.Errorf("%T is %d bytes, want %d", tc.v, got, tc.want)
		}
	}
}

func TestMPTable(t *testing.T) {
	for _, ncpus := range []int{1, 2, MaxCPUs} {
		mem := newMem(16<<20, 0xaa)
		table, err := mpTable(ncpus)
		if err != nil {
			t.Fatalf("%d CPUs: %v", ncpus, err)
		}
		if err := writeMPTable(mem, table); err != nil {
			t.Fatal(err)
		}

		// Find the floating pointer as Linux's smp_scan_config does: on a
		// 16-byte boundary of the last KiB of base memory.
		var mpf []byte
		for a := uint64(639 << 10); a < 640<<10; a += 16 {
			if b := read(t, mem, a, 16); string(b[:4]) == "_MP_" {
				mpf = b
				break
			}
		}
		if mpf == nil {
			t.Fatalf("%d CPUs: no _MP_ in [0x9fc00, 0xa0000)", ncpus)
		}
		if sum(mpf) != 0 || mpf[8] != 1 || mpf[9] != 4 || mpf[11] != 0 || mpf[12] != 0 {
			t.Errorf("%d CPUs: floating pointer %x", ncpus, mpf)
		}
		cfg := uint64(binary.LittleEndian.Uint32(mpf[4:]))
		hdr := read(t, mem, cfg, 44)
		length := uint64(binary.LittleEndian.Uint16(hdr[4:]))
		if string(hdr[:4]) != "PCMP" || hdr[6] != 4 {
			t.Fatalf("%d CPUs: configuration table header %x", ncpus, hdr)
		}
		if cfg+length > MPTableAddr+MPTableSize {
			t.Fatalf("%d CPUs: table ends at %#x, past the reserved KiB", ncpus, cfg+length)
		}
		if got := sum(read(t, mem, cfg, length)); got != 0 {
			t.Errorf("%d CPUs: configuration table sums to %#x", ncpus, got)
		}
		if lapic := binary.LittleEndian.Uint32(hdr[36:]); lapic != 0xfee00000 {
			t.Errorf("%d CPUs: local APIC address %#x", ncpus, lapic)
		}

		// Walk the entries.
		sizes := map[uint8]uint64{0: 20, 1: 8, 2: 8, 3: 8, 4: 8}
		count := map[uint8]int{}
		entries := 0
		for off := cfg + 44; off < cfg+length; {
			typ := read(t, mem, off, 1)[0]
			size, ok := sizes[typ]
			if !ok {
				t.Fatalf("%d CPUs: unknown entry type %d at %#x", ncpus, typ, off)
			}
			e := read(t, mem, off, size)
			switch typ {
			case mpEntryProcessor:
				id := count[typ]
				wantFlags := byte(1)
				if id == 0 {
					wantFlags = 3
				}
				if e[1] != byte(id) || e[3] != wantFlags || e[2] != 0x14 {
					t.Errorf("%d CPUs: processor entry %d = %x", ncpus, id, e)
				}
			case mpEntryBus:
				if e[1] != 0 || string(e[2:8]) != "ISA   " {
					t.Errorf("%d CPUs: bus entry %x", ncpus, e)
				}
			case mpEntryIOAPIC:
				if e[1] != byte(ncpus) || e[2] != 0x11 || e[3] != 1 || binary.LittleEndian.Uint32(e[4:]) != 0xfec00000 {
					t.Errorf("%d CPUs: IOAPIC entry %x", ncpus, e)
				}
			case mpEntryIOInterrupt:
				irq := byte(count[typ])
				if e[1] != mpIntINT || e[2] != 0 || e[3] != 0 || e[4] != 0 || e[5] != irq || e[6] != byte(ncpus) || e[7] != irq {
					t.Errorf("%d CPUs: I/O interrupt entry %d = %x", ncpus, irq, e)
				}
			case mpEntryLocalInterrupt:
				lint := byte(count[typ])
				wantType := []byte{mpIntExtINT, mpIntNMI}[lint]
				if e[1] != wantType || e[6] != 0xff || e[7] != lint {
					t.Errorf("%d CPUs: local interrupt entry %d = %x", ncpus, lint, e)
				}
			}
			count[typ]++
			entries++
			off += size
		}
		want := map[uint8]int{0: ncpus, 1: 1, 2: 1, 3: 16, 4: 2}
		for typ, n := range want {
			if count[typ] != n {
				t.Errorf("%d CPUs: %d entries of type %d, want %d", ncpus, count[typ], typ, n)
			}
		}
		if n := int(binary.LittleEndian.Uint16(hdr[34:])); n != entries {
			t.Errorf("%d CPUs: entry count %d, want %d", ncpus, n, entries)
		}
		// The rest of the KiB is cleared.
		rest := read(t, mem, cfg+length, MPTableAddr+MPTableSize-cfg-length)
		for _, b := range rest {
			if b != 0 {
				t.Fatalf("%d CPUs: stale bytes after the table", ncpus)
			}
		}
	}
}

func TestMPTableCPUCount(t *testing.T) {
	for _, n := range []int{-1, 0, MaxCPUs + 1, 255} {
		_, err := mpTable(n)
		wantErr(t, err, ErrCPUCount)
	}
}
