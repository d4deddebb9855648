package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchVirtio measures virtio-blk, then virtio-net (benchNet, netMiB each
// way). For virtio-blk the guest reads a blkMiB image from /dev/vda with dd,
// timed by its own /proc/uptime; the host reads the same file (from its page
// cache) in the same run. Both are printed with their ratio.
func benchVirtio(blkMiB, netMiB int) error {
	if err := benchBlk(blkMiB); err != nil {
		return err
	}
	return benchNet(netMiB)
}

func benchBlk(sizeMiB int) error {
	dir, err := os.MkdirTemp("", "bench-virtio")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "bench.img")
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, int64(sizeMiB)<<20); err != nil {
		f.Close()
		return err
	}
	f.Close()

	host, err := hostReadMiBps(img)
	if err != nil {
		return err
	}
	script := "read a b < /proc/uptime; dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null; read c d < /proc/uptime; echo BENCH $a $c"
	var out bytes.Buffer
	cmd := exec.Command(vmmBinary(), "run", "--disk", img+",ro", "--", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("guest run: %v\n%s", err, out.String())
	}
	secs, err := benchSeconds(out.String())
	if err != nil {
		return err
	}
	guest := float64(sizeMiB) / secs
	fmt.Printf("virtio-blk sequential read, %d MiB image, 1 MiB requests\n", sizeMiB)
	fmt.Printf("  guest  %8.1f MiB/s  (%.2f s, guest clock)\n", guest, secs)
	fmt.Printf("  host   %8.1f MiB/s  (same file, page cache)\n", host)
	fmt.Printf("  ratio  %8.4f  guest/host\n", guest/host)
	return nil
}

// hostReadMiBps reads path twice (the first read warms the page cache) and
// returns the second read's throughput.
func hostReadMiBps(path string) (float64, error) {
	var secs float64
	var n int64
	for i := 0; i < 2; i++ {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		n, err = io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
		secs = time.Since(start).Seconds()
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / (1 << 20) / secs, nil
}

// benchSeconds parses the guest's "BENCH start end" uptime line.
func benchSeconds(out string) (float64, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "BENCH" {
			a, err1 := strconv.ParseFloat(f[1], 64)
			b, err2 := strconv.ParseFloat(f[2], 64)
			if err1 != nil || err2 != nil || b <= a {
				return 0, fmt.Errorf("bad timing line %q", line)
			}
			return b - a, nil
		}
	}
	return 0, fmt.Errorf("the guest printed no timing line:\n%s", out)
}
