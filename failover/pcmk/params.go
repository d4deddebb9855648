package pcmk

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/vmmnode"
)

// InstallDir is where `make install-pcmk` puts the vmm, tvpcmk, the guest
// kernel and the initramfs (the vmm finds the last two next to itself).
const InstallDir = "/usr/local/lib/tracevisor"

// param is one OCF parameter of the agent: the one place for its name,
// default and help (the meta-data and the parser both read this table).
type param struct {
	name     string
	def      string // "" with required false: empty or derived (see help)
	required bool
	unique   bool
	typ      string // the meta-data's content type: "" (string), integer, boolean
	short    string
	long     string
}

// params are the agent's parameters, in the order meta-data lists them.
var params = []param{
	{name: "name", unique: true, short: "VM name",
		long: "The VM's name: its page, its state directory and its tap's default name. Default: the resource's id (without a clone's :N)."},
	{name: "host_addr", required: true, short: "node end of the VM's link",
		long: "Address and prefix of the node's end of the VM's tap link (e.g. 10.80.1.1/24). The same on every node: each node's link is its own."},
	{name: "guest_addr", required: true, short: "the guest's address",
		long: "Address and prefix the guest gives its eth0 (e.g. 10.80.1.2/24), in host_addr's subnet; the guest routes through host_addr."},
	{name: "service_address", short: "the service address",
		long: "The address clients use (the one ocf:heartbeat:IPaddr2 moves). When set, start adds a DNAT rule in the node's network namespace from it to guest_addr (and turns on IPv4 forwarding); stop removes it. Empty: no DNAT."},
	{name: "service", def: vmmnode.DefaultService, short: "the watched service's comm",
		long: "The service's process name in the guest (at most 15 bytes) the probes and the rules watch."},
	{name: "port", def: "80", typ: "integer", short: "the service's TCP port",
		long: "The TCP port the service listens on in the guest: start waits until it accepts, monitor checks it (check_service)."},
	{name: "vmm", def: filepath.Join(InstallDir, "vmm"), short: "the vmm binary",
		long: "Path of the vmm executable; the guest kernel and initramfs are looked for next to it."},
	{name: "mem", def: vmmnode.DefaultMem, short: "guest RAM",
		long: "Guest memory (vmm run --mem), e.g. 256M."},
	{name: "tap", short: "the tap link's name",
		long: "The name of the VM's tap in the node's network namespace. Default: tv-NAME, cut to 15 bytes."},
	{name: "state_dir", def: "/run/tracevisor", short: "state directory",
		long: "Each VM keeps its API socket, pid files, log, events and standing verdict in STATE_DIR/NODE/NAME. fence_tracevisor reads the same tree: give both the same directory, one the fencing node can reach."},
	{name: "probes", short: "probes armed before boot",
		long: "Space-separated vmm --probe specs. Default: every signal, the service's exit, oom and panic from the catalogue."},
	{name: "fence_rules", def: "default", short: "fence rules the VMM arms",
		long: "'default': the failover rules' own (the VMM fences its guest by itself on an OOM, panic, oops, hung task, soft lockup or a fatal signal to the service); 'none'; or rules in the vmm's fence rule syntax separated by ';'."},
	{name: "fast_path", def: "true", typ: "boolean", short: "tell Pacemaker on the event",
		long: "true: run the fast path beside the VM: on a failure verdict it tells Pacemaker at once (crm_resource --fail) instead of waiting for the next monitor. false: the monitor alone finds the failure (the standing verdict, the fenced VMM, the service check)."},
	{name: "check_service", def: "true", typ: "boolean", short: "monitor checks the service too",
		long: "true: monitor also connects to the guest's service port, as ocf:heartbeat:apache checks apache; a failed connect is a failure. false: monitor asks only the VMM."},
	{name: "service_timeout", def: "10", typ: "integer", short: "seconds the service check waits",
		long: "How long monitor's service check waits for the guest to accept a connection, in seconds (1 to 300; keep it below the monitor's op timeout). A refused connection fails at once. A host busy booting other VMs can leave a healthy guest unanswering for seconds: a short wait turns that into a false failover. The fast path and the VMM's fence rules do not wait for it."},
	{name: "golden", def: "true", typ: "boolean", short: "start from the first boot's snapshot",
		long: "true: the instance's first boot is snapshotted once its service accepts (a golden snapshot in state_dir, the guest running on), and every later start on this node (a restart after a failure, a move back) restores it instead of booting: a guest as its first boot left it, serving in about a second instead of a boot's tens. The snapshot belongs to the boot's configuration: the vmm command line (guest_cmd, whose default holds the addresses, mem, tap, probes) and the guest kernel and initramfs files; another one boots afresh and takes a new snapshot, and so does a snapshot the vmm refuses (another vmm version or host). false: every start boots."},
	{name: "guest_cmd", short: "what the guest runs",
		long: "A shell script the guest runs instead of the default (busybox httpd serving NAME@NODE on port 80, a memory hog for tests, and a loop that keeps the guest up)."},
}

