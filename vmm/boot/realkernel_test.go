package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

// guestKernelDir is where the project's guest kernel build puts its
// output: guest-kernel/ in $TRACEVISOR_BUILD (the Makefile exports it, as
// tests/ reads it), else in the tree's build/.
func guestKernelDir() string {
	build := os.Getenv("TRACEVISOR_BUILD")
	if build == "" {
		build = filepath.Join("..", "..", "build")
	}
	return filepath.Join(build, "guest-kernel")
}

// readGuestKernel returns the named file of the guest kernel build, skipping
// the test when it has not been built.
func readGuestKernel(t *testing.T, name string) []byte {
	t.Helper()
	path := filepath.Join(guestKernelDir(), name)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		testenv.Missing(t, testenv.Build, "%s not built (make guest-kernel writes it)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRealVmlinux(t *testing.T) {
	kernel := readGuestKernel(t, "vmlinux")
	v, err := parseVmlinux(kernel)
	if err != nil {
		t.Fatal(err)
	}
	if !v.loaded(v.pvhEntry) {
		t.Fatalf("PVH entry %#x outside every PT_LOAD", v.pvhEntry)
	}
	t.Logf("PVH entry %#x, kernel [%#x, %#x)", v.pvhEntry, v.loads[0].paddr, v.end())

	mem := newMem(128<<20, 0xaa)
	cpu, err := Load(mem, kernel, Config{Cmdline: "console=ttyS0", Initrd: []byte("070701"), CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cpu.RIP != v.pvhEntry {
		t.Errorf("RIP %#x, want %#x", cpu.RIP, v.pvhEntry)
	}
	s := v.loads[0]
	if got := read(t, mem, s.paddr, uint64(len(s.data))); !bytes.Equal(got, s.data) {
		t.Error("first segment not loaded")
	}
}

func TestRealBzImage(t *testing.T) {
	kernel := readGuestKernel(t, "bzImage")
	b, err := parseBzImage(kernel)
	if err != nil {
		t.Fatal(err)
	}
	h := b.hdr
	t.Logf("boot protocol %d.%02d, setup_sects %d, relocatable %d, pref_address %#x, init_size %#x, kernel_alignment %#x, initrd_addr_max %#x, cmdline_size %d, xloadflags %#x",
		h.Version>>8, h.Version&0xff, h.SetupSects, h.RelocatableKernel, h.PrefAddress, h.InitSize, h.KernelAlignment, h.InitrdAddrMax, h.CmdlineSize, h.Xloadflags)

	mem := newMem(128<<20, 0xaa)
	cpu, err := Load(mem, kernel, Config{Cmdline: "console=ttyS0", Initrd: []byte("070701"), CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	load := b.loadAddr()
	if cpu.RIP != load+entry64Offset {
		t.Errorf("RIP %#x, want %#x", cpu.RIP, load+entry64Offset)
	}
	if got := read(t, mem, load, 64); !bytes.Equal(got, b.payload[:64]) {
		t.Error("protected-mode kernel not loaded")
	}
	if got := read(t, mem, ZeroPageAddr+headerMagicOffset, 4); string(got) != headerMagic {
		t.Errorf("boot_params header magic %q", got)
	}
}

func TestGuestKernelDirHonoursTracevisorBuild(t *testing.T) {
	t.Setenv("TRACEVISOR_BUILD", "/elsewhere/build")
	if got, want := guestKernelDir(), filepath.Join("/elsewhere/build", "guest-kernel"); got != want {
		t.Errorf("with TRACEVISOR_BUILD set: %s, want %s", got, want)
	}
	t.Setenv("TRACEVISOR_BUILD", "")
	if got, want := guestKernelDir(), filepath.Join("..", "..", "build", "guest-kernel"); got != want {
		t.Errorf("without TRACEVISOR_BUILD: %s, want %s", got, want)
	}
}
