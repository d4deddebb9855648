// Package pcmklab stands up a real Pacemaker + Corosync cluster on one
// machine: each node is a network, mount and UTS namespace of its own,
// linked by veth pairs to a bridge in a "switch" namespace, where a
// client sits. Nothing touches the host's own interfaces or addresses,
// and nothing is installed into the host's file system: each node sees
// private copies of /etc/corosync, /var/lib/pacemaker, /run, its logs and
// /dev/shm, and the project's agents through overlays on the OCF root and
// /usr/sbin.
//
// The layout (Addr):
//
//	switch namespace: br0 10.79.0.1/24 (the client)
//	node i:           uplink 10.79.0.(11+i)/24, hostname the node's name
//
// Corosync runs knet over UDP with a shared key, two_node quorum and a
// short token (Config.Token); the CIB is seeded before the daemons start
// (Config.CIB, crm shell syntax), with dc-deadtime 2 s, so nodes are up
// in seconds. Everything needs root, pacemaker, corosync, crmsh, nsenter
// and unshare (Unusable says which is missing).
package pcmklab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tools the lab runs; Unusable names any that is missing.
var tools = []string{"corosync", "pacemakerd", "cibadmin", "crm", "crm_mon", "crm_resource", "nsenter", "unshare", "ip", "mount"}

// Unusable says why a lab cannot run here, or "".
func Unusable() string {
	if os.Geteuid() != 0 {
		return "not root (network and mount namespaces are needed)"
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(missing, ", ") + " (apt-get install pacemaker corosync crmsh fence-agents resource-agents util-linux)"
	}
	return ""
}

// Config is a lab for New.
type Config struct {
	// Nodes names the nodes (default n1, n2); at most 8.
	Nodes []string
	// Dir holds every node's files (required; a test's TempDir).
	Dir string
	// CIB is the cluster's configuration in crm shell syntax, loaded into
	// the seed CIB (properties, resources, constraints). The lab adds
	// dc-deadtime=2s unless CIB sets it.
	CIB string
	// Agents, when set, is a directory with ocf/PROVIDER/AGENT and
	// sbin/fence_AGENT files: they are laid over /usr/lib/ocf/resource.d
	// and /usr/sbin in every node.
	Agents string
	// Token is corosync's token timeout (default 1 s).
	Token time.Duration
}

// Lab is a running (or startable) cluster of namespace nodes.
type Lab struct {
	cfg    Config
	id     string
	nsDir  string // private bind mount holding the mount and UTS namespace files
	sw     string // the switch namespace
	nodes  []*Node
	byName map[string]*Node

	mu     sync.Mutex
	closed bool
}

// Node is one cluster node.
type Node struct {
	Name  string
	Index int
	Addr  netip.Addr // its uplink's address
	lab   *Lab
	netns string
	dir   string

	mu    sync.Mutex
	procs []*exec.Cmd // corosync, pacemakerd
}

// SwitchAddr is the client's address in the switch namespace.
var SwitchAddr = netip.MustParseAddr("10.79.0.1")

// Addr is node i's uplink address.
func Addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 79, 0, byte(11 + i)}) }

