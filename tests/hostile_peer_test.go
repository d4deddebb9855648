package tests

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"

	vnet "github.com/tracevisor/tracevisor/virtio/net"
)

// switchPeer is the far end of a guest's `--net switch:NAME`: the test
// listens on the switch's socket before the vmm starts, so the vmm joins it
// as a client. It answers ARP and ICMP echo for its IP address and counts
// what the guest sent.
type switchPeer struct {
	ip  [4]byte
	mac [6]byte
	l   *vnet.Listener

	mu      sync.Mutex
	frames  int
	maxLen  int
	marked  map[string]int // frames whose payload holds a "HOSTILE ..." marker, by marker
	echoes  int            // ICMP echo requests answered
	streams []*vnet.Stream
}

// newSwitchPeer listens as switch name in dir (TRACEVISOR_SWITCH_DIR).
func newSwitchPeer(t *testing.T, dir, name string, ip [4]byte) *switchPeer {
	t.Helper()
	l, err := vnet.Listen(filepath.Join(dir, "tracevisor-switch-"+name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	p := &switchPeer{ip: ip, mac: [6]byte{0x52, 0x54, 0x00, 0x70, 0x65, 0x72}, l: l, marked: map[string]int{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *switchPeer) accept() {
	for {
		s, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.streams = append(p.streams, s)
		p.mu.Unlock()
		go p.serve(s)
	}
}

func (p *switchPeer) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.streams {
		s.Close()
	}
}

// stats returns what the peer saw so far.
func (p *switchPeer) stats() (frames, maxLen, echoes int, marked map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for k, v := range p.marked {
		m[k] = v
	}
	return p.frames, p.maxLen, p.echoes, m
}

func (p *switchPeer) serve(s *vnet.Stream) {
	buf := make([]byte, vnet.MaxFrameLen)
	for {
		n, err := s.Recv(buf)
		if err != nil {
			return
		}
		f := buf[:n]
		p.mu.Lock()
		p.frames++
		p.maxLen = max(p.maxLen, n)
		if i := bytes.Index(f, []byte("HOSTILE ")); i >= 0 {
			m := f[i:]
			if j := bytes.IndexByte(m, 0); j >= 0 {
				m = m[:j]
			}
			p.marked[string(m)]++
		}
		p.mu.Unlock()
		if reply := p.answer(f); reply != nil {
			s.Send(reply)
		}
	}
}

// answer returns the ARP reply or ICMP echo reply to frame f, or nil.
func (p *switchPeer) answer(f []byte) []byte {
	if len(f) < 14 {
		return nil
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0806: // ARP request for our IP
		a := f[14:]
		if len(a) < 28 || binary.BigEndian.Uint16(a[6:]) != 1 || !bytes.Equal(a[24:28], p.ip[:]) {
			return nil
		}
		r := make([]byte, 14+28)
		copy(r[0:], a[8:14])
		copy(r[6:], p.mac[:])
		binary.BigEndian.PutUint16(r[12:], 0x0806)
		copy(r[14:], a[:6]) // htype, ptype, hlen, plen
		binary.BigEndian.PutUint16(r[20:], 2)
		copy(r[22:], p.mac[:])
		copy(r[28:], p.ip[:])
		copy(r[32:], a[8:18]) // sender MAC and IP become the target
		return r
	case 0x0800: // IPv4 ICMP echo request to our IP
		ip := f[14:]
		if len(ip) < 20 || ip[9] != 1 || !bytes.Equal(ip[16:20], p.ip[:]) {
			return nil
		}
		hl := int(ip[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || total > len(ip) || total < hl+8 || ip[hl] != 8 {
			return nil
		}
		r := append([]byte(nil), f[:14+total]...)
		copy(r[0:6], f[6:12])
		copy(r[6:12], p.mac[:])
		rip := r[14:]
		copy(rip[12:16], ip[16:20])
		copy(rip[16:20], ip[12:16])
		rip[10], rip[11] = 0, 0
		binary.BigEndian.PutUint16(rip[10:], checksum(rip[:hl]))
		icmp := rip[hl:total]
		icmp[0] = 0 // echo reply
		icmp[2], icmp[3] = 0, 0
		binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
		p.mu.Lock()
		p.echoes++
		p.mu.Unlock()
		return r
	}
	return nil
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
