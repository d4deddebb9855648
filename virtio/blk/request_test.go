package blk

import (
	"encoding/binary"
	"errors"
	"testing"
)

func hdr(typ uint32, sector uint64) (h [headerSize]byte) {
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

func TestParseRequestLayouts(t *testing.T) {
	// Linux's layout: header, data, status each in its own buffer.
	r, err := ParseRequest([]Segment{{0x1000, 16, false}, {0x2000, 1024, true}, {0x3000, 1, true}}, hdr(VIRTIO_BLK_T_IN, 8))
	if err != nil || r.Type != VIRTIO_BLK_T_IN || r.Sector != 8 || r.DataLen != 1024 || r.Status != 0x3000 || len(r.Data) != 1 {
		t.Fatalf("separate buffers: %+v, %v", r, err)
	}
	// Merged: header+data readable in one buffer, data+status writable in one.
	r, err = ParseRequest([]Segment{{0x1000, 16 + 512, false}, {0x3000, 1, true}}, hdr(VIRTIO_BLK_T_OUT, 0))
	if err != nil || r.DataLen != 512 || r.Data[0].Addr != 0x1010 || r.Status != 0x3000 {
		t.Fatalf("merged OUT: %+v, %v", r, err)
	}
	r, err = ParseRequest([]Segment{{0x1000, 16, false}, {0x2000, 513, true}}, hdr(VIRTIO_BLK_T_IN, 0))
	if err != nil || r.DataLen != 512 || r.Status != 0x2200 {
		t.Fatalf("merged IN: %+v, %v", r, err)
	}
	r, err = ParseRequest([]Segment{{0x1000, 16, false}, {0x3000, 1, true}}, hdr(VIRTIO_BLK_T_FLUSH, 0))
	if err != nil || r.DataLen != 0 {
		t.Fatalf("flush: %+v, %v", r, err)
	}
	if r, err := ParseRequest([]Segment{{0x1000, 16, false}, {0x3000, 1, true}}, hdr(99, 0)); err != nil || r.Type != 99 {
		t.Fatalf("unknown type must parse (answered UNSUPP): %+v, %v", r, err)
	}
}

func TestParseRequestRejects(t *testing.T) {
	cases := []struct {
		name string
		segs []Segment
		typ  uint32
		want error
	}{
		{"no status", []Segment{{0x1000, 16, false}}, VIRTIO_BLK_T_FLUSH, ErrChainTooShort},
		{"no header", []Segment{{0x1000, 1, true}}, VIRTIO_BLK_T_FLUSH, ErrChainTooShort},
		{"short header", []Segment{{0x1000, 8, false}, {0x3000, 1, true}}, VIRTIO_BLK_T_FLUSH, ErrHeaderShort},
		{"readable after writable", []Segment{{0x1000, 16, false}, {0x2000, 1, true}, {0x3000, 1, false}}, VIRTIO_BLK_T_FLUSH, ErrHeaderWritable},
		{"IN with readable data", []Segment{{0x1000, 16 + 512, false}, {0x3000, 1, true}}, VIRTIO_BLK_T_IN, ErrDataDirection},
		{"OUT with writable data", []Segment{{0x1000, 16, false}, {0x2000, 513, true}}, VIRTIO_BLK_T_OUT, ErrDataDirection},
		{"IN not sectored", []Segment{{0x1000, 16, false}, {0x2000, 100, true}, {0x3000, 1, true}}, VIRTIO_BLK_T_IN, ErrDataNotSectored},
	}
	for _, c := range cases {
		if _, err := ParseRequest(c.segs, hdr(c.typ, 0)); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBounds(t *testing.T) {
	r := &Request{Sector: 6, DataLen: 2 * SectorSize}
	if err := r.Bounds(8); err != nil {
		t.Errorf("last two sectors of an 8-sector disk: %v", err)
	}
	if err := r.Bounds(7); err == nil {
		t.Error("request past the end accepted")
	}
	r = &Request{Sector: ^uint64(0), DataLen: SectorSize}
	if err := r.Bounds(8); err == nil {
		t.Error("overflowing sector accepted")
	}
}
