// Package sparsefile writes guest memory into files sparsely: pages that
// are all zero are skipped, so in a file extended by truncate they stay
// holes that read as zero and take no disk.
package sparsefile

import (
	"bytes"
	"io"
)

// PageSize is the unit a zero run is measured in.
const PageSize = 4096

var zeroPage = make([]byte, PageSize)

// WriteAt writes data at off in w, one write per run of pages that are not
// all zero (a last, partial page counts as a page). The caller makes the
// file long enough (truncate) for the holes at its end.
func WriteAt(w io.WriterAt, data []byte, off int64) error {
	start := -1 // first byte of the current non-zero run
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := w.WriteAt(data[start:end], off+int64(start))
		start = -1
		return err
	}
	for p := 0; p < len(data); p += PageSize {
		page := data[p:min(p+PageSize, len(data))]
		if !bytes.Equal(page, zeroPage[:len(page)]) {
			if start < 0 {
				start = p
			}
			continue
		}
		if err := flush(p); err != nil {
			return err
		}
	}
	return flush(len(data))
}
