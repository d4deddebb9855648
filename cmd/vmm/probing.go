package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/virtio/probedev"
	"github.com/tracevisor/tracevisor/vmm"
)

// probing is a run's probe channel: the device, the host side, the events
// file and the API socket.
type probing struct {
	specs  []probe.Spec
	dev    *probedev.Device
	host   *probe.Host
	api    *api.Server
	events *os.File
	done   chan error // the events writer's result
	sub    *probe.Subscription
	once   sync.Once
	err    error
}

// newProbing checks the --probe specs and opens --events before the guest
// boots, so a typo costs no boot.
func newProbing(specs []string, eventsPath string) (*probing, error) {
	p := &probing{}
	for _, s := range specs {
		ss, err := probe.ParseProbeFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--probe %q: %w", s, err)
		}
		p.specs = append(p.specs, ss...)
	}
	if eventsPath != "" {
		f, err := os.Create(eventsPath)
		if err != nil {
			return nil, fmt.Errorf("--events: %w", err)
		}
		p.events = f
	}
	p.dev = probedev.New(func(msg []byte, at int64) { p.host.Receive(msg, at) })
	return p, nil
}

// device is the probe device for the machine's virtio list. Its listener
// notifications stay on the vCPU that made them.
func (p *probing) device() vmm.VirtioDevice {
	return vmm.VirtioDevice{Name: "probe", Device: p.dev, NotifyOnVCPU: true}
}

// start connects the host side to the built machine, queues the boot
// probes (the guest driver arms them before user space starts), and opens
// the events file and the API socket.
func (p *probing) start(m *vmm.Machine, apiPath string) error {
	p.host = probe.NewHost(p.dev, m.GuestClock(), os.Stderr)
	if p.events != nil {
		p.sub = p.host.Subscribe(1 << 16)
		p.done = make(chan error, 1)
		go p.write()
	}
	for _, s := range p.specs {
		if _, err := p.host.Preload(s); err != nil {
			return fmt.Errorf("--probe %s: %w", s, err)
		}
	}
	if apiPath != "" {
		s, err := api.Listen(apiPath, p.host)
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
// finishes the events file, reporting losses on stderr.
func (p *probing) stop() error {
	p.once.Do(func() { p.err = p.finish() })
	return p.err
}

func (p *probing) finish() error {
	if p.host == nil {
		if p.events != nil {
			p.events.Close()
		}
		return nil
	}
	if p.api != nil {
		p.api.Close()
	}
	p.host.Drain()
	st := p.host.Stats()
	if _, ok := p.host.Hello(); !ok && len(p.specs) > 0 {
		fmt.Fprintln(os.Stderr, "vmm: --probe: the guest's tracevisor probe driver never started: no probe was armed (is the kernel the project's, or the module loaded?)")
	}
	p.host.Close()
	var err error
	if p.done != nil {
		err = <-p.done
		if n := p.sub.Dropped(); n > 0 {
			fmt.Fprintf(os.Stderr, "vmm: %d probe events not written to --events: the writer fell behind\n", n)
		}
	}
	if st.InboxDrops > 0 || st.GuestDrops > 0 {
		fmt.Fprintf(os.Stderr, "vmm: probe events lost: %d in the guest (no buffer), %d on the host\n", st.GuestDrops, st.InboxDrops)
	}
	if err != nil {
		return fmt.Errorf("--events: %w", err)
	}
	return nil
}
