package vmm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeRoot(t *testing.T, modules []string, cpuinfo string) string {
	root := t.TempDir()
	for _, m := range modules {
		if err := os.MkdirAll(filepath.Join(root, "sys/module", m), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "proc/cpuinfo"), []byte(cpuinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestDetectProfile(t *testing.T) {
	cases := []struct {
		name    string
		modules []string
		flags   string
		want    Profile
	}{
		{"pvm", []string{"kvm", "kvm_pvm"}, "flags : fpu hypervisor", ProfileEmulated},
		{"pvm wins over vmx flag", []string{"kvm_pvm"}, "flags : fpu vmx", ProfileEmulated},
		{"intel", []string{"kvm", "kvm_intel"}, "flags : fpu vmx", ProfileHardware},
		{"amd", []string{"kvm_amd"}, "flags : fpu svm", ProfileHardware},
		{"flag only", nil, "processor : 0\nflags : fpu svm lm", ProfileHardware},
		{"nothing", nil, "flags : fpu hypervisor", ProfileEmulated},
	}
	for _, c := range cases {
		p, why := DetectProfile(fakeRoot(t, c.modules, c.flags))
		if p != c.want || why == "" {
			t.Errorf("%s: %v (%q), want %v", c.name, p, why, c.want)
		}
	}
}

func TestParseProfile(t *testing.T) {
	for s, want := range map[string]Profile{"auto": 0, "hardware": ProfileHardware, "emulated": ProfileEmulated} {
		if p, err := ParseProfile(s); err != nil || p != want {
			t.Errorf("ParseProfile(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProfile("pvm"); err == nil {
		t.Error("ParseProfile accepted an unknown name")
	}
}

func TestKernelCmdlineByProfile(t *testing.T) {
	hw := KernelCmdline(ProfileHardware, 0x1007efb, "ttyS0", "  init=/x ")
	em := KernelCmdline(ProfileEmulated, 0x1007efb, "hvc0", "")
	if strings.Contains(hw, "syscall_fixup") || strings.Contains(hw, "clearcpuid") || strings.Contains(hw, "kvm_features") {
		t.Errorf("hardware profile adds emulation workarounds: %q", hw)
	}
	if !strings.HasSuffix(hw, " init=/x") || !strings.HasPrefix(hw, "console=ttyS0") {
		t.Errorf("hardware cmdline %q: want base params first, user text last", hw)
	}
	// 0x1007efb less PV_SEND_IPI (bit 11).
	for _, want := range []string{"console=hvc0", "noxsave", "tracevisor.syscall_fixup", "clearcpuid=141,", "tracevisor.kvm_features=0x10076fb"} {
		if !strings.Contains(em, want) {
			t.Errorf("emulated cmdline %q lacks %q", em, want)
		}
	}
}
