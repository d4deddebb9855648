package snapshot

import (
	"bytes"
	"testing"
)

// FuzzRead: Inspect and Read never panic; a refusal returns no Snapshot;
// whatever Inspect accepts is canonical (re-encoding its header and
// sections gives the same bytes) and every JSON section in it decodes.
// Seeds: testdata/fuzz/FuzzRead and a valid file.
func FuzzRead(f *testing.F) {
	f.Add(validFile(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := Read(bytes.NewReader(b), testExpect); (err != nil) != (s == nil) {
			t.Fatalf("Read returned %v with error %v", s, err)
		}
		s, err := Inspect(bytes.NewReader(b))
		if err != nil {
			if s != nil {
				t.Fatalf("Inspect returned %v with error %v", s, err)
			}
			return
		}
		var buf bytes.Buffer
		w := newWriter(&buf, s.header, nil)
		for _, sec := range s.sections {
			if err := w.record(sec.name, sec.enc, sec.payload); err != nil {
				t.Fatalf("Inspect accepted section %q, the writer refuses it: %v", sec.name, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), b) {
			t.Fatalf("not canonical:\n %x\n %x", b, buf.Bytes())
		}
		for _, si := range s.Sections() {
			if si.Encoding == JSON {
				var v any
				if err := s.Section(si.Name, &v); err != nil {
					t.Fatalf("accepted JSON section %q does not decode: %v", si.Name, err)
				}
			}
		}
	})
}
