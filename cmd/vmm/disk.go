package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/tracevisor/tracevisor/virtio/blk"
	"github.com/tracevisor/tracevisor/vmm"
)

// openDisks opens each --disk PATH[,ro] as a virtio-blk device; the guest
// sees them as /dev/vda, /dev/vdb, ... in order. An image may be given
// more than once only read-only: two writable views of one file would
// corrupt it. The returned close function closes the image files.
func openDisks(specs []string) ([]vmm.VirtioDevice, func(), error) {
	var devs []vmm.VirtioDevice
	var disks []*blk.Disk
	type opened struct {
		spec     string
		st       os.FileInfo
		readOnly bool
	}
	var seen []opened
	closeAll := func() {
		for _, d := range disks {
			d.Close()
		}
	}
	for i, spec := range specs {
		path, opts, _ := strings.Cut(spec, ",")
		readOnly := false
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				readOnly = true
			case "rw":
				readOnly = false
			default:
				closeAll()
				return nil, nil, fmt.Errorf("--disk %s: unknown option %q (want ro or rw)", spec, o)
			}
		}
		if path == "" {
			closeAll()
			return nil, nil, fmt.Errorf("--disk %q: no image path", spec)
		}
		d, err := blk.Open(path, readOnly)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		disks = append(disks, d)
		if st, err := os.Stat(path); err == nil {
			for _, o := range seen {
				if os.SameFile(o.st, st) && !(readOnly && o.readOnly) {
					closeAll()
					return nil, nil, fmt.Errorf("--disk %s: the image of --disk %s again; give one image twice only read-only (,ro)", spec, o.spec)
				}
			}
			seen = append(seen, opened{spec, st, readOnly})
		}
		devs = append(devs, vmm.VirtioDevice{Name: fmt.Sprintf("disk%d", i), Device: blk.NewDevice(d)})
	}
	return devs, closeAll, nil
}
