package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/snapshot"
	"github.com/tracevisor/tracevisor/virtio/probedev"
	"github.com/tracevisor/tracevisor/vmm"
	"github.com/tracevisor/tracevisor/wire"
)

// probing is a run's probe channel: the device, the host side, the events
// file and the API socket. It is the machine's vmm.Layer: the host's
// state (armed probes, ids, counters) goes into the machine's snapshots
// and comes back on a restore.
type probing struct {
	specs    []probe.Spec
	dev      *probedev.Device
	host     *probe.Host
	clock    lateClock
	api      *api.Server
	events   *os.File
	done     chan error // the events writer's result
	sub      *probe.Subscription
	log      io.Writer        // the run's diagnostics: stderr
	saved    *probe.HostState // a restore's host state, checked (LoadState)
	restored bool             // the host has its state back: no boot probes to queue
	once     sync.Once
	err      error
}

// hostSection is the probe host's section in a snapshot.
const hostSection = "probe/host"

var _ vmm.Layer = (*probing)(nil)

// lateClock is the probe host's clock: the machine's guest clock, set
// once the machine exists (the host is made before it, so that a restore
// can give the host its state). Until then no guest message arrives.
type lateClock struct{ c atomic.Pointer[probe.Clock] }

func (l *lateClock) set(c probe.Clock) {
	if c != nil {
		l.c.Store(&c)
	}
}

// HostNS implements probe.Clock.
func (l *lateClock) HostNS(guestNS uint64) (int64, bool) {
	if c := l.c.Load(); c != nil {
		return (*c).HostNS(guestNS)
	}
	return 0, false
}

// parseProbes checks the --probe flags before anything is opened, so that
// a typo costs no boot: each must parse, and together they may name at most
// wire.MaxProbes probes (what the guest's driver arms at once; a catalogue
// entry can name several).
func parseProbes(flags []string) ([]probe.Spec, error) {
	var specs []probe.Spec
	for _, s := range flags {
		ss, err := probe.ParseProbeFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--probe %q: %w", s, err)
		}
		specs = append(specs, ss...)
	}
	if len(specs) > wire.MaxProbes {
		return nil, fmt.Errorf("--probe: %d flags name %d probes; the guest's driver arms at most %d at once", len(flags), len(specs), wire.MaxProbes)
	}
	return specs, nil
}

// newProbing takes the checked --probe specs, opens --events and makes
// the device and the host side.
func newProbing(specs []probe.Spec, eventsPath string) (*probing, error) {
	p := &probing{specs: specs, log: os.Stderr}
	if eventsPath != "" {
		f, err := os.Create(eventsPath)
		if err != nil {
			return nil, fmt.Errorf("--events: %w", err)
		}
		p.events = f
	}
	p.dev = probedev.New(func(msg []byte, at int64) { p.host.Receive(msg, at) })
	p.host = probe.NewHost(p.dev, &p.clock, p.log)
	return p, nil
}

// SaveState implements vmm.Layer: the host's state, taken after the probe
// device's (the machine takes its devices' first).
func (p *probing) SaveState(w *snapshot.Writer) error {
	st, err := p.host.State()
	if err != nil {
		return err
	}
	return w.Section(hostSection, st)
}

// LoadState implements vmm.Layer.
func (p *probing) LoadState(s *snapshot.Snapshot) error {
	var st probe.HostState
	if err := s.Section(hostSection, &st); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return err
	}
	p.saved = &st
	return nil
}

// RestoreState implements vmm.Layer: the machine calls it once the probe
// device has its state back, before the guest runs; the guest's driver
// holds the probes armed, so the host sends nothing.
func (p *probing) RestoreState() error {
	if p.saved == nil {
		return errors.New("probe host: no state loaded")
	}
	if err := p.host.Restore(*p.saved); err != nil {
		return err
	}
	p.restored = true
	return nil
}

