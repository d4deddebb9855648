package net

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TAP is a Backend on a Linux TAP interface (IFF_TAP|IFF_NO_PI): every
// read and write is one Ethernet frame. Creating one needs CAP_NET_ADMIN
// (or a persistent tap owned by the user). The interface is created down
// and without addresses; the host configures it (ip link set NAME up, add
// it to a bridge or give it an address). Closing the TAP deletes the
// interface unless it was made persistent outside.
type TAP struct {
	f    *os.File
	name string
}

// OpenTAP opens (creating if needed) the tap interface name; an empty name
// lets the kernel choose one (tapN), see Name.
func OpenTAP(name string) (*TAP, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("virtio-net: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("virtio-net: tap name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("virtio-net: TUNSETIFF %q: %w", name, err)
	}
	// A non-blocking fd goes to the runtime poller, so Close unblocks Recv.
	return &TAP{f: os.NewFile(uintptr(fd), "/dev/net/tun"), name: ifr.Name()}, nil
}

// Name returns the interface name.
func (t *TAP) Name() string { return t.name }

// Renamed records that the interface now has another name (the caller
// renamed it, e.g. by netlink).
func (t *TAP) Renamed(name string) { t.name = name }

// Send implements Backend.
func (t *TAP) Send(frame []byte) error {
	_, err := t.f.Write(frame)
	return err
}

// Recv implements Backend. The kernel truncates a frame longer than buf;
// with a MaxFrameLen buffer that cannot happen for MTUs up to 64 KiB.
func (t *TAP) Recv(buf []byte) (int, error) { return t.f.Read(buf) }

// Close implements Backend.
func (t *TAP) Close() error { return t.f.Close() }
