package guestmem

import "encoding/binary"

// Little-endian fixed-width accessors: the x86 guest's byte order.

// Read8 reads one byte at gpa.
func (m *Memory) Read8(gpa uint64) (uint8, error) {
	s, err := m.Slice(gpa, 1)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

// Read16 reads a little-endian uint16 at gpa.
func (m *Memory) Read16(gpa uint64) (uint16, error) {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

// Read32 reads a little-endian uint32 at gpa.
func (m *Memory) Read32(gpa uint64) (uint32, error) {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

// Read64 reads a little-endian uint64 at gpa.
func (m *Memory) Read64(gpa uint64) (uint64, error) {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

// Write16 writes v little-endian at gpa.
func (m *Memory) Write16(gpa uint64, v uint16) error {
	s, err := m.Slice(gpa, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(s, v)
	return nil
}

// Write32 writes v little-endian at gpa.
func (m *Memory) Write32(gpa uint64, v uint32) error {
	s, err := m.Slice(gpa, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s, v)
	return nil
}

// Write64 writes v little-endian at gpa.
func (m *Memory) Write64(gpa uint64, v uint64) error {
	s, err := m.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(s, v)
	return nil
}
