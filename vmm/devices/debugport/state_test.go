package debugport

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// The ignored-access count runs on across a restore, and the restored
// device works as the original: the magic reads, events and exit statuses
// are reported.
func TestStateRestore(t *testing.T) {
	orig := New(Callbacks{}, nil)
	orig.Write(0x20, le32(1))
	orig.Read(RegEvent, make([]byte, 4))
	orig.Write(RegExitStatus, []byte{1})
	st := orig.State()
	if st.IgnoredAccesses != 3 {
		t.Fatalf("State().IgnoredAccesses = %d, want 3", st.IgnoredAccesses)
	}

	var r recorder
	restored := New(r.callbacks(), nil)
	if err := restored.Restore(st); err != nil {
		t.Fatal(err)
	}
	if got := restored.IgnoredAccesses(); got != 3 {
		t.Errorf("IgnoredAccesses after Restore = %d, want 3", got)
	}
	restored.Write(RegMagic, le32(0)) // read-only: ignored
	if got := restored.IgnoredAccesses(); got != 4 {
		t.Errorf("IgnoredAccesses after one more = %d, want 4", got)
	}
	var b [regWidth]byte
	restored.Read(RegMagic, b[:])
	if binary.LittleEndian.Uint32(b[:]) != MagicValue {
		t.Errorf("restored magic = % x", b)
	}
	restored.Write(RegEvent, le32(uint32(EventCmdStart)))
	restored.Write(RegExitStatus, le32(7))
	if len(r.events) != 1 || r.events[0].ev != EventCmdStart || len(r.exits) != 1 || r.exits[0] != 7 {
		t.Errorf("restored device reported events %v, exits %v", r.events, r.exits)
	}
	if got := restored.State(); got.IgnoredAccesses != 4 {
		t.Errorf("State().IgnoredAccesses = %d, want 4", got.IgnoredAccesses)
	}
}

// A State survives the snapshot's JSON encoding unchanged, decoded with
// unknown fields refused as the snapshot reader does; a count beyond
// float64's exact range survives too.
func TestStateJSON(t *testing.T) {
	st := State{IgnoredAccesses: 1<<63 + 1}
	enc, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	if back != st {
		t.Errorf("JSON round trip gave %+v, want %+v", back, st)
	}
	if again, _ := json.Marshal(back); !bytes.Equal(again, enc) {
		t.Errorf("re-encoded %s, first %s", again, enc)
	}
}