// Params are one resource instance's parameters, read from OCF_RESKEY_*.
type Params struct {
	Name       string
	HostAddr   netip.Prefix
	GuestAddr  netip.Prefix
	Service    netip.Addr // invalid: no DNAT
	Watch      string
	Port       int
	VMM        string
	Mem        string
	Tap        string
	StateDir   string
	Probes     []string
	FenceRules []string
	FastPath   bool
	Check      bool
	Golden     bool
	// ServiceWait bounds monitor's connect to the service (service_timeout).
	ServiceWait time.Duration
	GuestCmd    string

	// Resource is the resource's id for Pacemaker's tools (the primitive's
	// id, without a clone's :N); Node this node's name; Promotable whether
	// the resource is a promotable clone's instance.
	Resource   string
	Node       string
	Promotable bool
	// Interval is the monitor's interval in ms (0: a probe).
	Interval int64
}

// Env reads the process's environment variable, as os.Getenv. Tests give
// their own.
type Env func(key string) string

// reskey returns OCF_RESKEY_name, or the param's default.
func (e Env) reskey(name string) string {
	if v := e("OCF_RESKEY_" + name); v != "" {
		return v
	}
	for _, p := range params {
		if p.name == name {
			return p.def
		}
	}
	return ""
}

// ParseParams reads and checks the instance's parameters. The error says
// which parameter is wrong and is ConfigError (OCF_ERR_CONFIGURED) or
// ArgsError (OCF_ERR_ARGS: a required one missing).
func ParseParams(env Env) (Params, error) {
	var p Params
	// The interval first: a monitor with broken parameters still knows
	// whether it is a probe.
	p.Interval, _ = strconv.ParseInt(env("OCF_RESKEY_CRM_meta_interval"), 10, 64)
	p.Resource = instanceID(env("OCF_RESOURCE_INSTANCE"))
	p.Name = env.reskey("name")
	if p.Name == "" {
		p.Name = p.Resource
	}
	if p.Name == "" || len(p.Name) > 32 || !isWord(p.Name) {
		return p, configErr("name %q: want 1 to 32 letters, digits, - or _", p.Name)
	}
	for _, r := range params {
		if r.required && env("OCF_RESKEY_"+r.name) == "" {
			return p, &ParamError{Code: ErrArgs, Msg: fmt.Sprintf("parameter %s is required", r.name)}
		}
	}
	var err error
	if p.HostAddr, err = netip.ParsePrefix(env.reskey("host_addr")); err != nil || !p.HostAddr.Addr().Is4() {
		return p, configErr("host_addr %q: want an IPv4 address and prefix, e.g. 10.80.1.1/24", env.reskey("host_addr"))
	}
	if p.GuestAddr, err = netip.ParsePrefix(env.reskey("guest_addr")); err != nil || !p.GuestAddr.Addr().Is4() {
		return p, configErr("guest_addr %q: want an IPv4 address and prefix, e.g. 10.80.1.2/24", env.reskey("guest_addr"))
	}
	if p.GuestAddr.Masked() != p.HostAddr.Masked() || p.GuestAddr.Addr() == p.HostAddr.Addr() {
		return p, configErr("guest_addr %v and host_addr %v must be two addresses of one subnet", p.GuestAddr, p.HostAddr)
	}
	if s := env.reskey("service_address"); s != "" {
		if p.Service, err = netip.ParseAddr(s); err != nil || !p.Service.Is4() {
			return p, configErr("service_address %q: want an IPv4 address", s)
		}
	}
	p.Watch = env.reskey("service")
	if p.Watch == "" || len(p.Watch) > 15 || strings.ContainsAny(p.Watch, " \t\n/") {
		return p, configErr("service %q: want a process name of 1 to 15 bytes", p.Watch)
	}
	if p.Port, err = strconv.Atoi(env.reskey("port")); err != nil || p.Port < 1 || p.Port > 65535 {
		return p, configErr("port %q: want 1 to 65535", env.reskey("port"))
	}
	p.VMM, p.Mem, p.StateDir, p.GuestCmd = env.reskey("vmm"), env.reskey("mem"), env.reskey("state_dir"), env.reskey("guest_cmd")
	if !filepath.IsAbs(p.StateDir) {
		return p, configErr("state_dir %q: want an absolute path", p.StateDir)
	}
	if p.Tap = env.reskey("tap"); p.Tap == "" {
		p.Tap = "tv-" + p.Name
		if len(p.Tap) > 15 {
			p.Tap = p.Tap[:15]
		}
	}
	if len(p.Tap) > 15 || !isWord(p.Tap) {
		return p, configErr("tap %q: want a link name of 1 to 15 letters, digits, - or _", p.Tap)
	}
	if s := env.reskey("probes"); s != "" {
		p.Probes = strings.Fields(s)
	} else {
		p.Probes = vmmnode.DefaultProbes(p.Watch)
	}
	switch s := env.reskey("fence_rules"); s {
	case "default":
		p.FenceRules = Rules(p.Watch).FenceRules()
	case "none", "":
	default:
		for _, r := range strings.Split(s, ";") {
			if r = strings.TrimSpace(r); r != "" {
				p.FenceRules = append(p.FenceRules, r)
			}
		}
	}
	if p.FastPath, err = parseBool("fast_path", env.reskey("fast_path")); err != nil {
		return p, err
	}
	if p.Check, err = parseBool("check_service", env.reskey("check_service")); err != nil {
		return p, err
	}
	if p.Golden, err = parseBool("golden", env.reskey("golden")); err != nil {
		return p, err
	}
	if n, err := strconv.Atoi(env.reskey("service_timeout")); err != nil || n < 1 || n > 300 {
		return p, configErr("service_timeout %q: want 1 to 300 seconds", env.reskey("service_timeout"))
	} else {
		p.ServiceWait = time.Duration(n) * time.Second
	}
	p.Node = env("OCF_RESKEY_CRM_meta_on_node")
	if p.Node == "" {
		p.Node, _ = os.Hostname()
	}
	if p.Node == "" || strings.ContainsAny(p.Node, "/ \t\n") || p.Node == "." || p.Node == ".." {
		return p, configErr("node name %q cannot name a directory", p.Node)
	}
	p.Promotable = promotable(env)
	return p, nil
}

