package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

// recvTimeout returns the next frame on b, or nil after d.
func recvTimeout(t *testing.T, b Backend, d time.Duration) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		buf := make([]byte, MaxFrameLen)
		n, err := b.Recv(buf)
		if err != nil {
			ch <- nil
			return
		}
		ch <- buf[:n]
	}()
	select {
	case f := <-ch:
		return f
	case <-time.After(d):
		return nil
	}
}

// empty reports that p has nothing queued (switch delivery is synchronous).
func empty(p *Port) bool { return len(p.in) == 0 }

func TestSwitchFloodAndLearn(t *testing.T) {
	sw := NewSwitch()
	a, b, c := sw.Port(), sw.Port(), sw.Port()
	// Broadcast from A floods to B and C.
	f := frame(bcast, macA, "who has")
	a.Send(f)
	for _, p := range []*Port{b, c} {
		if got := recvTimeout(t, p, time.Second); !bytes.Equal(got, f) {
			t.Fatalf("flood: got %q", got)
		}
	}
	if !empty(a) {
		t.Error("frame echoed to its sender")
	}
	// B answers A: A's MAC was learned, so only A gets it.
	f = frame(macA, macB, "is at")
	b.Send(f)
	if got := recvTimeout(t, a, time.Second); !bytes.Equal(got, f) {
		t.Fatalf("unicast: got %q", got)
	}
	if !empty(c) {
		t.Error("known unicast flooded to C")
	}
	// Unknown unicast floods.
	f = frame(macC, macA, "hello C")
	a.Send(f)
	if !(len(b.in) == 1 && len(c.in) == 1) {
		t.Errorf("unknown unicast not flooded: b %d c %d", len(b.in), len(c.in))
	}
	recvTimeout(t, b, time.Second)
	recvTimeout(t, c, time.Second)
	// Multicast floods even if someone learned... (group bit set).
	mc := [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}
	a.Send(frame(mc, macA, "mc"))
	if len(b.in) != 1 || len(c.in) != 1 {
		t.Error("multicast not flooded")
	}
	recvTimeout(t, b, time.Second)
	recvTimeout(t, c, time.Second)
	// A moves to port C: the entry follows.
	c.Send(frame(bcast, macA, "moved"))
	recvTimeout(t, a, time.Second)
	recvTimeout(t, b, time.Second)
	b.Send(frame(macA, macB, "to A"))
	if len(c.in) != 1 || len(a.in) != 0 {
		t.Errorf("after move: a %d c %d", len(a.in), len(c.in))
	}
	recvTimeout(t, c, time.Second)
	// Closing C forgets A: unicast to A floods again (to A's old port).
	c.Close()
	b.Send(frame(macA, macB, "to A again"))
	if len(a.in) != 1 {
		t.Error("not flooded after the learned port closed")
	}
	if err := c.Send(f); !errors.Is(err, ErrClosed) {
		t.Errorf("Send on closed port: %v", err)
	}
	if _, err := c.Recv(make([]byte, 100)); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv on closed port: %v", err)
	}
	// Runts are ignored.
	a.Send([]byte{1, 2, 3})
	if len(b.in) != 0 {
		t.Error("runt forwarded")
	}
}

func TestSwitchDropsWhenFull(t *testing.T) {
	sw := NewSwitch()
	a, b := sw.Port(), sw.Port()
	for i := 0; i < PortQueueLen+7; i++ {
		a.Send(frame(bcast, macA, "x"))
	}
	if st := b.Stats(); st.Dropped != 7 {
		t.Errorf("stats %+v", st)
	}
	if st := a.Stats(); st.Sent != PortQueueLen+7 {
		t.Errorf("sender stats %+v", st)
	}
	// Too small a Recv buffer discards the frame and returns the next.
	b2 := sw.Port()
	a.Send(frame(bcast, macA, "long payload"))
	a.Send(frame(bcast, macA, "s"))
	buf := make([]byte, EthHeaderLen+1)
	n, err := b2.Recv(buf)
	if err != nil || n != EthHeaderLen+1 || b2.Stats().TooBig != 1 {
		t.Errorf("Recv small: %d %v %+v", n, err, b2.Stats())
	}
}

