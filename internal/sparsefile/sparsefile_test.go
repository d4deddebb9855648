package sparsefile

import (
	"bytes"
	"testing"
)

// recorder is an io.WriterAt that keeps each write.
type recorder struct {
	buf    []byte
	writes [][2]int64 // offset, length
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	copy(r.buf[off:], p)
	r.writes = append(r.writes, [2]int64{off, int64(len(p))})
	return len(p), nil
}

// Non-zero pages go out as one write per run, at their offsets; zero pages
// are not written; a partial last page that is not zero is.
func TestWriteAt(t *testing.T) {
	data := make([]byte, 5*PageSize+100)
	data[10] = 1            // page 0
	data[PageSize+5] = 2    // page 1: one run with page 0
	data[3*PageSize] = 3    // page 3 alone
	data[5*PageSize+99] = 4 // the partial last page
	r := &recorder{buf: make([]byte, 1000+len(data))}
	if err := WriteAt(r, data, 1000); err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{1000, 2 * PageSize}, {1000 + 3*PageSize, PageSize}, {1000 + 5*PageSize, 100}}
	if len(r.writes) != len(want) {
		t.Fatalf("writes %v, want %v", r.writes, want)
	}
	for i := range want {
		if r.writes[i] != want[i] {
			t.Errorf("write %d: %v, want %v", i, r.writes[i], want[i])
		}
	}
	if !bytes.Equal(r.buf[1000:], data) {
		t.Error("the bytes written differ from the data")
	}
}
