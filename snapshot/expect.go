package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Expect is what the restoring VMM requires of a snapshot: each field must
// equal what the snapshot recorded.
type Expect struct {
	// VMMVersion is this VMM's version.
	VMMVersion string
	// Profile is this host's profile.
	Profile string
	// Config is this run's configuration, compared by Fingerprint.
	Config any
}

// MismatchError is Read's refusal of a snapshot taken by another VMM
// version, on another host profile or with another configuration.
// errors.Is(err, ErrMismatch) holds for it.
type MismatchError struct {
	// Snapshot is what the snapshot recorded; Here is what Read expected.
	// Config is the configuration's SHA-256.
	Snapshot, Here struct{ VMMVersion, Profile, ConfigSHA256 string }
	// ConfigDiff lists the configuration fields that differ ("mem_mib: 256
	// in the snapshot, 512 here"), at most maxDiffs of them.
	ConfigDiff []string
}

// maxDiffs bounds MismatchError.ConfigDiff.
const maxDiffs = 8

// Is makes errors.Is(err, ErrMismatch) hold.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Error reads, e.g., "snapshot: refused: snapshot was taken by vmm v0.3.1
// on an emulated host; this is v0.3.2 on a hardware host".
func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot: refused: snapshot was taken by vmm %s on %s host", show(e.Snapshot.VMMVersion), article(e.Snapshot.Profile))
	cfg := e.Snapshot.ConfigSHA256 != e.Here.ConfigSHA256
	if cfg {
		fmt.Fprintf(&b, " with configuration sha256:%.12s", e.Snapshot.ConfigSHA256)
	}
	fmt.Fprintf(&b, "; this is %s on %s host", show(e.Here.VMMVersion), article(e.Here.Profile))
	if cfg {
		fmt.Fprintf(&b, " with configuration sha256:%.12s", e.Here.ConfigSHA256)
		if len(e.ConfigDiff) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(e.ConfigDiff, "; "))
		}
	}
	return b.String()
}

// check compares the snapshot's header with e.
func (e Expect) check(info Info) error {
	cfg, sum, err := Fingerprint(e.Config)
	if err != nil {
		return err
	}
	if info.VMMVersion == e.VMMVersion && info.Profile == e.Profile && info.ConfigSHA256 == sum {
		return nil
	}
	m := &MismatchError{}
	m.Snapshot.VMMVersion, m.Snapshot.Profile, m.Snapshot.ConfigSHA256 = info.VMMVersion, info.Profile, info.ConfigSHA256
	m.Here.VMMVersion, m.Here.Profile, m.Here.ConfigSHA256 = e.VMMVersion, e.Profile, sum
	if info.ConfigSHA256 != sum {
		m.ConfigDiff = configDiff(info.Config, cfg)
	}
	return m
}

// configDiff lists where two JSON documents differ, by dotted path.
func configDiff(snap, here []byte) []string {
	a, errA := decodeGeneric(snap)
	b, errB := decodeGeneric(here)
	if errA != nil || errB != nil {
		return nil
	}
	var out []string
	n := 0
	diffValues("", a, b, &out, &n)
	if n > len(out) {
		out = append(out, fmt.Sprintf("and %d more", n-len(out)))
	}
	return out
}

func decodeGeneric(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

// diffValues appends to out (up to maxDiffs) each path where a and b
// differ, counting all of them in n.
func diffValues(path string, a, b any, out *[]string, n *int) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if path != "" {
				p = path + "." + k
			}
			av, ain := am[k]
			bv, bin := bm[k]
			switch {
			case !ain:
				addDiff(out, n, fmt.Sprintf("%s: absent in the snapshot, %s here", show(p), brief(bv)))
			case !bin:
				addDiff(out, n, fmt.Sprintf("%s: %s in the snapshot, absent here", show(p), brief(av)))
			default:
				diffValues(p, av, bv, out, n)
			}
		}
		return
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		if path == "" {
			path = "configuration"
		}
		addDiff(out, n, fmt.Sprintf("%s: %s in the snapshot, %s here", show(path), brief(a), brief(b)))
	}
}

func addDiff(out *[]string, n *int, s string) {
	*n++
	if len(*out) < maxDiffs {
		*out = append(*out, s)
	}
}

// brief renders a JSON value for an error message, cut to 40 bytes.
func brief(v any) string {
	b, _ := json.Marshal(v)
	if r := []rune(string(b)); len(r) > 40 {
		return string(r[:37]) + "..."
	}
	return string(b)
}

// show prints a string the file controls: as is when it is plain printable
// text, quoted otherwise.
func show(s string) string {
	if s == "" || len(s) > 64 {
		return strconv.Quote(truncate(s, 64))
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' {
			return strconv.Quote(s)
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// article prefixes a profile with "a" or "an".
func article(profile string) string {
	if profile != "" && strings.ContainsRune("aeiouAEIOU", rune(profile[0])) {
		return "an " + show(profile)
	}
	return "a " + show(profile)
}
