package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// PageSize is the unit of the memory file: region offsets and sizes are
// multiples of it.
const PageSize = 4096

// Header is what the writer records about a snapshot before its sections.
type Header struct {
	// VMMVersion names the VMM that takes the snapshot; Read refuses the
	// snapshot on any other version. Required.
	VMMVersion string
	// Profile is the host profile ("hardware", "emulated"); Read refuses
	// the snapshot on any other. Required.
	Profile string
	// Config is the guest's configuration (any value encoding/json
	// marshals); the header records its canonical JSON and SHA-256, and
	// Read refuses the snapshot under any other configuration.
	Config any
	// Created is informational; the zero time is left out.
	Created time.Time
	// Memory is the memory file's layout, as WriteMemory returns it.
	Memory []Region
}

// Region is one RAM region's place in the memory file.
type Region struct {
	// GPA is the guest-physical address of the region's first byte.
	GPA uint64 `json:"gpa"`
	// Offset is where the region starts in the memory file.
	Offset uint64 `json:"offset"`
	// Size is the region's length in bytes.
	Size uint64 `json:"size"`
	// CRC32C is the CRC32C of the region's bytes at snapshot time.
	CRC32C uint32 `json:"crc32c"`
}

// Info is the header as Read found it.
type Info struct {
	// VMMVersion is the version of the VMM that took the snapshot.
	VMMVersion string
	// Profile is the host profile it was taken on.
	Profile string
	// Config is the configuration's canonical JSON.
	Config json.RawMessage
	// ConfigSHA256 is the SHA-256 of Config, in hex.
	ConfigSHA256 string
	// Created is when it was taken (zero if not recorded).
	Created time.Time
	// Memory is the memory file's layout.
	Memory []Region
}

// MemorySize returns the size the memory file must have: the end of its
// last region.
func (i Info) MemorySize() uint64 { return memorySize(i.Memory) }

// fileHeader is the header record's JSON.
type fileHeader struct {
	VMMVersion   string          `json:"vmm_version"`
	Profile      string          `json:"profile"`
	Config       json.RawMessage `json:"config"`
	ConfigSHA256 string          `json:"config_sha256"`
	Created      string          `json:"created,omitempty"`
	Memory       []Region        `json:"memory"`
}

// encode validates h and returns the header record's payload.
func (h Header) encode() ([]byte, error) {
	if h.VMMVersion == "" || h.Profile == "" {
		return nil, errorf(ErrFormat, "header: VMM version %q and profile %q are both required", h.VMMVersion, h.Profile)
	}
	cfg, sum, err := Fingerprint(h.Config)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(h.Memory); err != nil {
		return nil, err
	}
	fh := fileHeader{VMMVersion: h.VMMVersion, Profile: h.Profile, Config: cfg, ConfigSHA256: sum, Memory: h.Memory}
	if fh.Memory == nil {
		fh.Memory = []Region{}
	}
	if !h.Created.IsZero() {
		fh.Created = h.Created.UTC().Format(time.RFC3339Nano)
	}
	b, err := marshalNoHTML(fh)
	if err != nil {
		return nil, errorf(ErrFormat, "header: %v", err)
	}
	if len(b) > MaxHeaderSize {
		return nil, errorf(ErrTooLarge, "header of %d bytes is over %d", len(b), MaxHeaderSize)
	}
	return b, nil
}

// decodeHeader parses and validates the header record's payload.
func decodeHeader(b []byte) (Info, error) {
	var fh fileHeader
	if err := strictUnmarshal(b, &fh); err != nil {
		return Info{}, errorf(ErrFormat, "header: %v", err)
	}
	if fh.VMMVersion == "" || fh.Profile == "" {
		return Info{}, errorf(ErrFormat, "header: VMM version %q or profile %q is empty", fh.VMMVersion, fh.Profile)
	}
	if len(fh.Config) == 0 {
		return Info{}, errorf(ErrFormat, "header: no configuration")
	}
	if s := sha256.Sum256(fh.Config); hex.EncodeToString(s[:]) != fh.ConfigSHA256 {
		return Info{}, errorf(ErrChecksum, "header: configuration's SHA-256 is %x, the header records %q", s, fh.ConfigSHA256)
	}
	info := Info{VMMVersion: fh.VMMVersion, Profile: fh.Profile, Config: fh.Config, ConfigSHA256: fh.ConfigSHA256, Memory: fh.Memory}
	if fh.Created != "" {
		t, err := time.Parse(time.RFC3339Nano, fh.Created)
		if err != nil {
			return Info{}, errorf(ErrFormat, "header: created: %v", err)
		}
		info.Created = t
	}
	if err := checkLayout(info.Memory); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Fingerprint returns the canonical JSON of a configuration value (object
// keys sorted at every level, no insignificant space, no HTML escaping) and
// its SHA-256 in hex: what a header records and what Read compares.
func Fingerprint(config any) (json.RawMessage, string, error) {
	b, err := marshalNoHTML(config)
	if err != nil {
		return nil, "", errorf(ErrFormat, "configuration: %v", err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, "", errorf(ErrFormat, "configuration: %v", err)
	}
	// encoding/json writes map keys sorted: re-encoding the generic value
	// sorts every object's keys, whatever the struct's field order.
	c, err := marshalNoHTML(v)
	if err != nil {
		return nil, "", errorf(ErrFormat, "configuration: %v", err)
	}
	s := sha256.Sum256(c)
	return c, hex.EncodeToString(s[:]), nil
}

// marshalNoHTML is json.Marshal without HTML escaping or the trailing
// newline.
func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// strictUnmarshal decodes exactly one JSON value from b into v, refusing
// unknown fields and anything after the value.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// checkLayout validates a memory layout: at most MaxRegions regions, each
// non-empty and page-aligned in guest and file, none overlapping another in
// either space, no range wrapping past 2^64.
func checkLayout(rs []Region) error {
	if len(rs) > MaxRegions {
		return errorf(ErrTooLarge, "memory layout has %d regions, over %d", len(rs), MaxRegions)
	}
	for i, r := range rs {
		if r.Size == 0 || r.GPA%PageSize != 0 || r.Offset%PageSize != 0 || r.Size%PageSize != 0 {
			return errorf(ErrFormat, "memory region %d (gpa %#x, offset %#x, size %#x) is empty or not page-aligned", i, r.GPA, r.Offset, r.Size)
		}
		if r.GPA+r.Size < r.GPA || r.Offset+r.Size < r.Offset {
			return errorf(ErrFormat, "memory region %d (gpa %#x, offset %#x, size %#x) wraps past 2^64", i, r.GPA, r.Offset, r.Size)
		}
	}
	for _, space := range []struct {
		name  string
		start func(Region) uint64
	}{{"guest", func(r Region) uint64 { return r.GPA }}, {"file", func(r Region) uint64 { return r.Offset }}} {
		s := append([]Region(nil), rs...)
		sort.Slice(s, func(a, b int) bool { return space.start(s[a]) < space.start(s[b]) })
		for i := 1; i < len(s); i++ {
			if space.start(s[i-1])+s[i-1].Size > space.start(s[i]) {
				return errorf(ErrFormat, "memory regions at %s %#x and %#x overlap", space.name, space.start(s[i-1]), space.start(s[i]))
			}
		}
	}
	return nil
}

// memorySize returns the end of the last region in the file.
func memorySize(rs []Region) uint64 {
	var end uint64
	for _, r := range rs {
		end = max(end, r.Offset+r.Size)
	}
	return end
}
