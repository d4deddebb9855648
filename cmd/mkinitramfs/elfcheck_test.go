package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimalELF returns a tiny x86-64 ELF executable: its header and one
// program header, PT_INTERP naming a loader when dynamic, PT_LOAD otherwise.
func minimalELF(dynamic bool) []byte {
	const ehdrSize, phdrSize = 64, 56
	interp := "/lib64/ld-linux-x86-64.so.2\x00"
	b := make([]byte, ehdrSize+phdrSize, ehdrSize+phdrSize+len(interp))
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 62)   // EM_X86_64
	le.PutUint32(b[20:], 1)    // EV_CURRENT
	le.PutUint64(b[24:], 0x401000)
	le.PutUint64(b[32:], ehdrSize) // program headers follow the header
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], 1)
	ph := b[ehdrSize:]
	if dynamic {
		le.PutUint32(ph[0:], 3) // PT_INTERP
		le.PutUint32(ph[4:], 4) // PF_R
		le.PutUint64(ph[8:], ehdrSize+phdrSize)
		le.PutUint64(ph[32:], uint64(len(interp)))
		le.PutUint64(ph[40:], uint64(len(interp)))
		b = append(b, interp...)
	} else {
		le.PutUint32(ph[0:], 1) // PT_LOAD
		le.PutUint32(ph[4:], 5) // PF_R|PF_X
		le.PutUint64(ph[16:], 0x400000)
	}
	return b
}

func TestCheckStaticExecutable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	static := write("static", minimalELF(false))
	if err := checkStaticExecutable(static, initSpec); err != nil {
		t.Errorf("static ELF: %v", err)
	}

	object := minimalELF(false)
	binary.LittleEndian.PutUint16(object[16:], 1) // ET_REL
	arm := minimalELF(false)
	binary.LittleEndian.PutUint16(arm[18:], 183) // EM_AARCH64
	cases := map[string]string{
		write("dynamic", minimalELF(true)): "dynamically linked (it names an ELF interpreter), but the guest has no shared libraries: compile it with -static",
		write("object", object):            "not an executable",
		write("arm", arm):                  "guest runs x86-64",
		write("empty", nil):                "not an ELF executable",
	}
	for p, want := range cases {
		err := checkStaticExecutable(p, initSpec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", filepath.Base(p), err, want)
		}
	}
}
