package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// binarySpec describes, for error messages, a program the archive needs.
type binarySpec struct {
	what        string // its name: "busybox"
	flag        string // the option that chooses it
	missingHint string // how to get it
	staticHint  string // how to get a statically linked one
}

// Programs the base initramfs holds.
var (
	busyboxSpec = binarySpec{
		what:        "busybox",
		flag:        "--busybox",
		missingHint: "install Debian's busybox-static (apt-get install busybox-static)",
		staticHint:  "install Debian's busybox-static, whose busybox is static",
	}
	initSpec = binarySpec{
		what:        "init",
		flag:        "--init",
		missingHint: "build it with 'make build/init'",
		staticHint:  "compile it with -static, as 'make build/init' does",
	}
)

// checkStaticExecutable makes sure path is a regular, statically linked
// x86-64 ELF executable: the guest has no dynamic loader nor shared
// libraries. spec names the program in errors.
func checkStaticExecutable(path string, spec binarySpec) error {
	what := spec.what
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s binary %s does not exist: %s, or choose another with %s", what, path, spec.missingHint, spec.flag)
	}
	if err != nil {
		return fmt.Errorf("%s binary: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s binary %s is not a regular file (mode %v)", what, path, fi.Mode())
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s binary %s is not an ELF executable: %w", what, path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s binary %s is an ELF %v, not an executable", what, path, f.Type)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s binary %s is built for %v; the guest runs x86-64", what, path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s binary %s is dynamically linked (it names an ELF interpreter), "+
				"but the guest has no shared libraries: %s", what, path, spec.staticHint)
		}
	}
	return nil
}
