// Package guestmem owns the guest's RAM: the host mappings behind it, and the
// only bounds-checked way for the rest of the VMM to read and write it.
//
// Guest-physical addresses arrive from the guest (ring addresses, boot
// structures, buffers) and are untrusted: every access checks that the whole
// range [addr, addr+len) lies inside one RAM region, with overflow checked,
// and returns ErrOutOfBounds otherwise. Nothing outside this package casts
// pointers over guest memory.
package guestmem

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/hostarch"
)

// MMIOHoleStart and MMIOHoleEnd bound the 32-bit hole below 4 GiB that is
// never RAM: it holds the device MMIO window, the IOAPIC and the LAPIC.
const (
	MMIOHoleStart uint64 = 0xC000_0000
	MMIOHoleEnd   uint64 = 1 << 32
)

// MinSize is the smallest guest RAM the layout accepts.
const MinSize uint64 = 16 << 20

// ErrOutOfBounds is returned for any access not wholly inside guest RAM.
var ErrOutOfBounds = errors.New("guest address range outside RAM")

// Region is one contiguous range of guest RAM and its host mapping.
type Region struct {
	// GPA is the guest-physical address of the first byte.
	GPA uint64
	// Host is the host mapping; len(Host) is the region's size.
	Host []byte
}

// Size returns the region's length in bytes.
func (r Region) Size() uint64 { return uint64(len(r.Host)) }

// End returns the first guest-physical address after the region.
func (r Region) End() uint64 { return r.GPA + r.Size() }

// Memory is the guest's RAM: one region below the MMIO hole and, for guests
// larger than the hole's start, a second one from 4 GiB.
type Memory struct {
	regions []Region
	unmap   func([]byte) error // each region's, at Close; nil: not ours
	release func() error       // once, at Close, after unmap; nil: none
}

// Layout returns the RAM regions (GPA, size) a guest of size bytes gets:
// RAM from 0 up to MMIOHoleStart, and the rest from 4 GiB up.
func Layout(size uint64) ([][2]uint64, error) {
	if size < MinSize {
		return nil, fmt.Errorf("guest memory %d MiB is below the minimum of %d MiB", size>>20, MinSize>>20)
	}
	if size%hostarch.PageSize != 0 {
		return nil, fmt.Errorf("guest memory size %#x is not a multiple of the page size", size)
	}
	if size <= MMIOHoleStart {
		return [][2]uint64{{0, size}}, nil
	}
	return [][2]uint64{{0, MMIOHoleStart}, {MMIOHoleEnd, size - MMIOHoleStart}}, nil
}

// New maps size bytes of anonymous, zeroed host memory as guest RAM laid out
// by Layout.
func New(size uint64) (*Memory, error) {
	layout, err := Layout(size)
	if err != nil {
		return nil, err
	}
	m := &Memory{unmap: munmap}
	for _, l := range layout {
		host, err := mmapAnon(l[1])
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("mapping %d MiB of guest RAM: %w", l[1]>>20, err)
		}
		m.regions = append(m.regions, Region{GPA: l[0], Host: host})
	}
	return m, nil
}

// FromRegions wraps caller-owned buffers as guest RAM; Close does not free
// them. Tests use it to build memories without mmap. Regions must not
// overlap.
func FromRegions(regions ...Region) *Memory {
	return &Memory{regions: regions}
}

// Regions returns the RAM regions in address order. The slices alias guest
// RAM; callers other than the KVM memory-slot setup must not keep them.
// The snapshot writer reads them whole while the guest is paused.
func (m *Memory) Regions() []Region { return m.regions }

// Size returns the total RAM in bytes.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.regions {
		n += r.Size()
	}
	return n
}

// Close unmaps guest RAM (for FromMappings: calls its release). Memory must
// not be used afterwards; a second Close does nothing.
func (m *Memory) Close() error {
	var first error
	for _, r := range m.regions {
		if m.unmap != nil {
			if err := m.unmap(r.Host); err != nil && first == nil {
				first = err
			}
		}
	}
	m.regions = nil
	if release := m.release; release != nil {
		m.release = nil
		if err := release(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Slice returns the host bytes behind [gpa, gpa+n). The range must lie inside
// one region. The returned slice aliases guest RAM: the guest may change it
// at any time, so parse copies, not the slice, when the data is untrusted.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	end := gpa + n
	if end < gpa {
		return nil, fmt.Errorf("%w: [%#x, +%#x) wraps", ErrOutOfBounds, gpa, n)
	}
	for _, r := range m.regions {
		if gpa >= r.GPA && end <= r.End() {
			off := gpa - r.GPA
			return r.Host[off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("%w: [%#x, %#x)", ErrOutOfBounds, gpa, end)
}

// Contains reports whether [gpa, gpa+n) lies wholly inside guest RAM.
func (m *Memory) Contains(gpa, n uint64) bool {
	_, err := m.Slice(gpa, n)
	return err == nil
}

// ReadAt copies len(p) bytes of guest RAM at gpa into p.
func (m *Memory) ReadAt(p []byte, gpa uint64) error {
	s, err := m.Slice(gpa, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(p, s)
	return nil
}

// WriteAt copies p into guest RAM at gpa.
func (m *Memory) WriteAt(p []byte, gpa uint64) error {
	s, err := m.Slice(gpa, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(s, p)
	return nil
}
