// Package api is vmm's control API: a unix stream socket a running `vmm
// run --api PATH` listens on, served from the probe host (the action
// layer). `vmm probe ...` and `vmm inject ...` are its clients; so is any
// program that writes the JSON below.
//
// Protocol: the client writes one Request as a JSON object on one line;
// the server answers with one Response line. Several requests may follow
// on one connection. The "events" request instead turns the connection
// into a stream of probe events, one JSON object a line, until either side
// closes it.
//
// The machine methods act on the VM itself: "fence" stops every vCPU for
// good (the guest keeps its memory; the vmm keeps running and serving) and
// answers once none is in KVM_RUN; "status" says running or fenced, when,
// why and where each vCPU stood; "stop" ends the vmm (with the fenced exit
// code once fenced); "fence_on" arms a fence rule (FenceRuleSyntax): the
// vmm fences itself on a probe event the rule matches. "snapshot" writes
// the running guest to a directory (Dir, absolute, on the vmm's host) that
// `vmm run --restore DIR` resumes, pausing it meanwhile and leaving it
// paused if Paused says so; "resume" lets a paused guest run on. "dump"
// writes the guest as an ELF core file (Path, absolute) for `gdb vmlinux
// PATH`: a fenced guest as its fence left it, a running one paused for
// the dump.
//
// Limits: a request line longer than MaxRequestLine is answered with an
// error Response (saying so, with the limit) and the connection carries on;
// beyond MaxConns connections at once, a new one gets an error Response and
// is closed.
package api

import (
	"github.com/tracevisor/tracevisor/probe"
	"github.com/tracevisor/tracevisor/vmm"
)

// Operations a Request may ask for.
const (
	OpAttach = "attach" // Spec: arm the probes it names; Response.IDs
	OpDetach = "detach" // ID: disarm one probe
	OpList   = "list"   // Response.Probes and Response.Host
	OpInject = "inject" // Inject: cause a fault in the guest
	OpEvents = "events" // stream events

	OpFence   = "fence"    // Reason: fence the machine; Response.Machine, WaitedNS
	OpStatus  = "status"   // Response.Machine, FenceRules, FenceEvent
	OpStop    = "stop"     // Reason: end the vmm, after the answer
	OpFenceOn = "fence_on" // Rule: arm a fence rule; Response.FenceRules

	OpSnapshot = "snapshot" // Dir, Paused: snapshot the guest; Response.Machine, SnapshotNS
	OpResume   = "resume"   // resume a paused guest; Response.Machine
	OpDump     = "dump"     // Path: write the guest as an ELF core; Response.Machine, DumpNS
)

// Request is one call.
type Request struct {
	Op     string     `json:"op"`
	Spec   string     `json:"spec,omitempty"`
	ID     uint32     `json:"id,omitempty"`
	Inject *Injection `json:"inject,omitempty"`
	Reason string     `json:"reason,omitempty"` // fence, stop: why, for the record
	Rule   string     `json:"rule,omitempty"`   // fence_on
	Dir    string     `json:"dir,omitempty"`    // snapshot: where, an absolute path
	Paused bool       `json:"paused,omitempty"` // snapshot: leave the guest paused
	Path   string     `json:"path,omitempty"`   // dump: the core file, an absolute path
}

// InjectKinds names the faults an Injection can ask for.
const InjectKinds = "signal, oom, panic, hang or stall"

// Injection names a fault: Kind is one of InjectKinds.
type Injection struct {
	Kind    string `json:"kind"`
	Comm    string `json:"comm,omitempty"`    // signal: processes named so
	Signal  int    `json:"signal,omitempty"`  // signal: its number
	CPU     int    `json:"cpu,omitempty"`     // hang: which CPU
	Seconds int    `json:"seconds,omitempty"` // hang, stall: how long
}

// Response answers a Request. Error is empty on success.
type Response struct {
	Error  string           `json:"error,omitempty"`
	IDs    []uint32         `json:"ids,omitempty"`
	Probes []probe.Status   `json:"probes,omitempty"`
	Host   *probe.HostStats `json:"host,omitempty"`

	Machine    *vmm.Status  `json:"machine,omitempty"`
	FenceRules []string     `json:"fence_rules,omitempty"`
	FenceEvent *probe.Event `json:"fence_event,omitempty"` // the event a fence rule fenced on
	// WaitedNS is how long a fence request waited for every vCPU to be
	// out of KVM_RUN (Machine.FenceTookNS times the fence itself).
	WaitedNS int64 `json:"waited_ns,omitempty"`
	// SnapshotNS is how long a snapshot request took, the guest paused
	// for all of it.
	SnapshotNS int64 `json:"snapshot_ns,omitempty"`
	// DumpNS is how long a dump request took.
	DumpNS int64 `json:"dump_ns,omitempty"`
}
