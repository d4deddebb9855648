package vmmnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/golden"
	"github.com/tracevisor/tracevisor/failover/netaddr"
	"github.com/tracevisor/tracevisor/internal/netns"
	"github.com/tracevisor/tracevisor/vmm"
)

// Defaults for Config.
const (
	DefaultBootTimeout = 5 * time.Minute
	DefaultStopTimeout = 30 * time.Second
	DefaultMem         = "256M"
	DefaultService     = "httpd"
)

// Config is a cluster of vmm nodes for New.
type Config struct {
	// VMM is the vmm binary (required).
	VMM string
	// Env is added to each vmm's environment (e.g. TRACEVISOR_BUILD=DIR).
	Env []string
	// Dir holds each node's API socket, events file and output (required;
	// a test's TempDir).
	Dir string
	// Nodes names the nodes; node i gets netaddr.NodeAddrs(i). The first
	// is the active one.
	Nodes []string
	// NamespacePrefix names the cluster's namespace (default "tvcluster-").
	NamespacePrefix string
	// Service is the service address (default netaddr.DefaultService);
	// Watch the service's comm in the guest (default "httpd").
	Service netip.Addr
	Watch   string
	// Probes are each vmm's --probe flags (default DefaultProbes(Watch)).
	Probes []string
	// ExtraArgs are added to each `vmm run` (e.g. --fence-on RULE).
	ExtraArgs []string
	// FenceRules (api.FenceRuleSyntax; failover.Rules.FenceRules gives a
	// manager's rules in that form) are armed in each vmm through its API
	// as soon as it boots: the VMM then fences its guest by itself on a
	// matching event, before any other process has seen it, and the
	// manager's fence finds it fenced. Empty: only the manager fences.
	FenceRules []string
	// Mem is each guest's RAM (default DefaultMem; HogMem for a cluster
	// whose guests are driven into OOM).
	Mem string
	// BootTimeout bounds each boot until httpd answers, StopTimeout each
	// stop of a vmm.
	BootTimeout, StopTimeout time.Duration
	// BootSlots, when not nil, is shared by clusters on one host: each
	// boot (a vmm's start until its httpd answers) holds one of its
	// cap(BootSlots) slots. On the emulating host a boot keeps a core busy
	// for tens of seconds (its kernel runs emulated), and two at once on
	// two cores starve the running guests until a heartbeat takes them
	// for dead. BootTimeout counts from the slot; the wait for it is
	// bounded by the caller's context.
	BootSlots chan struct{}
	// Golden keeps each node's first boot as a snapshot (a golden.Store
	// in GoldenDir, taken once its httpd answers; the guest runs on) and
	// starts the node by restoring it whenever the store has one for its
	// boot configuration (`vmm run --restore`): a guest as its first boot
	// left it, back in about a second instead of a boot's tens. The
	// snapshot's probes come back with it; the fence rules are armed
	// again. A restore that fails is followed by a boot, which takes a new
	// snapshot (Node.RestoreErr says why); a snapshot that fails leaves
	// the node to boot on recovery (Node.GoldenErr).
	Golden bool
	// GoldenDir is the golden store (default Dir/golden: this cluster's
	// own, so its first Start boots unless Dir held an earlier
	// cluster's). A directory shared by clusters whose nodes boot alike
	// (the same names, Mem, Probes, ExtraArgs and guest build) lets
	// every cluster after the first start from restores; clusters
	// running at once wait for each other's boot (golden.Store.Lock).
	// Setting it implies Golden.
	GoldenDir string
	// KeepCores writes each failed guest as an ELF core (NAME.GEN.core in
	// Dir, `vmm dump`) before its recovery ends the fenced vmm, for a
	// post-mortem with gdb and the guest's vmlinux; Node.Cores lists them.
	// A dump that fails does not stop the recovery (Node.CoreErr).
	KeepCores bool
}

// Cluster is a cluster of vmm nodes in a network namespace of its own. It
// is the failover.Actions a Manager needs. Safe for concurrent use.
type Cluster struct {
	cfg     Config
	ns      *netaddr.Namespace
	nsName  netns.NS // the same namespace, for ip netns
	service *netaddr.Service
	client  *Client
	nodes   map[string]*Node
	order   []*Node
	golden  golden.Store // Config.GoldenDir's

	closeOnce sync.Once
	closeErr  error
}