// Four ports send at once, unicast to each other and broadcast, while
// each port's reader takes frames as they come: every frame reaches the
// port it was meant for exactly once and no other, nothing is dropped (no
// port is sent more than PortQueueLen frames, so a slow reader cannot be
// the reason), and the counters say exactly that. Run it under -race.
func TestSwitchConcurrent(t *testing.T) {
	const (
		nports  = 4
		unicast = 50 // frames from each port to each other port
		bcasts  = 30 // broadcasts from each port
	)
	perPort := (nports-1)*unicast + (nports-1)*bcasts
	if perPort > PortQueueLen {
		t.Fatalf("%d frames per port would overflow its queue of %d", perPort, PortQueueLen)
	}
	mac := func(i int) [6]byte { return [6]byte{2, 0, 0, 0, 1, byte(i)} }
	sw := NewSwitch()
	ports := make([]*Port, nports)
	for i := range ports {
		ports[i] = sw.Port()
	}
	// Each port announces itself once, so every unicast below goes to a
	// learned address; the floods are drained before the storm starts.
	for i, p := range ports {
		p.Send(frame(bcast, mac(i), "hello"))
	}
	for _, p := range ports {
		for n := 0; n < nports-1; n++ {
			if f := recvTimeout(t, p, 5*time.Second); f == nil || string(f[EthHeaderLen:]) != "hello" {
				t.Fatalf("announcement %d: got %q", n, f)
			}
		}
	}

	// Readers: each collects its port's frames until it has perPort or
	// its port is closed.
	got := make([]map[string]int, nports)
	var readers sync.WaitGroup
	for i, p := range ports {
		got[i] = map[string]int{}
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, MaxFrameLen)
			for n := 0; n < perPort; n++ {
				m, err := p.Recv(buf)
				if err != nil {
					return
				}
				got[i][string(buf[EthHeaderLen:m])]++
			}
		}()
	}
	// Senders, all at once, interleaving unicast to each peer with
	// broadcasts.
	var senders sync.WaitGroup
	for i, p := range ports {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := 0; j < unicast; j++ {
				for k := 1; k < nports; k++ {
					to := (i + k) % nports
					p.Send(frame(mac(to), mac(i), fmt.Sprintf("%d>%d#%d", i, to, j)))
				}
				if j < bcasts {
					p.Send(frame(bcast, mac(i), fmt.Sprintf("%d>*#%d", i, j)))
				}
			}
		}()
	}
	senders.Wait()
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, p := range ports {
			p.Close() // unblocks the readers: what they lack is reported below
		}
		<-done
		t.Errorf("readers did not get %d frames each in 10 s", perPort)
	}

	for i, p := range ports {
		want := map[string]int{}
		for from := 0; from < nports; from++ {
			if from == i {
				continue
			}
			for j := 0; j < unicast; j++ {
				want[fmt.Sprintf("%d>%d#%d", from, i, j)] = 1
			}
			for j := 0; j < bcasts; j++ {
				want[fmt.Sprintf("%d>*#%d", from, j)] = 1
			}
		}
		for k, n := range got[i] {
			if want[k] != n {
				t.Errorf("port %d got frame %q %d times, want %d", i, k, n, want[k])
			}
		}
		for k := range want {
			if got[i][k] == 0 {
				t.Errorf("port %d never got frame %q", i, k)
			}
		}
		st := p.Stats()
		wantSt := PortStats{Sent: uint64(1 + (nports-1)*unicast + bcasts), Received: uint64(nports - 1 + perPort)}
		if st != wantSt {
			t.Errorf("port %d stats %+v, want %+v", i, st, wantSt)
		}
		p.Close()
	}
}

// A device on one switch talks to a port of another switch through a unix
// socket joining them, and through Attach.
func TestSwitchesOverUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sw.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan *Stream, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- s
	}()
	d, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	var s *Stream
	select {
	case s = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return in 10 s")
	}

	sw1, sw2 := NewSwitch(), NewSwitch()
	up1, up2 := sw1.Attach(d), sw2.Attach(s)
	a, b := sw1.Port(), sw2.Port()

	f := frame(bcast, macA, "across")
	a.Send(f)
	if got := recvTimeout(t, b, 5*time.Second); !bytes.Equal(got, f) {
		t.Fatalf("b got %q", got)
	}
	f = frame(macA, macB, "reply")
	b.Send(f)
	if got := recvTimeout(t, a, 5*time.Second); !bytes.Equal(got, f) {
		t.Fatalf("a got %q", got)
	}
	if err := up1.Close(); err != nil {
		t.Error(err)
	}
	// The peer's link notices EOF and goes down on its own.
	up2.Close()
}

