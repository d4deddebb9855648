package net

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tracevisor/tracevisor/guestmem"
	"github.com/tracevisor/tracevisor/virtio/mmio"
	"github.com/tracevisor/tracevisor/virtio/virtiotest"
)

// snapEnv is a device behind a transport, as the VMM runs it.
type snapEnv struct {
	*env
	tr *mmio.Transport
}

func newSnapEnv(t *testing.T, mem *guestmem.Memory, rx, tx *ring) *snapEnv {
	be := newFakeBackend()
	d := New(testMAC, be)
	rx.lk, tx.lk = &d.mu, &d.mu
	tr := mmio.New(d, mem, nil)
	t.Cleanup(func() { tr.Close(); d.Close() })
	return &snapEnv{env: &env{t: t, d: d, be: be, rx: rx, tx: tx}, tr: tr}
}

// activeSnapEnv is a snapEnv on fresh guest memory, its device activated
// with both rings, and the memory and the rings' buffer allocator.
func activeSnapEnv(t *testing.T) (*snapEnv, *guestmem.Memory, *uint64) {
	mem := guestmem.FromRegions(guestmem.Region{GPA: 0, Host: make([]byte, memSize)})
	alloc := new(uint64)
	*alloc = bufBase
	a := newSnapEnv(t, mem,
		&ring{t: t, mem: mem, desc: 0x1000, avail: 0x2000, used: 0x3000, alloc: alloc},
		&ring{t: t, mem: mem, desc: 0x4000, avail: 0x5000, used: 0x6000, alloc: alloc})
	virtiotest.Activate(t, a.tr, allFeatures, a.rx.vring(), a.tx.vring())
	return a, mem, alloc
}

func (e *snapEnv) sent() [][]byte {
	e.be.mu.Lock()
	defer e.be.mu.Unlock()
	return append([][]byte(nil), e.be.sent...)
}

func (e *snapEnv) transmit(f []byte) {
	e.tx.post(seg{data: append(make([]byte, HeaderLen), f...)})
	virtiotest.SetReg(e.tr, mmio.VIRTIO_MMIO_QUEUE_NOTIFY, transmitq)
}

// onMemory is r's driver side over mem, with an allocator of its own.
func (r *ring) onMemory(mem *guestmem.Memory, alloc *uint64) *ring {
	c := *r
	c.mem, c.alloc = mem, alloc
	return &c
}

func (r *ring) vring() *virtiotest.Ring {
	return &virtiotest.Ring{Desc: r.desc, Avail: r.avail, Used: r.used, Size: ringSize}
}

