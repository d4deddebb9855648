package vmm

import (
	"os"
	"strings"
	"testing"
)

const sampleMap = `ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81001000 t helper
ffffffff81002000 D some_data
ffffffff81003000 T entry_SYSCALL_64
`

func TestSymbols(t *testing.T) {
	s, err := ParseSystemMap(strings.NewReader(sampleMap))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{
		0xffffffff81001010: "helper+0x10",
		0xffffffff81002500: "helper+0x1500", // data symbols are skipped
		0xffffffff81003000: "entry_SYSCALL_64+0x0",
		0xffffffff80000000: "",
	} {
		if got := s.Lookup(addr); got != want {
			t.Errorf("Lookup(%#x) = %q, want %q", addr, got, want)
		}
	}
	if a, ok := s.Address("entry_SYSCALL_64"); !ok || a != 0xffffffff81003000 {
		t.Errorf("Address = %#x, %v", a, ok)
	}
	var nilSyms *Symbols
	if nilSyms.Lookup(1) != "" {
		t.Error("nil Symbols names an address")
	}
	if _, err := ParseSystemMap(strings.NewReader("zzzz T bad\n")); err == nil {
		t.Error("bad address accepted")
	}
}

func TestConsoleTapFindsPanic(t *testing.T) {
	var out strings.Builder
	tap := &consoleTap{w: &out}
	tap.Write([]byte("[    1.0] booting\r\n[    2.0] Kernel panic - not sync"))
	if _, ok := tap.panicked(); ok {
		t.Fatal("panic reported before its marker was complete")
	}
	tap.Write([]byte("ing: Attempted to kill init! exitcode=0x00000100\r\n[ 2.1] more\n"))
	msg, ok := tap.panicked()
	if !ok || msg != "Attempted to kill init! exitcode=0x00000100" {
		t.Fatalf("panicked() = %q, %v", msg, ok)
	}
	if !strings.Contains(out.String(), "booting") || !strings.Contains(out.String(), "more") {
		t.Error("console output not passed through")
	}
}

func TestLazySystemMapLoadsOnFirstUse(t *testing.T) {
	path := t.TempDir() + "/System.map"
	s := LazySystemMap(path)
	if err := os.WriteFile(path, []byte(sampleMap), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.Lookup(0xffffffff81001004); got != "helper+0x4" {
		t.Errorf("Lookup = %q after the file appeared", got)
	}
	if LazySystemMap(path+".missing").Lookup(0xffffffff81001004) != "" {
		t.Error("a missing System.map names an address")
	}
}
