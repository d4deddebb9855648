package initramfs

import (
	"fmt"
	"path"
	"strings"
)

// checkName enforces the names this package writes: paths relative to the
// root of the initramfs, in the form Linux's own usr/gen_init_cpio writes
// them ("bin/sh", not "/bin/sh" nor "./bin/sh"). The kernel unpacks each name
// relative to "/" in the order entries appear, so an entry's parent directory
// must come earlier in the archive or in an archive loaded before it; that
// is the caller's to arrange (see Writer).
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains a NUL byte", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("name %q is absolute; names are relative to the initramfs root (write %q)",
			name, strings.TrimLeft(name, "/"))
	case name == trailerName:
		return fmt.Errorf("name %q is reserved for the end-of-archive marker", name)
	case len(name)+1 > pathMax:
		return fmt.Errorf("name %.40q... is %d bytes; the kernel skips names longer than %d bytes with their NUL",
			name, len(name), pathMax)
	}
	clean := path.Clean(name)
	if clean != name || clean == "." {
		return fmt.Errorf("name %q is not a clean relative path (no \".\" or empty components, no trailing \"/\")", name)
	}
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("name %q climbs out of the initramfs root", name)
	}
	return nil
}