// New makes the cluster's namespace and its nodes; nothing boots until
// Start. Close undoes it.
func New(cfg Config) (*Cluster, error) {
	if cfg.VMM == "" || cfg.Dir == "" {
		return nil, errors.New("vmmnode: a cluster needs the vmm binary and a directory")
	}
	if len(cfg.Nodes) < 1 {
		return nil, errors.New("vmmnode: a cluster needs nodes")
	}
	// Absolute: the vmm's API takes absolute paths (snapshots, cores).
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("vmmnode: %w", err)
	}
	cfg.Dir = dir
	if cfg.GoldenDir == "" {
		cfg.GoldenDir = filepath.Join(dir, "golden")
	} else if cfg.Golden = true; !filepath.IsAbs(cfg.GoldenDir) {
		if cfg.GoldenDir, err = filepath.Abs(cfg.GoldenDir); err != nil {
			return nil, fmt.Errorf("vmmnode: %w", err)
		}
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = "tvcluster-"
	}
	if !cfg.Service.IsValid() {
		cfg.Service = netaddr.DefaultService
	}
	if cfg.Watch == "" {
		cfg.Watch = DefaultService
	}
	if cfg.Probes == nil {
		cfg.Probes = DefaultProbes(cfg.Watch)
	}
	if cfg.Mem == "" {
		cfg.Mem = DefaultMem
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = DefaultBootTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	c := &Cluster{cfg: cfg, nodes: map[string]*Node{}, golden: golden.Store{Dir: cfg.GoldenDir}}
	links := map[string]string{}
	for i, name := range cfg.Nodes {
		if name == "" || len(name) > 32 || !isWord(name) {
			return nil, fmt.Errorf("vmmnode: node name %q: want 1 to 32 letters, digits, - or _", name)
		}
		if c.nodes[name] != nil {
			return nil, fmt.Errorf("vmmnode: node %q named twice", name)
		}
		addrs, err := netaddr.NodeAddrs(i)
		if err != nil {
			return nil, err
		}
		n := &Node{Name: name, Addrs: addrs, Sock: filepath.Join(cfg.Dir, name+".sock"), c: c}
		c.nodes[name], c.order = n, append(c.order, n)
		links[name] = addrs.Link
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vmmnode: %w", err)
	}
	// `ip netns add` rather than netaddr.Create: ip first makes /run/netns
	// a shared mount of its own, so a later `ip netns add` (any other user
	// of ip netns) cannot hide this namespace's mount, which would leave
	// the namespace undeletable.
	name, err := netns.New(cfg.NamespacePrefix)
	if err != nil {
		return nil, fmt.Errorf("vmmnode: %w", err)
	}
	ns, err := netaddr.Open(string(name))
	if err != nil {
		name.Delete()
		return nil, err
	}
	c.ns, c.nsName = ns, name
	c.client = NewClient(ns)
	c.service = &netaddr.Service{Mover: netaddr.NewMover(ns), Addr: cfg.Service, Links: links}
	return c, nil
}

// isWord reports whether s is letters, digits, - and _ only (it goes into
// a file name and the guest's shell script).
func isWord(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Start boots every node at once, waits until each one's httpd answers on
// its own address, and gives the service address to the first node.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.eachNode(func(n *Node) error { return n.boot(ctx) }); err != nil {
		return err
	}
	return c.MoveAddress(ctx, c.order[0].Name)
}

// Namespace returns the cluster's namespace.
func (c *Cluster) Namespace() *netaddr.Namespace { return c.ns }

// Client returns an HTTP client that makes its requests from the
// cluster's namespace.
func (c *Cluster) Client() *Client { return c.client }

// Service returns the service address.
func (c *Cluster) Service() netip.Addr { return c.cfg.Service }

// Nodes returns the nodes' names, the active one first.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.cfg.Nodes...) }

// Node returns the named node, or nil.
func (c *Cluster) Node(name string) *Node { return c.nodes[name] }

// node returns the named node or an error.
func (c *Cluster) node(name string) (*Node, error) {
	n := c.nodes[name]
	if n == nil {
		return nil, fmt.Errorf("vmmnode: no node %q in the cluster", name)
	}
	return n, nil
}

// Sources returns each node's probe event stream (its vmm's API), for a
// failover.ProbeDetector. A recovered node's fresh vmm serves the same
// socket, so the detector's reconnect finds it.
func (c *Cluster) Sources() []failover.Source {
	var s []failover.Source
	for _, n := range c.order {
		s = append(s, failover.APISource(n.Name, n.Sock))
	}
	return s
}

// HeartbeatTargets returns what a heartbeat checks of each node, as
// Pacemaker's agents would: its httpd on its own address (from the
// namespace) and that its vmm runs (its API socket accepts).
func (c *Cluster) HeartbeatTargets() []failover.Target {
	var t []failover.Target
	for _, n := range c.order {
		t = append(t,
			failover.Target{Node: n.Name, Kind: failover.ServiceFailure, Check: c.client.HTTPCheck(n.Addrs.Guest.Addr().String())},
			failover.Target{Node: n.Name, Kind: failover.VMFailure, Check: failover.VMMCheck(n.Sock)})
	}
	return t
}

