package failover_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/probe"
)

// testbed is a research testbed's Actions: here it only says what it
// would do; a real one stops the vmm's vCPUs, switches a route and
// restarts the service.
type testbed struct{}

func (testbed) Fence(_ context.Context, node string) error {
	fmt.Println("testbed: fence", node)
	return nil
}

func (testbed) MoveAddress(_ context.Context, to string) error {
	fmt.Println("testbed: service address to", to)
	return nil
}

func (testbed) Recover(_ context.Context, node string, why failover.Kind) error {
	fmt.Printf("testbed: recover %s after a %s failure\n", node, why)
	return nil
}

// A two-node cluster built in Go with fakes: fake event streams stand in
// for each vmm's `probe events`, a fake clock for the host's. Killing the
// active's httpd fails it over; a SIGHUP to it did nothing.
func Example() {
	clock := failover.NewFakeClock(time.Unix(1700000000, 0))
	streams := map[string]*failover.FakeStream{"vm1": failover.NewFakeStream(), "vm2": failover.NewFakeStream()}
	var sources []failover.Source
	for _, node := range []string{"vm1", "vm2"} {
		st := streams[node]
		sources = append(sources, failover.Source{Node: node,
			Open: func(context.Context) (failover.EventStream, error) { return st, nil }})
		// With real vmms: failover.APISource(node, "/run/"+node+".sock").
	}
	detector := &failover.ProbeDetector{Rules: failover.DefaultRules("httpd"), Sources: sources, Clock: clock}
	m, err := failover.NewManager(failover.Config{
		Nodes:   []string{"vm1", "vm2"}, // vm1 active, vm2 standby
		Actions: testbed{},
		Clock:   clock,
		Journal: failover.NewJournal(os.Stdout),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx, detector) }()

	signal := func(sig uint32) probe.Event {
		return probe.Event{Probe: "signal", Class: "signal", PID: 212, TID: 212, Comm: "httpd",
			HostNS: clock.Now().UnixNano(), Fields: map[string]any{"sig": sig, "sender_comm": "sh"}}
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	streams["vm1"].Send(sctx, signal(1)) // SIGHUP: httpd re-reads its configuration
	streams["vm1"].Send(sctx, signal(9)) // SIGKILL: the service is gone

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s, _ := m.State("vm1"); s == failover.Standby {
			break
		}
	}
	cancel()
	<-done
	tl := m.Timelines()[0]
	fmt.Printf("failover %s → %s on %s: %s\n", tl.Node, tl.To, tl.Detector, tl.Cause)
	fmt.Println("active:", m.Status().Active)
	// Output:
	// {"time_ns":1700000000000000000,"node":"vm1","from":"active","to":"failed","cause":"probe: service failure of vm1: signal (probe signal) sig SIGKILL httpd[212] by sh"}
	// testbed: fence vm1
	// {"time_ns":1700000000000000000,"node":"vm1","from":"failed","to":"fenced","cause":"fenced"}
	// testbed: service address to vm2
	// {"time_ns":1700000000000000000,"node":"vm2","from":"standby","to":"active","cause":"failover from vm1"}
	// {"time_ns":1700000000000000000,"service":"up","active":"vm2","cause":"failover from vm1"}
	// {"time_ns":1700000000000000000,"node":"vm1","from":"fenced","to":"recovering","cause":"recovering after a service failure"}
	// testbed: recover vm1 after a service failure
	// {"time_ns":1700000000000000000,"node":"vm1","from":"recovering","to":"standby","cause":"recovered"}
	// failover vm1 → vm2 on probe: signal (probe signal) sig SIGKILL httpd[212] by sh
	// active: vm2
}
