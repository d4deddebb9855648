// Package failover is the cluster manager of the seed paper's Action layer:
// active and standby nodes (each a vmm with its control API) that fail over
// on a verdict, and the two detectors that give verdicts.
//
// The parts, one concern a file:
//
//   - state.go: node states (active, standby, failed, fenced, recovering)
//     and the one table of legal transitions; every transition is a JSON
//     line on a Journal.
//   - verdict.go: Verdict, Cause, Kind and the Detector interface both
//     detectors implement.
//   - signals.go, rules.go: the probe detector's rules as data: which
//     probe events are a service failure, which a VM failure, which
//     nothing.
//   - probe_detector.go: turns each node's probe event stream (a vmm's
//     `probe events`, or a fake) into verdicts by the rules.
//   - heartbeat.go, checkers.go: the polling baseline the seed measured
//     against (Heartbeat, 10 s), with HTTP, TCP and vmm checks.
//   - manager.go, timeline.go: consumes verdicts, fences the failed node,
//     moves the service address to a standby, recovers the failed node as
//     the new standby, and times every stage on the host clock.
//   - clock.go, fake.go: the clock everything reads (a fake one for tests
//     and simulations) and a fake event stream.
//
// Nothing here boots a VM or touches the network beyond the checkers: the
// Manager acts through an Actions interface, so a research testbed can run
// a whole cluster in Go with fakes (see the Example) and the real cluster
// plugs in vmm-backed Actions.
package failover
