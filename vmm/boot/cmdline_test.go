package boot

import (
	"strings"
	"testing"
)

func TestCheckCmdline(t *testing.T) {
	if err := checkCmdline(strings.Repeat("x", CmdlineMaxSize-1), CmdlineMaxSize); err != nil {
		t.Errorf("2047 bytes: %v", err)
	}
	wantErr(t, checkCmdline(strings.Repeat("x", CmdlineMaxSize), CmdlineMaxSize), ErrCmdlineTooLong, "2048 bytes, at most 2047")
	wantErr(t, checkCmdline("root=/dev/vda\x00init=/bin/sh", CmdlineMaxSize), ErrCmdlineNUL)
}

func TestWriteCmdline(t *testing.T) {
	mem := newMem(16<<20, 0xaa)
	if err := writeCmdline(mem, "quiet"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, mem, CmdlineAddr, 7); string(got) != "quiet\x00\xaa" {
		t.Errorf("command line area %q", got)
	}
}
