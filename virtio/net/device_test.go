package net

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tracevisor/tracevisor/virtio/queue"
)

const allFeatures = 1<<VIRTIO_NET_F_MAC | 1<<VIRTIO_NET_F_STATUS | 1<<queue.VIRTIO_RING_F_EVENT_IDX | 1<<queue.VIRTIO_RING_F_INDIRECT_DESC

var (
	bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macA  = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB  = [6]byte{2, 0, 0, 0, 0, 0xb}
	macC  = [6]byte{2, 0, 0, 0, 0, 0xc}
)

func TestIdentityAndConfig(t *testing.T) {
	d := New(testMAC, newFakeBackend())
	defer d.Close()
	if d.DeviceID() != 1 {
		t.Errorf("DeviceID = %d", d.DeviceID())
	}
	f := d.Features()
	for _, b := range []int{VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, queue.VIRTIO_RING_F_EVENT_IDX} {
		if f&(1<<b) == 0 {
			t.Errorf("feature %d not offered", b)
		}
	}
	if f&(1<<VIRTIO_NET_F_MRG_RXBUF) != 0 || f&0x3fff != 1<<VIRTIO_NET_F_MAC {
		t.Errorf("unexpected features %#x (offloads or MRG_RXBUF)", f)
	}
	if got := d.QueueMaxSizes(); len(got) != 2 {
		t.Errorf("QueueMaxSizes = %v", got)
	}
	cfg := make([]byte, 12)
	for i := range cfg {
		cfg[i] = 0xee
	}
	d.ReadConfig(0, cfg)
	want := []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 0, 0, 0, 0}
	if !bytes.Equal(cfg, want) {
		t.Errorf("config = % x, want % x", cfg, want)
	}
	st := make([]byte, 2)
	d.ReadConfig(6, st)
	if binary.LittleEndian.Uint16(st) != VIRTIO_NET_S_LINK_UP {
		t.Errorf("status = % x", st)
	}
	b := make([]byte, 1)
	d.ReadConfig(3, b)
	if b[0] != 0x12 {
		t.Errorf("mac[3] = %#x", b[0])
	}
	d.WriteConfig(0, []byte{9, 9, 9, 9, 9, 9}) // ignored
	d.ReadConfig(0, cfg[:6])
	if !bytes.Equal(cfg[:6], testMAC[:]) {
		t.Errorf("mac changed by a write: % x", cfg[:6])
	}
}

func TestLinkStatusChange(t *testing.T) {
	e := newEnv(t, allFeatures)
	e.d.SetLink(false)
	st := make([]byte, 2)
	e.d.ReadConfig(6, st)
	if st[0] != 0 {
		t.Errorf("status after link down = % x", st)
	}
	if _, cfg, _ := e.irq.counts(); cfg != 1 {
		t.Errorf("config interrupts = %d, want 1", cfg)
	}
}

