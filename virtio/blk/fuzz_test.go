package blk

import (
	"encoding/binary"
	"testing"
)

// FuzzParseRequest feeds random chains: the first 16 bytes are the header,
// then 13 bytes per segment (addr, len, flags). ParseRequest must not panic,
// and what it accepts must be self-consistent.
func FuzzParseRequest(f *testing.F) {
	seed := func(typ uint32, segs ...Segment) []byte {
		h := hdr(typ, 3)
		b := append([]byte(nil), h[:]...)
		for _, s := range segs {
			var e [13]byte
			binary.LittleEndian.PutUint64(e[0:], s.Addr)
			binary.LittleEndian.PutUint32(e[8:], s.Len)
			if s.Write {
				e[12] = 1
			}
			b = append(b, e[:]...)
		}
		return b
	}
	f.Add(seed(VIRTIO_BLK_T_IN, Segment{0x1000, 16, false}, Segment{0x2000, 512, true}, Segment{0x3000, 1, true}))
	f.Add(seed(VIRTIO_BLK_T_OUT, Segment{0x1000, 528, false}, Segment{0x3000, 1, true}))
	f.Add(seed(VIRTIO_BLK_T_GET_ID, Segment{0x1000, 16, false}, Segment{0x2000, 21, true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerSize {
			return
		}
		var h [headerSize]byte
		copy(h[:], b)
		var segs []Segment
		for rest := b[headerSize:]; len(rest) >= 13 && len(segs) < 64; rest = rest[13:] {
			segs = append(segs, Segment{
				Addr:  binary.LittleEndian.Uint64(rest),
				Len:   binary.LittleEndian.Uint32(rest[8:]),
				Write: rest[12]&1 != 0,
			})
		}
		r, err := ParseRequest(segs, h)
		if err != nil {
			return
		}
		if total(r.Data) != r.DataLen {
			t.Fatalf("DataLen %d, segments add to %d", r.DataLen, total(r.Data))
		}
		for _, s := range r.Data {
			if r.Type == VIRTIO_BLK_T_OUT && s.Write || (r.Type == VIRTIO_BLK_T_IN || r.Type == VIRTIO_BLK_T_GET_ID) && !s.Write {
				t.Fatalf("type %d with data segment %+v", r.Type, s)
			}
		}
		var inWritable bool
		for _, s := range segs {
			if s.Write && s.Len > 0 && r.Status >= s.Addr && r.Status-s.Addr < uint64(s.Len) {
				inWritable = true
			}
		}
		if !inWritable {
			t.Fatalf("status byte %#x outside every writable segment", r.Status)
		}
	})
}
