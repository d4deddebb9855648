package boot

import (
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kernel []byte
		want   Format
	}{
		{"vmlinux", testVmlinux(nil), FormatELF},
		{"bzImage", testBzImage(nil), FormatBzImage},
		{"32-bit ELF", []byte("\x7fELF\x01"), FormatELF},
	} {
		got, err := Detect(tc.kernel)
		if err != nil || got != tc.want {
			t.Errorf("%s: Detect = %v, %v, want %v", tc.name, got, err, tc.want)
		}
	}
	for _, k := range [][]byte{nil, []byte("\x1f\x8b\x08\x00 gzip"), make([]byte, 0x1000)} {
		_, err := Detect(k)
		wantErr(t, err, ErrUnknownFormat, "neither an ELF vmlinux nor a bzImage", `"HdrS"`)
	}
	if FormatELF.String() != "ELF vmlinux" || FormatBzImage.String() != "bzImage" {
		t.Error("Format.String")
	}
}

func TestLoadUnknownFormat(t *testing.T) {
	_, err := Load(newMem(16<<20, 0), []byte("MZ not a kernel"), Config{CPUs: 1})
	wantErr(t, err, ErrUnknownFormat)
}

func TestLoadBadRAM(t *testing.T) {
	_, err := Load(newMem(1<<20, 0), testVmlinux(nil), Config{CPUs: 1})
	wantErr(t, err, ErrBadRAMLayout)
}

func TestSegmentDescriptor(t *testing.T) {
	s := Segment{Base: 0x12345678, Limit: 0xabcde, Type: 0x3, Present: true, DPL: 3, S: true, AVL: true}
	if got, want := s.Descriptor(), uint64(0x12_1a_f3_345678_bcde); got != want {
		t.Errorf("Descriptor = %#x, want %#x", got, want)
	}
	tss := Segment{Base: 0xffff_8000_0000_1000, Limit: 0x67, Type: SegTypeTSSBusy, Present: true}
	if got := tss.SystemDescriptorHigh(); got != 0xffff_8000 {
		t.Errorf("SystemDescriptorHigh = %#x", got)
	}
}