// device is the probe device for the machine's virtio list. Its listener
// notifications stay on the vCPU that made them.
func (p *probing) device() vmm.VirtioDevice {
	return vmm.VirtioDevice{Name: "probe", Device: p.dev, NotifyOnVCPU: true}
}

// start connects the host side to the built machine, arms the fence
// rules, queues the boot probes (the guest driver arms them before user
// space starts), and opens the events file and the API socket.
func (p *probing) start(m *vmm.Machine, apiPath string, fenceOn []api.FenceRule) error {
	if err := p.startHost(m.GuestClock(), api.NewControl(m), apiPath, fenceOn); err != nil {
		return err
	}
	// A fenced guest never answers: calls waiting on it (an inject
	// racing the fence it caused, a list) fail at once.
	m.OnFence(p.host.GuestStopped)
	return nil
}

// startHost is start's work, on the machine's guest clock, with the
// machine's control (nil: no machine methods, no fence rules). A restored
// host queues no boot probe: the guest holds the ones it had.
func (p *probing) startHost(clock probe.Clock, ctl *api.Control, apiPath string, fenceOn []api.FenceRule) error {
	p.clock.set(clock)
	if ctl != nil {
		for _, r := range fenceOn {
			if err := ctl.Arm(r); err != nil {
				return fmt.Errorf("--fence-on: %w", err)
			}
		}
		// The rules see each event first, on the host's decoding goroutine.
		p.host.SetEventHook(ctl.Observe)
	}
	if p.events != nil {
		p.sub = p.host.Subscribe(1 << 16)
		p.done = make(chan error, 1)
		go p.write()
	}
	for _, s := range p.specs {
		if p.restored {
			break
		}
		if _, err := p.host.Preload(s); err != nil {
			return fmt.Errorf("--probe %s: %w", s, err)
		}
	}
	if apiPath != "" {
		s, err := api.Listen(apiPath, p.host, ctl, p.log)
		if err != nil {
			return err
		}
		p.api = s
	}
	return nil
}

// write copies events to the events file, one JSON object a line.
func (p *probing) write() {
	w := bufio.NewWriter(p.events)
	enc := json.NewEncoder(w)
	var err error
	for e := range p.sub.C {
		if err == nil {
			err = enc.Encode(e)
		}
		if err == nil && len(p.sub.C) == 0 {
			err = w.Flush()
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := p.events.Close(); err == nil {
		err = cerr
	}
	p.done <- err
}

// stop decodes what the guest sent before it stopped, closes the API and
// finishes the events file, reporting losses on stderr. guestRan says
// whether the guest ran at all: only then is a driver that never said
// hello worth a line. The first call does the work; later ones return its
// result.
func (p *probing) stop(guestRan bool) error {
	p.once.Do(func() { p.err = p.finish(guestRan) })
	return p.err
}

func (p *probing) finish(guestRan bool) error {
	if p.api != nil {
		p.api.Close()
	}
	p.host.Drain()
	st := p.host.Stats()
	if _, ok := p.host.Hello(); !ok && guestRan && len(p.specs) > 0 {
		fmt.Fprintln(p.log, "vmm: --probe: the guest's tracevisor probe driver never started: no probe was armed (is the kernel the project's, or the module loaded?)")
	}
	p.host.Close()
	var err error
	switch {
	case p.done != nil:
		err = <-p.done
		if n := p.sub.Dropped(); n > 0 {
			fmt.Fprintf(p.log, "vmm: %d probe events not written to --events: the writer fell behind\n", n)
		}
	case p.events != nil: // the host never started: no writer owns the file
		p.events.Close()
	}
	if st.InboxDrops > 0 || st.GuestDrops > 0 {
		fmt.Fprintf(p.log, "vmm: probe events lost: %d in the guest (no free buffer, or a hit inside the driver's own send path), %d on the host\n", st.GuestDrops, st.InboxDrops)
	}
	if err != nil {
		return fmt.Errorf("--events: %w", err)
	}
	return nil
}