// TCPHeartbeatTargets are HeartbeatTargets with a TCP connect to each
// node's httpd instead of an HTTP request: for a heartbeat that polls
// often, whose every HTTP request would cost a slow guest a fork of httpd
// it waits for.
func (c *Cluster) TCPHeartbeatTargets() []failover.Target {
	var t []failover.Target
	for _, n := range c.order {
		t = append(t,
			failover.Target{Node: n.Name, Kind: failover.ServiceFailure, Check: c.client.TCPCheck(net.JoinHostPort(n.Addrs.Guest.Addr().String(), "80"))},
			failover.Target{Node: n.Name, Kind: failover.VMFailure, Check: failover.VMMCheck(n.Sock)})
	}
	return t
}

// AwaitServing returns when the service address first answered as node:
// the manager's Config.AwaitServing.
func (c *Cluster) AwaitServing(ctx context.Context, node string) (time.Time, error) {
	return c.client.AwaitAnswer(ctx, c.cfg.Service.String(), node, 5*time.Millisecond, 2*time.Second)
}

// Fence fences node through its vmm's control API: it returns once every
// vCPU of its guest is stopped for good (failover.Actions).
func (c *Cluster) Fence(ctx context.Context, node string) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	if n.PID() == 0 {
		// No vmm, no guest: nothing can answer for it.
		return nil
	}
	if _, err := fence(ctx, n.Sock, "failover"); err != nil {
		if n.exitedWithin(ctx, time.Second) {
			return nil // the vmm ended (a guest panic ends it) as we asked: nothing runs
		}
		return fmt.Errorf("vmmnode: fence %s: %w", node, err)
	}
	return nil
}

// MachineStatus returns the machine status of node's vmm (running,
// fenced, ended).
func (c *Cluster) MachineStatus(ctx context.Context, node string) (*vmm.Status, error) {
	n, err := c.node(node)
	if err != nil {
		return nil, err
	}
	if n.PID() == 0 {
		return nil, fmt.Errorf("vmmnode: %s: %w", node, errNoVMM)
	}
	return status(ctx, n.Sock)
}

// MoveAddress points the service address at node's link
// (failover.Actions).
func (c *Cluster) MoveAddress(ctx context.Context, to string) error {
	return c.service.MoveAddress(ctx, to)
}

// CurrentNode returns the node the service address's route points at.
func (c *Cluster) CurrentNode() (string, error) {
	link, err := c.service.Mover.CurrentLink(c.cfg.Service)
	if err != nil {
		return "", err
	}
	for _, n := range c.order {
		if n.Addrs.Link == link {
			return n.Name, nil
		}
	}
	return "", fmt.Errorf("vmmnode: the service route points at %s, no node's link", link)
}

// Recover stops node's fenced vmm, boots a fresh one (restores the node's
// golden snapshot, with Config.Golden) and returns once its httpd answers
// on the node's own address (failover.Actions). Every kind of failure gets
// a fresh guest: a fenced guest cannot be resumed.
func (c *Cluster) Recover(ctx context.Context, node string, why failover.Kind) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	if c.cfg.KeepCores {
		n.keepCore(ctx)
	}
	if err := n.stop(ctx, "recover after a "+why.String()+" failure"); err != nil {
		return err
	}
	return n.boot(ctx)
}

// StartHog starts node's memory hog (GuestScript): it grows until the
// guest's OOM killer ends it. It returns once the guest's driver sent the
// trigger signal.
func (c *Cluster) StartHog(ctx context.Context, node string) error {
	return c.Inject(ctx, node, api.Injection{Kind: "signal", Comm: HogTrigger, Signal: 15})
}

// Inject causes a fault in node's guest through its vmm (`vmm inject`).
func (c *Cluster) Inject(ctx context.Context, node string, in api.Injection) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	return inject(ctx, n.Sock, in)
}

// Close stops every vmm (API stop, SIGTERM, SIGKILL, with deadlines) and
// deletes the namespace.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StopTimeout+killWait)
		defer cancel()
		stopped := c.eachNode(func(n *Node) error { return n.stop(ctx, "cluster closed") })
		c.closeErr = errors.Join(stopped, c.ns.Close(), c.nsName.Delete())
	})
	return c.closeErr
}

// eachNode runs fn for every node at once and joins their errors.
func (c *Cluster) eachNode(fn func(*Node) error) error {
	errs := make([]error, len(c.order))
	var wg sync.WaitGroup
	for i, n := range c.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var _ failover.Actions = (*Cluster)(nil)
