package snapshot

import (
	"bytes"
	"hash/crc32"
	"testing"
	"time"
)

// testConfig stands in for the VMM's configuration.
type testConfig struct {
	MemMiB int      `json:"mem_mib"`
	CPUs   int      `json:"cpus"`
	Kernel string   `json:"kernel"`
	Disks  []string `json:"disks,omitempty"`
}

var cfg = testConfig{MemMiB: 256, CPUs: 2, Kernel: "bzImage", Disks: []string{"root.ext2"}}

func testHeader() Header {
	return Header{
		VMMVersion: "v0.3.1",
		Profile:    "emulated",
		Config:     cfg,
		Created:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Memory:     []Region{{GPA: 0, Offset: 0, Size: 16 << 20, CRC32C: 7}, {GPA: 4 << 30, Offset: 16 << 20, Size: 8192, CRC32C: 9}},
	}
}

var testExpect = Expect{VMMVersion: "v0.3.1", Profile: "emulated", Config: cfg}

type regs struct {
	RIP    uint64 `json:"rip"`
	RFLAGS uint64 `json:"rflags"`
	GPRs   []uint64
}

type uart struct {
	IER, LCR byte
	Pending  []byte
}

// validFile returns a state file with three JSON sections and a raw one.
func validFile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, testHeader())
	for _, s := range []struct {
		name string
		v    any
	}{
		{"vcpu/0/regs", regs{RIP: 0xffffffff81000000, RFLAGS: 2, GPRs: []uint64{1, 2, 3}}},
		{"vcpu/1/regs", regs{RIP: 0x1000, RFLAGS: 0x202}},
		{"dev/uart", uart{IER: 1, LCR: 3, Pending: []byte("hi")}},
	} {
		if err := w.Section(s.name, s.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Raw("vcpu/0/xsave", bytes.Repeat([]byte{0xa5, 0}, 2048)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// span is one record's place in a file.
type span struct {
	kind       byte
	start, end int
}

// spans walks a well-formed file's records.
func spans(t testing.TB, b []byte) []span {
	t.Helper()
	var out []span
	for off := preambleSize; off < len(b); {
		n := recordHead + int(b[off+2]) + int(le.Uint32(b[off+4:])) + crcSize
		out = append(out, span{b[off], off, off + n})
		off += n
	}
	if len(out) == 0 || out[len(out)-1].end != len(b) {
		t.Fatalf("spans: records do not tile the file")
	}
	return out
}

// assemble builds a file from a preamble and records, sealed by an end
// record whose count is the number of 'S' records and whose CRC is right:
// what it tests is then the only thing wrong.
func assemble(pre []byte, recs ...[]byte) []byte {
	b := append([]byte(nil), pre...)
	n := 0
	for _, r := range recs {
		b = append(b, r...)
		if r[0] == kindSection {
			n++
		}
	}
	end := make([]byte, endPayload)
	le.PutUint32(end, uint32(n))
	le.PutUint32(end[4:], crc32.Checksum(b, castagno))
	return append(b, encodeRecord(kindEnd, Bytes, "", end)...)
}

// headerRecord is a valid header record for testHeader.
func headerRecord(t testing.TB) []byte {
	t.Helper()
	h, err := testHeader().encode()
	if err != nil {
		t.Fatal(err)
	}
	return encodeRecord(kindHeader, JSON, "", h)
}