// A device that received and sent frames, with its link down, a receive
// buffer posted and empty, a frame held for it and a transmit notified
// while paused, is restored over a copy of memory: the held transmit goes
// out once, the held frame is dropped and counted, the link stays down,
// and the next frame fills the buffer posted before the snapshot.
func TestSnapshotRestoreContinues(t *testing.T) {
	a, mem, alloc := activeSnapEnv(t)
	for i := 0; i < 2; i++ {
		a.rx.post(seg{wlen: 2048})
		a.be.push(frame(testMAC, macA, "before"))
		a.transmit(frame(macA, testMAC, "out"))
	}
	a.waitFor("2 received", func() bool { return a.rx.usedIdx() == 2 })
	a.d.SetLink(false)
	spare := a.rx.post(seg{wlen: 2048})[0] // posted, empty at snapshot time
	a.rx.next()
	a.rx.next()

	a.tr.Pause()
	a.be.push(frame(testMAC, macA, "held"))
	a.waitFor("a held frame", func() bool { return a.held() == 1 })
	held := frame(macA, testMAC, "held out")
	a.transmit(held)
	if a.rx.usedIdx() != 2 || len(a.sent()) != 2 {
		t.Fatalf("paused device moved: rx used %d, sent %d", a.rx.usedIdx(), len(a.sent()))
	}
	s := virtiotest.SaveState(t, a.tr)

	mem2 := virtiotest.CloneMemory(mem)
	alloc2 := *alloc
	b := newSnapEnv(t, mem2, a.rx.onMemory(mem2, &alloc2), a.tx.onMemory(mem2, &alloc2))
	if err := b.tr.Restore(s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := b.sent(); len(got) != 1 || !bytes.Equal(got[0], held) {
		t.Fatalf("restored device sent %q, want the held frame once", got)
	}
	if st := b.d.Stats(); st.RxDropRestore != 1 || st.RxFrames != 0 {
		t.Fatalf("restored stats %+v, want the held frame dropped and counted", st)
	}
	var cfg [8]byte
	b.d.ReadConfig(0, cfg[:])
	if !bytes.Equal(cfg[:6], testMAC[:]) || cfg[6]&VIRTIO_NET_S_LINK_UP != 0 {
		t.Fatalf("restored config % x: want the MAC and the link down", cfg)
	}
	next := frame(testMAC, macA, "after")
	b.be.push(next)
	b.waitFor("received after restore", func() bool { return b.rx.usedIdx() == 3 })
	checkRx(t, b.rx, spare, next)
	b.transmit(frame(macA, testMAC, "after"))
	if len(b.sent()) != 2 || b.tx.usedIdx() != 4 {
		t.Fatalf("after restore: sent %d, tx used %d; want 2, 4", len(b.sent()), b.tx.usedIdx())
	}

	// The original, resumed, delivers its held frame and sends its own.
	a.tr.Resume()
	a.waitFor("held frame delivered", func() bool { return a.rx.usedIdx() == 3 })
	if len(a.sent()) != 3 {
		t.Fatalf("original sent %d after Resume, want 3", len(a.sent()))
	}
}

// A device configured with another MAC is not restored into: the guest
// would go on with the one it read.
func TestRestoreRefusesOtherMAC(t *testing.T) {
	a, mem, _ := activeSnapEnv(t)
	s := virtiotest.SaveState(t, a.tr)

	d := New(macB, newFakeBackend())
	tr := mmio.New(d, virtiotest.CloneMemory(mem), nil)
	defer func() { tr.Close(); d.Close() }()
	if err := tr.Check(s); !errors.Is(err, mmio.ErrStateMismatch) {
		t.Fatalf("Check onto another MAC = %v, want ErrStateMismatch (before any restore)", err)
	}
	if err := tr.Restore(s); !errors.Is(err, mmio.ErrStateMismatch) {
		t.Fatalf("Restore onto another MAC = %v, want ErrStateMismatch", err)
	}
	s.Device = []byte(`{"mac":[82,84,0,18,52,86],"link_up":true,"broken":false,"held":1000}`)
	d2 := New(testMAC, newFakeBackend())
	tr2 := mmio.New(d2, virtiotest.CloneMemory(mem), nil)
	defer func() { tr2.Close(); d2.Close() }()
	if err := tr2.Restore(s); !errors.Is(err, mmio.ErrBadState) {
		t.Fatalf("Restore with 1000 held frames = %v, want ErrBadState", err)
	}
}

// A device paused as it is created for a restore holds a frame that
// arrives before its queues are restored and delivers it on Resume, into
// the buffer the guest had posted; a device paused and never activated
// drops what it held on Resume, counted.
func TestPausedBeforeRestoreHoldsFrames(t *testing.T) {
	a, mem, alloc := activeSnapEnv(t)
	spare := a.rx.post(seg{wlen: 2048})[0]
	a.tr.Pause()
	s := virtiotest.SaveState(t, a.tr)

	mem2 := virtiotest.CloneMemory(mem)
	alloc2 := *alloc
	b := newSnapEnv(t, mem2, a.rx.onMemory(mem2, &alloc2), a.tx.onMemory(mem2, &alloc2))
	b.d.Pause()
	early := frame(testMAC, macA, "before the restore")
	b.be.push(early)
	b.waitFor("the early frame held", func() bool { return b.held() == 1 })
	if err := b.tr.RestorePaused(s); err != nil {
		t.Fatalf("RestorePaused: %v", err)
	}
	b.tr.Resume()
	b.waitFor("the early frame delivered", func() bool { return b.rx.usedIdx() == 1 })
	checkRx(t, b.rx, spare, early)
	if st := b.d.Stats(); st.RxDropInactive != 0 || st.RxFrames != 1 {
		t.Errorf("stats %+v: want the frame delivered, none dropped", st)
	}

	c := newSnapEnv(t, mem2, a.rx.onMemory(mem2, &alloc2), a.tx.onMemory(mem2, &alloc2))
	c.d.Pause()
	c.be.push(frame(testMAC, macA, "for nobody"))
	c.waitFor("held", func() bool { return c.held() == 1 })
	c.d.Resume()
	if st := c.d.Stats(); c.held() != 0 || st.RxDropInactive != 1 {
		t.Errorf("a never-activated device after Resume: %d held, stats %+v; want none held, 1 dropped", c.held(), st)
	}
}
