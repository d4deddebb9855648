package snapshot

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestRoundTrip: what the writer wrote, Read returns: the header (version,
// profile, canonical config and its hash, created, memory layout), the
// sections in order with their encodings, each decoding to the value
// written, and the raw blob byte for byte.
func TestRoundTrip(t *testing.T) {
	b := validFile(t)
	s, err := Read(bytes.NewReader(b), testExpect)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	if s.Info.VMMVersion != h.VMMVersion || s.Info.Profile != h.Profile || !s.Info.Created.Equal(h.Created) {
		t.Errorf("info %+v, wrote %+v", s.Info, h)
	}
	if !reflect.DeepEqual(s.Info.Memory, h.Memory) || s.Info.MemorySize() != 16<<20+8192 {
		t.Errorf("memory %+v (size %d), wrote %+v", s.Info.Memory, s.Info.MemorySize(), h.Memory)
	}
	wantCfg := `{"cpus":2,"disks":["root.ext2"],"kernel":"bzImage","mem_mib":256}`
	if string(s.Info.Config) != wantCfg {
		t.Errorf("config %s, want canonical %s", s.Info.Config, wantCfg)
	}
	if _, sum, _ := Fingerprint(cfg); s.Info.ConfigSHA256 != sum {
		t.Errorf("config sha256 %s, want %s", s.Info.ConfigSHA256, sum)
	}
	if got, want := s.Names(), []string{"vcpu/0/regs", "vcpu/1/regs", "dev/uart", "vcpu/0/xsave"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	if got := s.Sections(); got[3].Encoding != Bytes || got[3].Size != 4096 || got[0].Encoding != JSON {
		t.Errorf("sections %+v", got)
	}
	var r0, r1 regs
	var u uart
	for name, v := range map[string]any{"vcpu/0/regs": &r0, "vcpu/1/regs": &r1, "dev/uart": &u} {
		if err := s.Section(name, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if !reflect.DeepEqual(r0, regs{RIP: 0xffffffff81000000, RFLAGS: 2, GPRs: []uint64{1, 2, 3}}) || r1.RIP != 0x1000 || r1.RFLAGS != 0x202 {
		t.Errorf("regs %+v %+v", r0, r1)
	}
	if !reflect.DeepEqual(u, uart{IER: 1, LCR: 3, Pending: []byte("hi")}) {
		t.Errorf("uart %+v", u)
	}
	if got := s.Unused(); !reflect.DeepEqual(got, []string{"vcpu/0/xsave"}) {
		t.Errorf("unused before Raw: %q", got)
	}
	x, err := s.Raw("vcpu/0/xsave")
	if err != nil || !bytes.Equal(x, bytes.Repeat([]byte{0xa5, 0}, 2048)) {
		t.Errorf("raw: %v, %d bytes", err, len(x))
	}
	if got := s.Unused(); got != nil {
		t.Errorf("unused after reading all: %q", got)
	}
}

// TestSectionDecodeErrors: a section absent, one whose JSON has a field the
// caller's type lacks (another layout), and an encoding read the wrong way
// are each refused with their own error.
func TestSectionDecodeErrors(t *testing.T) {
	s, err := Read(bytes.NewReader(validFile(t)), testExpect)
	if err != nil {
		t.Fatal(err)
	}
	var r regs
	if err := s.Section("vcpu/2/regs", &r); !errors.Is(err, ErrNoSection) {
		t.Errorf("absent section: %v", err)
	}
	var narrow struct{ IER, LCR byte } // lacks Pending
	if err := s.Section("dev/uart", &narrow); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "Pending") {
		t.Errorf("unknown field: %v", err)
	}
	if err := s.Section("vcpu/0/xsave", &r); !errors.Is(err, ErrDecode) {
		t.Errorf("raw section as JSON: %v", err)
	}
	if _, err := s.Raw("dev/uart"); !errors.Is(err, ErrDecode) {
		t.Errorf("JSON section as raw: %v", err)
	}
	if got := s.Unused(); len(got) != 4 {
		t.Errorf("failed decodes marked sections used: unused %q", got)
	}
}

// TestCorruption: each class of damage is refused by Read with its own
// error, and Read returns no Snapshot.
func TestCorruption(t *testing.T) {
	good := validFile(t)
	sp := spans(t, good)
	sec := sp[1] // vcpu/0/regs
	end := sp[len(sp)-1]
	hdr := headerRecord(t)
	sectionRec := func(name string, enc Encoding, payload string) []byte {
		return encodeRecord(kindSection, enc, name, []byte(payload))
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	// setHead rewrites a record head's fields and re-signs the record's
	// CRC, so only the field under test is wrong.
	bigHead := func(kind byte, enc Encoding, nameLen int, size uint32) []byte {
		b := []byte{kind, byte(enc), byte(nameLen), 0, 0, 0, 0, 0}
		le.PutUint32(b[4:], size)
		return b
	}
	cases := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"bad magic", edit(func(b []byte) []byte { b[1] = 'X'; return b }), ErrFormat, "magic"},
		{"not a snapshot", []byte("#!/bin/sh\necho hello\n"), ErrFormat, "magic"},
		{"format version 2", edit(func(b []byte) []byte { le.PutUint32(b[8:], 2); return b }), ErrVersion, "version 2"},
		{"preamble reserved", edit(func(b []byte) []byte { b[13] = 1; return b }), ErrFormat, "reserved"},
		{"flipped payload byte", edit(func(b []byte) []byte { b[sec.end-crcSize-2] ^= 0x20; return b }), ErrChecksum, "record 1"},
		{"flipped header byte", edit(func(b []byte) []byte { b[sp[0].start+recordHead+3] ^= 1; return b }), ErrChecksum, "record 0"},
		{"flipped record CRC", edit(func(b []byte) []byte { b[sec.end-1] ^= 1; return b }), ErrChecksum, "CRC32C"},
		{"missing end record", good[:end.start], ErrTruncated, "without its end record"},
		{"no header", good[:preambleSize], ErrTruncated, "before its header"},
		{"bytes after the end", append(append([]byte(nil), good...), 0), ErrFormat, "after the end record"},
		{"duplicate section", assemble(good[:preambleSize], hdr, sectionRec("a", JSON, "1"), sectionRec("b", JSON, "2"), sectionRec("a", JSON, "3")), ErrDuplicate, `"a" appears twice`},
		{"end count off", edit(func(b []byte) []byte {
			p := bytes.Clone(good[end.start+recordHead : end.end-crcSize])
			le.PutUint32(p, 5)
			return append(b[:end.start], encodeRecord(kindEnd, Bytes, "", p)...)
		}), ErrFormat, "counts 5 sections, the file holds 4"},
		{"spliced section", edit(func(b []byte) []byte {
			// A record with a valid CRC of its own, from another snapshot:
			// only the end record's file CRC notices.
			other := encodeRecord(kindSection, JSON, "vcpu/0/regs", []byte(`{"rip":1,"rflags":2,"GPRs":null}`))
			return append(append(b[:sec.start:sec.start], other...), good[sec.end:]...)
		}), ErrChecksum, "file CRC32C"},
		{"second header", assemble(good[:preambleSize], hdr, sectionRec("a", JSON, "1"), hdr), ErrFormat, "second header"},
		{"section before header", assemble(good[:preambleSize], sectionRec("a", JSON, "1"), hdr), ErrFormat, "not the header"},
		{"unknown record kind", assemble(good[:preambleSize], hdr, encodeRecord('X', JSON, "", nil)), ErrFormat, "unknown record kind"},
		{"unknown encoding", assemble(good[:preambleSize], hdr, sectionRec("a", 'Z', "1")), ErrFormat, "encoding 0x5a"},
		{"bad section name", assemble(good[:preambleSize], hdr, sectionRec("Dev/UART", JSON, "1")), ErrFormat, "not one of"},
		{"empty section name", assemble(good[:preambleSize], hdr, sectionRec("", JSON, "1")), ErrFormat, "length 0"},
		{"section not JSON", assemble(good[:preambleSize], hdr, sectionRec("a", JSON, "{1")), ErrFormat, "not one JSON value"},
		{"header not JSON", assemble(good[:preambleSize], encodeRecord(kindHeader, JSON, "", []byte("{"))), ErrFormat, "header"},
		{"header unknown field", assemble(good[:preambleSize], encodeRecord(kindHeader, JSON, "", []byte(
			`{"vmm_version":"v1","profile":"p","config":1,"config_sha256":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b","memory":[],"extra":1}`))), ErrFormat, "extra"},
		{"header config hash", assemble(good[:preambleSize], encodeRecord(kindHeader, JSON, "", []byte(
			`{"vmm_version":"v1","profile":"p","config":2,"config_sha256":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b","memory":[]}`))), ErrChecksum, "SHA-256"},
		{"header overlapping memory", assemble(good[:preambleSize], encodeRecord(kindHeader, JSON, "", []byte(
			`{"vmm_version":"v1","profile":"p","config":1,"config_sha256":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",`+
				`"memory":[{"gpa":0,"offset":0,"size":8192,"crc32c":0},{"gpa":65536,"offset":4096,"size":4096,"crc32c":0}]}`))), ErrFormat, "overlap"},
		{"header unaligned memory", assemble(good[:preambleSize], encodeRecord(kindHeader, JSON, "", []byte(
			`{"vmm_version":"v1","profile":"p","config":1,"config_sha256":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",`+
				`"memory":[{"gpa":0,"offset":100,"size":4096,"crc32c":0}]}`))), ErrFormat, "page-aligned"},
		{"oversize header", append(bytes.Clone(good[:preambleSize]), bigHead(kindHeader, JSON, 0, MaxHeaderSize+1)...), ErrTooLarge, "header of 65537 bytes"},
		{"oversize section", append(bytes.Clone(good[:end.start]), bigHead(kindSection, JSON, 1, MaxSectionSize+1)...), ErrTooLarge, "over 67108864"},
		{"oversize name", append(bytes.Clone(good[:end.start]), bigHead(kindSection, JSON, MaxNameLen+1, 1)...), ErrTooLarge, "name of 65 bytes"},
		{"4 GiB section", append(bytes.Clone(good[:end.start]), bigHead(kindSection, Bytes, 1, 0xffffffff)...), ErrTooLarge, "over"},
		{"end record of 9 bytes", append(bytes.Clone(good[:end.start]), bigHead(kindEnd, Bytes, 0, 9)...), ErrFormat, "end record"},
		{"truncated inside a section", good[:sec.start+recordHead+4], ErrTruncated, "inside record 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Read(bytes.NewReader(c.file), testExpect)
			if !errors.Is(err, c.want) || s != nil {
				t.Fatalf("Read = %v, %v; want %v", s, err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
		})
	}
}

// TestEveryPrefixTruncated: cut anywhere, a valid file is refused as
// truncated (never accepted, never another error, never a panic).
func TestEveryPrefixTruncated(t *testing.T) {
	good := validFile(t)
	for n := 0; n < len(good); n++ {
		if s, err := Inspect(bytes.NewReader(good[:n])); !errors.Is(err, ErrTruncated) || s != nil {
			t.Fatalf("prefix of %d/%d bytes: %v, %v", n, len(good), s, err)
		}
	}
}

// TestEveryByteFlipRefused: a valid file with any one byte changed is
// refused (the preamble by its checks, every record by its CRC32C), never
// accepted and never a panic.
func TestEveryByteFlipRefused(t *testing.T) {
	good := validFile(t)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x41
		if s, err := Inspect(bytes.NewReader(b)); err == nil || s != nil {
			t.Fatalf("byte %d/%d changed: accepted", i, len(good))
		}
	}
}

// TestTooManySections: section number MaxSections+1 is refused.
func TestTooManySections(t *testing.T) {
	recs := [][]byte{headerRecord(t)}
	for i := 0; i <= MaxSections; i++ {
		recs = append(recs, encodeRecord(kindSection, Bytes, "s/"+strconv.Itoa(i), nil))
	}
	b := assemble(preamble(), recs...)
	if _, err := Inspect(bytes.NewReader(b)); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 4096 sections") {
		t.Fatalf("%d sections: %v", MaxSections+1, err)
	}
	// Exactly MaxSections is fine.
	recs = recs[:len(recs)-1]
	if _, err := Inspect(bytes.NewReader(assemble(preamble(), recs...))); err != nil {
		t.Fatalf("%d sections: %v", MaxSections, err)
	}
}

// TestClaimedLengthCostsNoMemory: a section that claims 60 MiB (under the
// bound) in a file that holds a few bytes of it allocates about what is
// there, not what is claimed.
func TestClaimedLengthCostsNoMemory(t *testing.T) {
	good := validFile(t)
	end := spans(t, good)
	head := []byte{kindSection, byte(Bytes), 1, 0, 0, 0, 0, 0}
	le.PutUint32(head[4:], 60<<20)
	b := append(append(bytes.Clone(good[:end[len(end)-1].start]), head...), "abcdef"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Inspect(bytes.NewReader(b))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Inspect: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("reading a 60 MiB claim over 6 bytes allocated %d MiB", got>>20)
	}
}
