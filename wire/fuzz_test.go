package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts marshals back
// to bytes that decode to the same message (and marshal to the same bytes).
// Seeds: testdata/fuzz/FuzzDecode and every sample message.
func FuzzDecode(f *testing.F) {
	for _, m := range cSamples {
		f.Add(mustMarshal(f, m))
	}
	for _, m := range goOnlySamples {
		f.Add(mustMarshal(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %#v with error %v", m, err)
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("Decode accepted %#v, MarshalBinary refuses it: %v", m, err)
		}
		if int(le.Uint16(b[offHdrLen:])) != len(out) {
			t.Fatalf("decoded a %d-byte message, marshaled %d", le.Uint16(b[offHdrLen:]), len(out))
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", out, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decode differs:\n %#v\n %#v", m, m2)
		}
		if out2, _ := m2.MarshalBinary(); !bytes.Equal(out, out2) {
			t.Fatalf("marshal not canonical:\n %x\n %x", out, out2)
		}
	})
}