// New makes the namespaces, links and node files; nothing runs until
// Start. Close undoes everything.
func New(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if why := Unusable(); why != "" {
		return nil, errors.New("pcmklab: " + why)
	}
	if cfg.Dir == "" {
		return nil, errors.New("pcmklab: a lab needs a directory")
	}
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []string{"n1", "n2"}
	}
	if len(cfg.Nodes) > 8 {
		return nil, fmt.Errorf("pcmklab: %d nodes, at most 8", len(cfg.Nodes))
	}
	if cfg.Token <= 0 {
		cfg.Token = time.Second
	}
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{cfg: cfg, id: hex.EncodeToString(b), byName: map[string]*Node{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for i, name := range cfg.Nodes {
		if !nodeName.MatchString(name) {
			return nil, fmt.Errorf("pcmklab: node name %q: want 1 to 16 letters, digits, - or _", name)
		}
		if l.byName[name] != nil {
			return nil, fmt.Errorf("pcmklab: node %q named twice", name)
		}
		n := &Node{Name: name, Index: i, Addr: Addr(i), lab: l, netns: "tvpl" + l.id + "-" + name,
			dir: filepath.Join(cfg.Dir, "nodes", name)}
		l.nodes = append(l.nodes, n)
		l.byName[name] = n
	}
	if err := l.network(ctx); err != nil {
		return nil, err
	}
	if err := l.files(); err != nil {
		return nil, err
	}
	if err := l.mountNamespaces(ctx); err != nil {
		return nil, err
	}
	if err := l.seedCIB(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Nodes returns the lab's nodes in order.
func (l *Lab) Nodes() []*Node { return l.nodes }

// Node returns the node named name (nil if none).
func (l *Lab) Node(name string) *Node { return l.byName[name] }

// Switch returns the switch namespace's name (ip netns), where a client
// reaches the nodes' addresses.
func (l *Lab) Switch() string { return l.sw }

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// network makes the switch namespace with its bridge and each node's
// namespace with a veth uplink into it.
func (l *Lab) network(ctx context.Context) error {
	l.sw = "tvpl" + l.id + "-sw"
	steps := [][]string{
		{"netns", "add", l.sw},
		{"-n", l.sw, "link", "set", "lo", "up"},
		{"-n", l.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", l.sw, "addr", "add", SwitchAddr.String() + "/24", "dev", "br0"},
		{"-n", l.sw, "link", "set", "br0", "up"},
	}
	for _, n := range l.nodes {
		port := fmt.Sprintf("port%d", n.Index)
		steps = append(steps,
			[]string{"netns", "add", n.netns},
			[]string{"-n", n.netns, "link", "set", "lo", "up"},
			[]string{"-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "uplink", "netns", n.netns},
			[]string{"-n", l.sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", n.netns, "addr", "add", n.Addr.String() + "/24", "dev", "uplink"},
			[]string{"-n", n.netns, "link", "set", "uplink", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("pcmklab: network: %w", err)
		}
	}
	return nil
}

// Close stops every daemon and process of the nodes and removes the
// namespaces and mounts. Files in Dir stay (the logs).
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	var errs []error
	for _, n := range l.nodes {
		n.killAll()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range l.nodes {
		for _, f := range []string{n.mntFile(), n.utsFile()} {
			if _, err := os.Stat(f); err == nil {
				syscall.Unmount(f, syscall.MNT_DETACH)
			}
		}
		if err := run(ctx, "ip", "netns", "delete", n.netns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if l.sw != "" {
		if err := run(ctx, "ip", "netns", "delete", l.sw); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if l.nsDir != "" {
		syscall.Unmount(l.nsDir, syscall.MNT_DETACH)
	}
	return errors.Join(errs...)
}

// nodeName is what a node may be called: it names files and namespaces.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// Start starts every node's daemons and waits (until ctx ends) for every
// node to be online with a DC elected.
func (l *Lab) Start(ctx context.Context) error {
	for _, n := range l.nodes {
		if err := n.Start(ctx); err != nil {
			return err
		}
	}
	_, err := l.Await(ctx, "every node online", func(s Status) bool {
		return s.DC != "" && len(s.Online) == len(l.nodes)
	})
	return err
}

// Await polls crm_mon on the first node that answers until cond holds
// or ctx ends; it returns the status that held.
func (l *Lab) Await(ctx context.Context, what string, cond func(Status) bool) (Status, error) {
	var last error
	for {
		for _, n := range l.nodes {
			s, err := n.Status(ctx)
			if err != nil {
				last = err
				continue
			}
			if cond(s) {
				return s, nil
			}
			last = fmt.Errorf("last status: %+v", s)
			break
		}
		select {
		case <-ctx.Done():
			return Status{}, fmt.Errorf("pcmklab: waiting for %s: %w (%v)", what, context.Cause(ctx), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Peer returns the other node of a two-node lab ("" otherwise).
func (l *Lab) Peer(node string) string {
	if len(l.nodes) != 2 {
		return ""
	}
	if l.nodes[0].Name == node {
		return l.nodes[1].Name
	}
	return l.nodes[0].Name
}

// LinkAgents lays out dir for Config.Agents: the tvpcmk binary linked as
// ocf/tracevisor/vm and as sbin/fence_tracevisor. The paths to both are
// opened to every user: Pacemaker's fencer runs a fence agent's
// meta-data as hacluster, and ocf-tester runs the agent's as nobody.
func LinkAgents(dir, tvpcmk string) error {
	bin, err := filepath.Abs(tvpcmk)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("pcmklab: %w (make builds build/tvpcmk)", err)
	}
	for _, p := range []string{"ocf/tracevisor/vm", "sbin/fence_tracevisor"} {
		path := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(bin, path); err != nil {
			return err
		}
	}
	// A test's TempDir and its parent are 0700: open them, but nothing
	// outside the system's temporary directory.
	if tmp := os.TempDir(); strings.HasPrefix(dir, tmp+"/") {
		for d := dir; d != tmp && d != "/"; d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
				os.Chmod(d, st.Mode().Perm()|0o055)
			}
		}
	}
	return nil
}
