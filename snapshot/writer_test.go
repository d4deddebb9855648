package snapshot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestWriterRefuses: the writer does not produce what the reader would
// refuse (a bad or duplicate name, an oversize section, a header without
// version or profile, an unencodable value), and its first error is sticky:
// later calls and Close return it and no end record is written, so a
// caller that ignored it cannot end up with a valid, incomplete file.
func TestWriterRefuses(t *testing.T) {
	cases := []struct {
		name  string
		h     Header
		write func(w *Writer) error
		want  error
	}{
		{"bad name", testHeader(), func(w *Writer) error { return w.Section("Dev/UART", 1) }, ErrFormat},
		{"long name", testHeader(), func(w *Writer) error { return w.Section(strings.Repeat("a", MaxNameLen+1), 1) }, ErrFormat},
		{"duplicate", testHeader(), func(w *Writer) error {
			if err := w.Section("a", 1); err != nil {
				return nil // fails the test below: want ErrDuplicate
			}
			return w.Raw("a", nil)
		}, ErrDuplicate},
		{"oversize", testHeader(), func(w *Writer) error { return w.Raw("big", make([]byte, MaxSectionSize+1)) }, ErrTooLarge},
		{"unencodable", testHeader(), func(w *Writer) error { return w.Section("f", func() {}) }, ErrFormat},
		{"no version", Header{Profile: "emulated", Config: cfg}, func(w *Writer) error { return w.Section("a", 1) }, ErrFormat},
		{"no profile", Header{VMMVersion: "v1", Config: cfg}, func(w *Writer) error { return w.Section("a", 1) }, ErrFormat},
		{"bad layout", Header{VMMVersion: "v1", Profile: "p", Memory: []Region{{Size: 100}}}, func(w *Writer) error { return w.Section("a", 1) }, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, c.h)
			if err := c.write(w); !errors.Is(err, c.want) {
				t.Fatalf("write: %v, want %v", err, c.want)
			}
			if err := w.Section("later", 1); !errors.Is(err, c.want) {
				t.Errorf("later Section: %v, want the sticky %v", err, c.want)
			}
			if err := w.Close(); !errors.Is(err, c.want) {
				t.Errorf("Close: %v, want the sticky %v", err, c.want)
			}
			if _, err := Inspect(bytes.NewReader(buf.Bytes())); err == nil {
				t.Errorf("the refused writer left a valid file")
			}
		})
	}
}

// TestWriterClose: Close ends the file; using the writer afterwards is
// ErrClosed and writes nothing more.
func TestWriterClose(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, testHeader())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Section("a", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Section after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if buf.Len() != n {
		t.Errorf("wrote %d bytes after Close", buf.Len()-n)
	}
	s, err := Read(bytes.NewReader(buf.Bytes()), testExpect)
	if err != nil || len(s.Names()) != 0 {
		t.Fatalf("empty snapshot: %v, %v", s, err)
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		return 0, errDisk
	}
	f.n -= len(b)
	return len(b), nil
}

// TestWriterIOError: an error of the underlying writer surfaces from Close.
func TestWriterIOError(t *testing.T) {
	w := NewWriter(&failWriter{n: 100}, testHeader())
	if err := w.Raw("blob", make([]byte, 8192)); err != nil && !errors.Is(err, errDisk) {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Fatalf("Close: %v, want %v", err, errDisk)
	}
}