func TestStreamFraming(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw := make(chan stdnet.Conn, 1)
	go func() {
		c, err := stdnet.Dial("unix", path)
		if err != nil {
			t.Error(err)
		}
		raw <- c
	}()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var c stdnet.Conn
	select {
	case c = <-raw:
	case <-time.After(10 * time.Second):
		t.Fatal("Dial did not return in 10 s")
	}
	defer c.Close()
	// Recv blocks: closing the stream after a deadline ends a hung test.
	watchdog := time.AfterFunc(30*time.Second, func() { s.Close() })
	defer watchdog.Stop()

	// A frame split across several writes (so several reads).
	f := frame(bcast, macA, "split across reads")
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(f)))
	msg = append(msg, f...)
	go func() {
		for _, part := range [][]byte{msg[:2], msg[2:7], msg[7:]} {
			c.Write(part)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	buf := make([]byte, MaxFrameLen)
	n, err := s.Recv(buf)
	if err != nil || !bytes.Equal(buf[:n], f) {
		t.Fatalf("Recv = %q, %v", buf[:n], err)
	}
	// Send writes the prefix.
	if err := s.Send(f); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("wire = % x, %v", got, err)
	}
	// A frame bigger than the Recv buffer is skipped whole.
	c.Write(binary.BigEndian.AppendUint32(nil, 10))
	c.Write(make([]byte, 10))
	c.Write(binary.BigEndian.AppendUint32(nil, 3))
	c.Write([]byte("abc"))
	n, err = s.Recv(buf[:5])
	if err != nil || string(buf[:n]) != "abc" || s.TooBig() != 1 {
		t.Fatalf("Recv after oversize = %q, %v, toobig %d", buf[:n], err, s.TooBig())
	}
	// An absurd length is a protocol error.
	c.Write(binary.BigEndian.AppendUint32(nil, MaxFrameLen+1))
	if _, err := s.Recv(buf); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Recv bad length: %v", err)
	}
}

type rwc struct {
	io.Reader
	io.Writer
}

func (rwc) Close() error { return nil }

func TestStreamOneByteReads(t *testing.T) {
	var wire bytes.Buffer
	w := NewStream(rwc{Writer: &wire})
	f1, f2 := frame(bcast, macA, "one"), frame(macB, macA, "two")
	w.Send(f1)
	w.Send(f2)
	wire.Write([]byte{0, 0}) // truncated prefix at the end
	r := NewStream(rwc{Reader: iotest.OneByteReader(&wire)})
	buf := make([]byte, 100)
	for _, f := range [][]byte{f1, f2} {
		n, err := r.Recv(buf)
		if err != nil || !bytes.Equal(buf[:n], f) {
			t.Fatalf("Recv = %q, %v", buf[:n], err)
		}
	}
	if _, err := r.Recv(buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated prefix: %v", err)
	}
	if _, err := r.Recv(buf); err != io.EOF {
		t.Errorf("at end: %v", err)
	}
}

// The device on a switch port: a frame the guest transmits reaches
// another port, and one sent to the guest's MAC arrives in its rx ring.
func TestDeviceOnSwitch(t *testing.T) {
	sw := NewSwitch()
	other := sw.Port()
	e := newEnv(t, allFeatures)
	d := New(testMAC, sw.Port())
	defer d.Close()
	e.d.Close()
	e.d = d
	e.rx.lk, e.tx.lk = &d.mu, &d.mu
	// Re-activate the new device on the same rings.
	if err := d.Activate(activateCtx(e)); err != nil {
		t.Fatal(err)
	}
	out := frame(bcast, testMAC, "from guest")
	e.tx.post(seg{data: make([]byte, HeaderLen)}, seg{data: out})
	d.Notify(transmitq)
	if got := recvTimeout(t, other, 5*time.Second); !bytes.Equal(got, out) {
		t.Fatalf("other got %q", got)
	}
	a := e.rx.post(seg{wlen: 2048})
	in := frame(testMAC, macA, "to guest")
	other.Send(in)
	e.waitFor("rx", func() bool { return e.rx.usedIdx() == 1 })
	checkRx(t, e.rx, a[0], in)
}

func TestTAP(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, testenv.Root, "needs root to create a tap interface")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(t, testenv.TUN, "no /dev/net/tun: %v", err)
	}
	tap, err := OpenTAP("tvtest0")
	if err != nil {
		testenv.Missing(t, testenv.TUN, "cannot create tap (sandboxed?): %v", err)
	}
	if tap.Name() != "tvtest0" {
		t.Errorf("Name = %q", tap.Name())
	}
	ifs, err := stdnet.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, i := range ifs {
		found = found || i.Name == "tvtest0"
	}
	if !found {
		t.Error("tvtest0 not in net.Interfaces()")
	}
	// Close unblocks a pending Recv.
	errc := make(chan error, 1)
	go func() { _, err := tap.Recv(make([]byte, MaxFrameLen)); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Recv after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv not unblocked by Close")
	}
	if _, err := stdnet.InterfaceByName("tvtest0"); err == nil {
		t.Error("tvtest0 still exists after Close")
	}
}