// Rules are the failover rules the agent's VMs are judged by: the
// embedded manager's defaults for the service (failover.DefaultRules), so
// a Pacemaker cluster and a tracevisor cluster call the same events
// failures.
func Rules(service string) failover.Rules { return failover.DefaultRules(service) }

// instanceID is a resource instance's primitive id: "vm1:0" → "vm1".
func instanceID(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "1", "on":
		return true, nil
	case "false", "no", "0", "off":
		return false, nil
	}
	return false, configErr("%s %q: want true or false", name, v)
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParamError is a bad parameter, with the OCF code it ends the action
// with.
type ParamError struct {
	Code ExitCode
	Msg  string
}

func (e *ParamError) Error() string { return e.Msg }

func configErr(format string, a ...any) error {
	return &ParamError{Code: ErrConfigured, Msg: fmt.Sprintf(format, a...)}
}

// promotable reports whether the instance belongs to a promotable clone:
// Pacemaker passes the clone's promoted-max (and its old name
// master-max), and promotable only where the clone sets it explicitly.
func promotable(env Env) bool {
	if v := env("OCF_RESKEY_CRM_meta_promotable"); v != "" {
		return v == "true"
	}
	for _, k := range []string{"OCF_RESKEY_CRM_meta_promoted_max", "OCF_RESKEY_CRM_meta_master_max"} {
		if n, err := strconv.Atoi(env(k)); err == nil && n > 0 {
			return true
		}
	}
	return false
}
