package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/tracevisor/tracevisor/virtio/mmio"
	vnet "github.com/tracevisor/tracevisor/virtio/net"
	"github.com/tracevisor/tracevisor/vmm"
)

// switchDir is where --net switch:NAME sockets live: $TRACEVISOR_SWITCH_DIR,
// or the temporary directory.
func switchDir() string {
	if d := os.Getenv("TRACEVISOR_SWITCH_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// openNICs opens each --net BACKEND:NAME[,mac=MAC] as a virtio-net device:
//
//	tap:NAME     a host TAP interface (created if missing; needs root)
//	switch:NAME  a virtual switch shared by every vmm on this host that
//	             names it: the first listens on a unix socket and runs the
//	             switch, later ones connect to it
//
// Each backend is behind a fenceGate (attach it to the machine): a fenced
// guest sends and receives nothing. The returned function closes the
// devices and backends.
//
// saved holds, for a restore, the MAC each NIC had in the snapshot (by
// index): a NIC without mac= takes it, and one with another is refused, as
// the restored guest's driver keeps the address it read at boot.
func openNICs(specs []string, saved map[int][6]byte) ([]vmm.VirtioDevice, []*fenceGate, func(), error) {
	var devs []vmm.VirtioDevice
	var gates []*fenceGate
	var closers []io.Closer
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
	}
	for i, spec := range specs {
		kind, rest, _ := strings.Cut(spec, ":")
		name, opts, _ := strings.Cut(rest, ",")
		mac := vnet.RandomMAC()
		had, restoring := saved[i]
		if restoring {
			mac = had
		}
		for _, o := range strings.Split(opts, ",") {
			switch k, v, _ := strings.Cut(o, "="); {
			case o == "":
			case k == "mac":
				m, err := parseMAC(v)
				if err == nil && restoring && m != had {
					err = fmt.Errorf("the snapshot's guest has MAC %s on this NIC and keeps it (its driver cannot be told another): give mac=%s or no mac=",
						formatMAC(had), formatMAC(had))
				}
				if err != nil {
					closeAll()
					return nil, nil, nil, fmt.Errorf("--net %s: %w", spec, err)
				}
				mac = m
			default:
				closeAll()
				return nil, nil, nil, fmt.Errorf("--net %s: unknown option %q (want mac=XX:XX:XX:XX:XX:XX)", spec, o)
			}
		}
		if name == "" || strings.ContainsAny(name, "/ ") {
			closeAll()
			return nil, nil, nil, fmt.Errorf("--net %q: want tap:NAME or switch:NAME", spec)
		}
		var be vnet.Backend
		var err error
		switch kind {
		case "tap":
			be, err = openTAP(name, mac)
		case "switch":
			be, err = joinSwitch(name, &closers)
		default:
			err = fmt.Errorf("unknown backend %q (want tap or switch)", kind)
		}
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("--net %s: %w", spec, err)
		}
		gate := newFenceGate(be)
		dev := vnet.New(mac, gate)
		if restoring {
			// Paused from the start: frames that arrive before the
			// restore gives it its queues wait for them (the restore
			// resumes it with the machine).
			dev.Pause()
		}
		closers = append(closers, dev) // closes be too
		gates = append(gates, gate)
		devs = append(devs, vmm.VirtioDevice{Name: fmt.Sprintf("net%d", i), Device: dev})
	}
	return devs, gates, closeAll, nil
}

// openTAP opens tap interface name for a NIC whose guest MAC is mac. A tap
// that vmm creates gets the host-side MAC hostMAC(mac): the same on every
// boot and restore of that guest, so a restored guest's neighbour entry
// for the host (it points at the snapshot's tap) stays right. The tap is
// made under a temporary name, given its MAC and only then renamed to
// name, so whoever waits for name to appear (and talks on it at once)
// never sees the kernel's random MAC. A tap that was there before keeps
// its own.
func openTAP(name string, mac [6]byte) (*vnet.TAP, error) {
	_, err := netlink.LinkByName(name)
	var missing netlink.LinkNotFoundError
	if name == "" || !errors.As(err, &missing) {
		return vnet.OpenTAP(name) // there already, the kernel's choice, or netlink cannot tell: as it comes
	}
	var r [3]byte
	rand.Read(r[:])
	tmp := fmt.Sprintf("tvtmp%x", r)
	t, err := vnet.OpenTAP(tmp)
	if err != nil {
		return nil, err
	}
	h := hostMAC(mac)
	link, err := netlink.LinkByName(tmp)
	if err == nil {
		err = netlink.LinkSetHardwareAddr(link, h[:])
	}
	if err == nil {
		err = netlink.LinkSetName(link, name)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("tap %s: give it its MAC and name: %w", name, err)
	}
	t.Renamed(name)
	return t, nil
}

// hostMAC is the host side's MAC for the tap of a guest with MAC guest:
// fe: and the guest's last five bytes (locally administered, unicast), or
// fa: and those where the guest's begins with fe.
func hostMAC(guest [6]byte) [6]byte {
	h := guest
	h[0] = 0xfe
	if h == guest {
		h[0] = 0xfa
	}
	return h
}

// joinSwitch returns a backend on the switch called name: a connection to
// the vmm that runs it, or, when none does, a port of a switch this process
// starts and serves on the socket.
func joinSwitch(name string, closers *[]io.Closer) (vnet.Backend, error) {
	path := filepath.Join(switchDir(), "tracevisor-switch-"+name+".sock")
	if s, err := vnet.Dial(path); err == nil {
		return s, nil
	}
	os.Remove(path) // a socket left by a vmm that is gone
	l, err := vnet.Listen(path)
	if err != nil {
		return nil, err
	}
	sw := vnet.NewSwitch()
	*closers = append(*closers, l, removeFile(path))
	go func() {
		for {
			s, err := l.Accept()
			if err != nil {
				return
			}
			sw.Attach(s)
		}
	}()
	return sw.Port(), nil
}

type removeFile string

func (r removeFile) Close() error { return os.Remove(string(r)) }

// snapshotMACs returns the MAC of each of the n NICs (net0, net1, ...)
// that the snapshot at dir holds; one it cannot read is left out (the
// restore then refuses the snapshot, saying why).
func snapshotMACs(dir string, n int) map[int][6]byte {
	macs := map[int][6]byte{}
	for i := 0; i < n; i++ {
		st, err := vmm.SavedVirtioState(dir, fmt.Sprintf("net%d", i))
		if err != nil {
			continue
		}
		var ns vnet.State
		if mmio.DecodeState(st.Device, &ns) == nil {
			macs[i] = ns.MAC
		}
	}
	return macs
}

func formatMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, errors.New("bad MAC address " + s)
	}
	for i, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return m, errors.New("bad MAC address " + s)
		}
		m[i] = byte(b)
	}
	if m[0]&1 != 0 || m == [6]byte{} {
		return m, fmt.Errorf("MAC address %s: a NIC needs a unicast address (first byte even, not all zero), e.g. 52:54:00:12:34:56", s)
	}
	return m, nil
}