func TestTransmit(t *testing.T) {
	for _, features := range []uint64{allFeatures, 1 << VIRTIO_NET_F_MAC} {
		e := newEnv(t, features)
		f1 := frame(bcast, testMAC, "hello")
		f2 := frame(macA, testMAC, "world, in three pieces")
		e.tx.post(seg{data: make([]byte, HeaderLen)}, seg{data: f1})
		e.tx.post(seg{data: append(make([]byte, HeaderLen), f2[:3]...)}, seg{data: f2[3:20]}, seg{data: f2[20:]})
		e.d.Notify(transmitq)
		if len(e.be.sent) != 2 || !bytes.Equal(e.be.sent[0], f1) || !bytes.Equal(e.be.sent[1], f2) {
			t.Fatalf("sent %q", e.be.sent)
		}
		for i := 0; i < 2; i++ {
			if _, n := e.tx.next(); n != 0 {
				t.Errorf("tx used len = %d, want 0", n)
			}
		}
		if used, _, reset := e.irq.counts(); used != 1 || reset != 0 {
			t.Errorf("used interrupts %d, needs-reset %d", used, reset)
		}
		st := e.d.Stats()
		if st.TxFrames != 2 || st.TxBytes != uint64(len(f1)+len(f2)) {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestTransmitShortChainNeedsReset(t *testing.T) {
	e := newEnv(t, allFeatures)
	e.tx.post(seg{data: make([]byte, HeaderLen-1)})
	e.d.Notify(transmitq)
	if _, _, reset := e.irq.counts(); reset != 1 {
		t.Fatalf("needs-reset = %d, want 1", reset)
	}
	// Broken: further notifications are ignored until reset.
	e.tx.post(seg{data: make([]byte, HeaderLen)}, seg{data: frame(bcast, testMAC, "x")})
	e.d.Notify(transmitq)
	if len(e.be.sent) != 0 {
		t.Errorf("sent while broken: %q", e.be.sent)
	}
}

func TestTransmitEmptyFrameDropped(t *testing.T) {
	e := newEnv(t, allFeatures)
	e.tx.post(seg{data: make([]byte, HeaderLen)})
	e.d.Notify(transmitq)
	if st := e.d.Stats(); st.TxDropped != 1 || st.TxFrames != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, _, reset := e.irq.counts(); reset != 0 {
		t.Errorf("needs-reset on an empty frame")
	}
}

func TestTransmitBadRingNeedsReset(t *testing.T) {
	e := newEnv(t, allFeatures)
	e.tx.must(e.tx.mem.Write16(e.tx.avail+2, 100)) // avail idx jumps past the ring
	e.d.Notify(transmitq)
	if _, _, reset := e.irq.counts(); reset != 1 {
		t.Fatalf("needs-reset = %d, want 1", reset)
	}
}

func checkRx(t *testing.T, r *ring, addr uint64, want []byte) {
	t.Helper()
	_, n := r.next()
	if int(n) != HeaderLen+len(want) {
		t.Fatalf("rx used len = %d, want %d", n, HeaderLen+len(want))
	}
	got := r.read(addr, int(n))
	hdr := make([]byte, HeaderLen)
	binary.LittleEndian.PutUint16(hdr[10:], 1)
	if !bytes.Equal(got[:HeaderLen], hdr) {
		t.Errorf("header = % x, want % x", got[:HeaderLen], hdr)
	}
	if !bytes.Equal(got[HeaderLen:], want) {
		t.Errorf("frame = %q, want %q", got[HeaderLen:], want)
	}
}

func TestReceive(t *testing.T) {
	e := newEnv(t, allFeatures)
	a := e.rx.post(seg{wlen: HeaderLen + 1514})
	b := e.rx.post(seg{wlen: 4}, seg{wlen: HeaderLen + 1510}) // header split
	f1 := frame(testMAC, macA, "one")
	f2 := frame(testMAC, macA, "two")
	e.be.push(f1)
	e.be.push(f2)
	e.waitFor("two used", func() bool { return e.rx.usedIdx() == 2 })
	checkRx(t, e.rx, a[0], f1)
	_, n := e.rx.next()
	got := append(e.rx.read(b[0], 4), e.rx.read(b[1], int(n)-4)...)
	if !bytes.Equal(got[HeaderLen:], f2) || got[10] != 1 {
		t.Errorf("split rx = % x", got)
	}
	e.waitFor("interrupt", func() bool { u, _, _ := e.irq.counts(); return u >= 1 })
	if st := e.d.Stats(); st.RxFrames != 2 || st.RxBytes != uint64(len(f1)+len(f2)) {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiveTooBigDropped(t *testing.T) {
	e := newEnv(t, allFeatures)
	e.rx.post(seg{wlen: HeaderLen + 20})
	big := frame(testMAC, macA, string(make([]byte, 100)))
	e.be.push(big)
	e.waitFor("used", func() bool { return e.rx.usedIdx() == 1 })
	if _, n := e.rx.next(); n != 0 {
		t.Errorf("used len of dropped frame = %d, want 0", n)
	}
	if st := e.d.Stats(); st.RxDropTooBig != 1 || st.RxFrames != 0 {
		t.Errorf("stats %+v", st)
	}
	// The next frame that fits goes into the next buffer.
	a := e.rx.post(seg{wlen: HeaderLen + 200})
	small := frame(testMAC, macA, "fits")
	e.be.push(small)
	e.waitFor("used", func() bool { return e.rx.usedIdx() == 2 })
	checkRx(t, e.rx, a[0], small)
}

func TestReceiveHeldUntilNotify(t *testing.T) {
	e := newEnv(t, allFeatures)
	var frames [][]byte
	for i := 0; i < 3; i++ {
		f := frame(testMAC, macA, string(rune('a'+i)))
		frames = append(frames, f)
		e.be.push(f)
	}
	e.waitFor("3 held", func() bool { return e.held() == 3 })
	// With EVENT_IDX the device asked to be kicked at the next avail entry.
	if ev, _ := e.rx.mem.Read16(e.rx.used + 4 + 8*ringSize); ev != 0 {
		t.Errorf("avail_event = %d, want 0", ev)
	}
	var addrs []uint64
	for i := 0; i < 3; i++ {
		addrs = append(addrs, e.rx.post(seg{wlen: 2048})[0])
	}
	if e.rx.usedIdx() != 0 {
		t.Fatal("delivered before notify")
	}
	e.d.Notify(receiveq)
	for i, f := range frames {
		checkRx(t, e.rx, addrs[i], f)
	}
	if e.held() != 0 {
		t.Errorf("%d still held", e.held())
	}
	if u, _, _ := e.irq.counts(); u != 1 {
		t.Errorf("used interrupts = %d, want 1", u)
	}
}

func TestReceiveHeldBounded(t *testing.T) {
	e := newEnv(t, allFeatures)
	for i := 0; i < MaxHeld+5; i++ {
		e.be.push(frame(testMAC, macA, "x"))
	}
	e.waitFor("drops", func() bool { return e.d.Stats().RxDropNoBuffer == 5 })
	if e.held() != MaxHeld {
		t.Errorf("held = %d, want %d", e.held(), MaxHeld)
	}
}

func TestReceiveInactiveAndReset(t *testing.T) {
	be := newFakeBackend()
	d := New(testMAC, be)
	defer d.Close()
	be.push(frame(testMAC, macA, "early"))
	be.push(frame(testMAC, macA, "early")) // returns once the first was handled
	e := newEnv(t, allFeatures)
	e.be.push(frame(testMAC, macA, "held"))
	e.waitFor("held", func() bool { return e.held() == 1 })
	e.d.Reset()
	e.be.push(frame(testMAC, macA, "after reset"))
	e.waitFor("drops", func() bool { return e.d.Stats().RxDropInactive == 2 })
	if e.held() != 0 {
		t.Errorf("held after reset = %d", e.held())
	}
	if st := d.Stats(); st.RxDropInactive < 1 {
		t.Errorf("inactive device stats %+v", st)
	}
	e.d.Notify(receiveq) // no queues: nothing happens
	e.d.Notify(transmitq)
}

func TestCloseStopsReceiver(t *testing.T) {
	e := newEnv(t, allFeatures)
	if err := e.d.Close(); err != nil {
		t.Fatal(err)
	}
	if e.d.Err() != ErrClosed {
		t.Errorf("Err = %v", e.d.Err())
	}
	e.d.Notify(transmitq)
	e.d.Notify(receiveq)
}
