package snapshot

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/tracevisor/tracevisor/internal/atomicfile"
	"github.com/tracevisor/tracevisor/internal/sparsefile"
	"golang.org/x/sys/unix"
)

// RAM is one region of guest RAM handed to WriteMemory.
type RAM struct {
	// GPA is the guest-physical address of Data[0]; page-aligned.
	GPA uint64
	// Data is the region's bytes; its length is a non-zero multiple of
	// PageSize. The guest must be paused while it is written.
	Data []byte
}

// WriteMemory writes the regions one after another into a new memory file
// at path and returns its layout, for Header.Memory. Pages that are all
// zero are left as holes, not written. The file is written under a
// temporary name in path's directory, synced and renamed over path, so a
// file of the same name that a restored guest still maps is never
// truncated under it.
func WriteMemory(path string, ram []RAM) (layout []Region, err error) {
	var off uint64
	for i, r := range ram {
		size := uint64(len(r.Data))
		if size == 0 || size%PageSize != 0 || r.GPA%PageSize != 0 {
			return nil, errorf(ErrMemory, "region %d (gpa %#x, %d bytes) is empty or not page-aligned", i, r.GPA, size)
		}
		layout = append(layout, Region{GPA: r.GPA, Offset: off, Size: size, CRC32C: crc32.Checksum(r.Data, castagno)})
		off += size
	}
	if err := checkLayout(layout); err != nil {
		return nil, err
	}
	err = atomicfile.Write(path, 0o600, func(f *os.File) error {
		// A new file extended by truncate is one hole: pages not written
		// below read as zero and take no disk.
		if err := f.Truncate(int64(off)); err != nil {
			return err
		}
		for i, r := range ram {
			if err := sparsefile.WriteAt(f, r.Data, int64(layout[i].Offset)); err != nil {
				return fmt.Errorf("region %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: memory file: %w", err)
	}
	return layout, nil
}

// Mapping is a memory file mapped privately: each region's Host is
// readable and writable, reads fault pages in from the file (shared, while
// clean, with every other mapping of it), and writes copy the page into
// this mapping alone.
type Mapping struct {
	regions []MappedRegion
}

// MappedRegion is one RAM region of a Mapping.
type MappedRegion struct {
	// GPA is the guest-physical address of Host[0].
	GPA uint64
	// Host is the region's private mapping of the memory file.
	Host []byte
}

// MapMemory maps the memory file at path MAP_PRIVATE, one mapping per region
// of layout (a Snapshot's Info.Memory). The file must be a regular file of
// exactly the layout's size (ErrMemory otherwise): a shorter one would fault
// the guest with SIGBUS on its last pages. Nothing is read until touched, so
// the cost does not grow with guest RAM.
func MapMemory(path string, layout []Region) (*Mapping, error) {
	if err := checkLayout(layout); err != nil {
		return nil, err
	}
	if pg := unix.Getpagesize(); pg > PageSize || PageSize%pg != 0 {
		return nil, errorf(ErrMemory, "host page size %d does not divide the format's %d", pg, PageSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: memory file: %w", err)
	}
	defer f.Close() // the mappings keep the file
	if err := checkMemoryFile(f, layout); err != nil {
		return nil, err
	}
	m := &Mapping{}
	for i, r := range layout {
		if r.Size > math.MaxInt || r.Offset > math.MaxInt64 {
			m.Close()
			return nil, errorf(ErrMemory, "region %d of %#x bytes at %#x does not fit this host", i, r.Size, r.Offset)
		}
		b, err := unix.Mmap(int(f.Fd()), int64(r.Offset), int(r.Size),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_NORESERVE)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("snapshot: mapping region %d (%d MiB) of %s: %w", i, r.Size>>20, path, err)
		}
		m.regions = append(m.regions, MappedRegion{GPA: r.GPA, Host: b})
	}
	return m, nil
}

// Regions returns the mapped regions, in layout order.
func (m *Mapping) Regions() []MappedRegion { return m.regions }

// Close unmaps every region; the Host slices must not be used after it.
func (m *Mapping) Close() error {
	var errs []error
	for _, r := range m.regions {
		if err := unix.Munmap(r.Host); err != nil {
			errs = append(errs, err)
		}
	}
	m.regions = nil
	return errors.Join(errs...)
}

// VerifyMemory reads the whole memory file at path and checks each region's
// CRC32C against layout (ErrChecksum) and the file's size (ErrMemory). It
// is not part of restore, which reads lazily; it is for tools and tests.
func VerifyMemory(path string, layout []Region) error {
	if err := checkLayout(layout); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot: memory file: %w", err)
	}
	defer f.Close()
	if err := checkMemoryFile(f, layout); err != nil {
		return err
	}
	for i, r := range layout {
		h := crc32.New(castagno)
		if _, err := io.Copy(h, io.NewSectionReader(f, int64(r.Offset), int64(r.Size))); err != nil {
			return fmt.Errorf("snapshot: memory file, region %d: %w", i, err)
		}
		if got := h.Sum32(); got != r.CRC32C {
			return errorf(ErrChecksum, "memory region %d (gpa %#x): CRC32C %#08x, the layout records %#08x", i, r.GPA, got, r.CRC32C)
		}
	}
	return nil
}

// checkMemoryFile checks that f is a regular file of the layout's size.
func checkMemoryFile(f *os.File, layout []Region) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot: memory file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return errorf(ErrMemory, "%s is not a regular file", f.Name())
	}
	if want := memorySize(layout); uint64(st.Size()) != want {
		return errorf(ErrMemory, "%s is %d bytes, the layout needs %d", f.Name(), st.Size(), want)
	}
	return nil
}
