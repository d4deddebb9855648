package snapshot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestMismatch: a snapshot from another VMM version, host profile or
// configuration is refused with ErrMismatch, a *MismatchError holding both
// sides and a message naming them (and the configuration fields that
// differ); the matching expectation is accepted.
func TestMismatch(t *testing.T) {
	file := validFile(t)
	other := cfg
	other.MemMiB = 512
	other.Disks = nil
	cases := []struct {
		name string
		e    Expect
		msg  string
	}{
		{"vmm version and profile", Expect{VMMVersion: "v0.3.2", Profile: "hardware", Config: cfg},
			"snapshot: refused: snapshot was taken by vmm v0.3.1 on an emulated host; this is v0.3.2 on a hardware host"},
		{"vmm version", Expect{VMMVersion: "v0.3.2", Profile: "emulated", Config: cfg},
			"snapshot was taken by vmm v0.3.1 on an emulated host; this is v0.3.2 on an emulated host"},
		{"profile", Expect{VMMVersion: "v0.3.1", Profile: "hardware", Config: cfg},
			"on an emulated host; this is v0.3.1 on a hardware host"},
		{"config", Expect{VMMVersion: "v0.3.1", Profile: "emulated", Config: other},
			`disks: ["root.ext2"] in the snapshot, absent here; mem_mib: 256 in the snapshot, 512 here`},
		{"no config", Expect{VMMVersion: "v0.3.1", Profile: "emulated"},
			`configuration: {"cpus":2,"disks":["root.ext2"],"kern... in the snapshot, null here`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Read(bytes.NewReader(file), c.e)
			if !errors.Is(err, ErrMismatch) || s != nil {
				t.Fatalf("Read = %v, %v; want ErrMismatch", s, err)
			}
			var m *MismatchError
			if !errors.As(err, &m) || m.Snapshot.VMMVersion != "v0.3.1" || m.Here.VMMVersion != c.e.VMMVersion ||
				m.Snapshot.Profile != "emulated" || m.Here.Profile != c.e.Profile {
				t.Fatalf("mismatch %+v", m)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error\n %s\ndoes not say\n %s", err, c.msg)
			}
		})
	}
	if _, err := Read(bytes.NewReader(file), testExpect); err != nil {
		t.Fatalf("matching expectation: %v", err)
	}
}

// TestFingerprintCanonical: the fingerprint depends on the configuration's
// content, not on struct field order, map iteration or Go type; and any
// change of a value changes it.
func TestFingerprintCanonical(t *testing.T) {
	type a struct {
		X int    `json:"x"`
		Y string `json:"y"`
		M map[string]int
	}
	type b struct {
		M map[string]int
		Y string `json:"y"`
		X int    `json:"x"`
	}
	m := map[string]int{"q": 1, "p": 2, "z": 3}
	ca, sa, err := Fingerprint(a{1, "<&>", m})
	if err != nil {
		t.Fatal(err)
	}
	cb, sb, _ := Fingerprint(b{m, "<&>", 1})
	cm, sm, _ := Fingerprint(map[string]any{"y": "<&>", "x": 1, "M": map[string]int{"z": 3, "q": 1, "p": 2}})
	if sa != sb || sa != sm || string(ca) != string(cb) || string(ca) != string(cm) {
		t.Fatalf("fingerprints differ:\n %s %s\n %s %s\n %s %s", ca, sa, cb, sb, cm, sm)
	}
	if want := `{"M":{"p":2,"q":1,"z":3},"x":1,"y":"<&>"}`; string(ca) != want {
		t.Errorf("canonical %s, want %s", ca, want)
	}
	if _, s2, _ := Fingerprint(a{2, "<&>", m}); s2 == sa {
		t.Errorf("a changed value kept the fingerprint %s", sa)
	}
	if _, _, err := Fingerprint(func() {}); !errors.Is(err, ErrFormat) {
		t.Errorf("unencodable config: %v", err)
	}
}

// TestShowQuotesHostileStrings: version and profile strings come from the
// file; control characters and spaces are quoted in messages, not printed.
func TestShowQuotesHostileStrings(t *testing.T) {
	m := &MismatchError{}
	m.Snapshot.VMMVersion, m.Snapshot.Profile = "v1\x1b[2J", "evil host"
	m.Here.VMMVersion, m.Here.Profile = "v2", "hardware"
	got := m.Error()
	if strings.ContainsRune(got, '\x1b') || !strings.Contains(got, `"v1\x1b[2J"`) || !strings.Contains(got, `an "evil host" host`) {
		t.Errorf("message %q", got)
	}
}
