package pcmklab

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (n *Node) mntFile() string { return filepath.Join(n.lab.nsDir, "mnt-"+n.Name) }
func (n *Node) utsFile() string { return filepath.Join(n.lab.nsDir, "uts-"+n.Name) }

// Dir is the node's own files: its logs (log-pacemaker, log-corosync,
// corosync.out, pacemakerd.out), its CIB (var-lib-pacemaker/cib).
func (n *Node) Dir() string { return n.dir }

// NetNS is the node's network namespace (ip netns).
func (n *Node) NetNS() string { return n.netns }

// privateDirs are bind-mounted over their host paths in each node, from
// the node's own copies.
var privateDirs = []struct{ own, at string }{
	{"etc-corosync", "/etc/corosync"},
	{"var-lib-corosync", "/var/lib/corosync"},
	{"var-lib-pacemaker", "/var/lib/pacemaker"},
	{"log-pacemaker", "/var/log/pacemaker"},
	{"log-corosync", "/var/log/corosync"},
}

// pacemakerIDs are the uid of hacluster and the gid of haclient, who own
// Pacemaker's state and logs.
func pacemakerIDs() (uid, gid int, err error) {
	hacl, err := user.Lookup("hacluster")
	if err != nil {
		return 0, 0, fmt.Errorf("pcmklab: %w (is pacemaker installed?)", err)
	}
	grp, err := user.LookupGroup("haclient")
	if err != nil {
		return 0, 0, fmt.Errorf("pcmklab: %w (is pacemaker installed?)", err)
	}
	uid, _ = strconv.Atoi(hacl.Uid)
	gid, _ = strconv.Atoi(grp.Gid)
	return uid, gid, nil
}

// files writes every node's directories, corosync.conf, the shared
// authkey and the seeded CIB.
func (l *Lab) files() error {
	uid, gid, err := pacemakerIDs()
	if err != nil {
		return err
	}
	key := make([]byte, 256)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	conf := l.corosyncConf()
	for _, n := range l.nodes {
		for _, d := range privateDirs {
			if err := os.MkdirAll(filepath.Join(n.dir, d.own), 0o755); err != nil {
				return err
			}
		}
		for _, d := range []string{"run/lock", "run/resource-agents", "run/crm"} {
			if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
				return err
			}
		}
		pm := filepath.Join(n.dir, "var-lib-pacemaker")
		for _, d := range []string{"cib", "pengine", "blackbox", "cores"} {
			p := filepath.Join(pm, d)
			if err := os.MkdirAll(p, 0o750); err != nil {
				return err
			}
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
		logs := filepath.Join(n.dir, "log-pacemaker")
		if err := os.Chown(logs, uid, gid); err != nil {
			return err
		}
		os.Chmod(logs, 0o770)
		etc := filepath.Join(n.dir, "etc-corosync")
		if err := os.WriteFile(filepath.Join(etc, "authkey"), key, 0o400); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(etc, "corosync.conf"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// corosyncConf is every node's corosync.conf.
func (l *Lab) corosyncConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, `totem {
    version: 2
    cluster_name: tvlab%s
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    token: %d
    interface {
        linknumber: 0
        knet_transport: udp
    }
}
nodelist {
`, l.id, l.cfg.Token.Milliseconds())
	for _, n := range l.nodes {
		fmt.Fprintf(&b, "    node {\n        name: %s\n        nodeid: %d\n        ring0_addr: %s\n    }\n", n.Name, n.Index+1, n.Addr)
	}
	b.WriteString(`}
quorum {
    provider: corosync_votequorum
`)
	if len(l.nodes) == 2 {
		b.WriteString("    two_node: 1\n")
	}
	b.WriteString(`}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
    to_stderr: no
    timestamp: on
}
system {
    move_to_root_cgroup: no
}
`)
	return b.String()
}

// seedCIB builds the CIB the nodes start from — an empty one with the
// configuration loaded by crmsh offline (CIB_file), so no election wait
// and no live reconfiguration is needed — and installs it in every node.
// crmsh checks each agent's meta-data, so it runs inside the first node,
// where the project's agents are laid over the OCF root.
func (l *Lab) seedCIB(ctx context.Context) error {
	seed, err := l.buildCIB(ctx)
	if err != nil {
		return err
	}
	uid, gid, err := pacemakerIDs()
	if err != nil {
		return err
	}
	for _, n := range l.nodes {
		cib := filepath.Join(n.dir, "var-lib-pacemaker", "cib", "cib.xml")
		if err := os.WriteFile(cib, seed, 0o600); err != nil {
			return err
		}
		if err := os.Chown(cib, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) buildCIB(ctx context.Context) ([]byte, error) {
	dir := filepath.Join(l.cfg.Dir, "seed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	empty, err := exec.Command("cibadmin", "--empty").Output()
	if err != nil {
		return nil, fmt.Errorf("pcmklab: cibadmin --empty: %w", err)
	}
	cibFile := filepath.Join(dir, "cib.xml")
	if err := os.WriteFile(cibFile, empty, 0o600); err != nil {
		return nil, err
	}
	cfg := l.cfg.CIB
	if !strings.Contains(cfg, "dc-deadtime") {
		if strings.Contains(cfg, "property cib-bootstrap-options:") {
			cfg = strings.Replace(cfg, "property cib-bootstrap-options:", "property cib-bootstrap-options: dc-deadtime=2s", 1)
		} else {
			cfg = "property cib-bootstrap-options: dc-deadtime=2s\n" + cfg
		}
	}
	crmFile := filepath.Join(dir, "seed.crm")
	if err := os.WriteFile(crmFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := l.nodes[0].Command(ctx, "crm", "configure", "load", "update", crmFile)
	cmd.Env = append(os.Environ(), "CIB_file="+cibFile, "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pcmklab: load the CIB: %w: %s", err, out)
	}
	return os.ReadFile(cibFile)
}

// mountNamespaces makes each node's persistent mount and UTS namespaces
// (files in a private bind mount, entered with nsenter) with its private
// directories, a fresh sysfs for its network namespace, a private
// /dev/shm and the agents' overlays.
func (l *Lab) mountNamespaces(ctx context.Context) error {
	l.nsDir = filepath.Join(l.cfg.Dir, "ns")
	if err := os.MkdirAll(l.nsDir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(l.nsDir, l.nsDir, "", syscall.MS_BIND, ""); err != nil {
		l.nsDir = ""
		return fmt.Errorf("pcmklab: bind %s: %w", l.nsDir, err)
	}
	if err := syscall.Mount("", l.nsDir, "", syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("pcmklab: make %s private: %w", l.nsDir, err)
	}
	for _, n := range l.nodes {
		for _, f := range []string{n.mntFile(), n.utsFile()} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				return err
			}
		}
		var s []string
		// The copy of the host's mounts holds every ip netns file and
		// the other nodes' namespace files: drop them here, so they
		// pin nothing of anyone else's.
		s = append(s, "umount -R -l /run/netns 2>/dev/null", "umount -l "+l.nsDir+" 2>/dev/null", "set -e")
		for _, d := range privateDirs {
			s = append(s, fmt.Sprintf("mount --bind %s %s", filepath.Join(n.dir, d.own), d.at))
		}
		s = append(s, "mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm",
			"mount --bind "+filepath.Join(n.dir, "run")+" /run",
			"mount -t sysfs sysfs /sys")
		if a := l.cfg.Agents; a != "" {
			s = append(s,
				fmt.Sprintf("mount -t overlay overlay -o lowerdir=%s:/usr/lib/ocf/resource.d /usr/lib/ocf/resource.d", filepath.Join(a, "ocf")),
				fmt.Sprintf("mount -t overlay overlay -o lowerdir=%s:/usr/sbin /usr/sbin", filepath.Join(a, "sbin")))
		}
		s = append(s, "hostname "+n.Name)
		if err := run(ctx, "nsenter", "--net=/run/netns/"+n.netns, "unshare", "--mount="+n.mntFile(),
			"--uts="+n.utsFile(), "--propagation", "private", "sh", "-c", strings.Join(s, "\n")); err != nil {
			return fmt.Errorf("pcmklab: node %s's namespaces: %w", n.Name, err)
		}
	}
	return nil
}

// Command returns a command that runs in the node's namespaces.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	a := append([]string{"--net=/run/netns/" + n.netns, "--mount=" + n.mntFile(), "--uts=" + n.utsFile(), "--", name}, args...)
	return exec.CommandContext(ctx, "nsenter", a...)
}

// Output runs a command in the node and returns its stdout; the error
// carries its stderr.
func (n *Node) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := n.Command(ctx, name, args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s on %s: %s %s: %w: %s", name, n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out, nil
}

// Start starts corosync and pacemakerd on the node, after wiping what
// killed daemons leave behind (libqb's ring files in /dev/shm fill it
// within a few kill cycles).
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.procs) > 0 {
		return fmt.Errorf("pcmklab: %s runs already", n.Name)
	}
	if _, err := n.Output(ctx, "sh", "-c", "rm -rf /dev/shm/* /run/resource-agents/* /run/crm/*; mkdir -p /run/lock /run/resource-agents /run/crm"); err != nil {
		return err
	}
	for _, d := range []struct{ name, out string }{{"corosync", "corosync.out"}, {"pacemakerd", "pacemakerd.out"}} {
		f, err := os.OpenFile(filepath.Join(n.dir, d.out), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		args := []string{}
		if d.name == "corosync" {
			args = []string{"-f"}
		}
		cmd := n.Command(context.Background(), d.name, args...)
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Start()
		f.Close()
		if err != nil {
			return fmt.Errorf("pcmklab: start %s on %s: %w", d.name, n.Name, err)
		}
		go cmd.Wait()
		n.procs = append(n.procs, cmd)
		if d.name == "corosync" {
			if err := n.awaitCorosync(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitCorosync waits until corosync answers on the node.
func (n *Node) awaitCorosync(ctx context.Context) error {
	for {
		if _, err := n.Output(ctx, "corosync-cfgtool", "-s"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pcmklab: corosync on %s did not come up: %w (its log: %s)", n.Name, context.Cause(ctx),
				filepath.Join(n.dir, "log-corosync", "corosync.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// killAll SIGKILLs every process in the node's network namespace (its
// daemons, resource agents and VMs) and waits for its own daemons.
func (n *Node) killAll() {
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, p := range procs {
		if p.Process != nil {
			p.Process.Kill()
		}
	}
	for i := 0; i < 3; i++ {
		out, _ := exec.Command("ip", "netns", "pids", n.netns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill is the node's crash: every process of it SIGKILLed and its uplink
// down, as a host that lost power neither runs nor answers ARP.
func (n *Node) Kill(ctx context.Context) error {
	n.killAll()
	return run(ctx, "ip", "-n", n.netns, "link", "set", "uplink", "down")
}

// Revive brings a killed node back: its uplink up with its own address
// only, its daemons started again.
func (n *Node) Revive(ctx context.Context) error {
	// A host that comes back has only its own address: the service
	// addresses IPaddr2 held when it died are gone with its memory.
	for _, args := range [][]string{
		{"-n", n.netns, "addr", "flush", "dev", "uplink"},
		{"-n", n.netns, "addr", "add", n.Addr.String() + "/24", "dev", "uplink"},
		{"-n", n.netns, "link", "set", "uplink", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return n.Start(ctx)
}

// Status is what crm_mon says of the cluster.
type Status struct {
	DC     string
	Online []string
	// Resources maps a resource id to the nodes running it, with the
	// role ("Started", "Promoted", "Unpromoted").
	Resources map[string][]Placement
}

// Placement is one instance of a resource on a node.
type Placement struct {
	Node, Role string
	Failed     bool
	// Pending is the operation in progress ("Starting", "Stopping", ...):
	// a resource being started shows as Started with Pending "Starting"
	// until its start returns.
	Pending string
}

// maxMonOutput bounds crm_mon's XML read.
const maxMonOutput = 4 << 20

// Status asks the node's crm_mon.
func (n *Node) Status(ctx context.Context) (Status, error) {
	out, err := n.Output(ctx, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return Status{}, err
	}
	if len(out) > maxMonOutput {
		return Status{}, errors.New("pcmklab: crm_mon output too large")
	}
	return parseMon(out)
}

func parseMon(out []byte) (Status, error) {
	var r struct {
		Summary struct {
			DC struct {
				Present string `xml:"present,attr"`
				Name    string `xml:"name,attr"`
			} `xml:"current_dc"`
		} `xml:"summary"`
		Nodes []struct {
			Name   string `xml:"name,attr"`
			Online string `xml:"online,attr"`
		} `xml:"nodes>node"`
		Resources []monResource `xml:"resources>resource"`
		Clones    []struct {
			Resources []monResource `xml:"resource"`
		} `xml:"resources>clone"`
		Groups []struct {
			Resources []monResource `xml:"resource"`
		} `xml:"resources>group"`
	}
	if err := xml.Unmarshal(out, &r); err != nil {
		return Status{}, fmt.Errorf("pcmklab: crm_mon: %w", err)
	}
	s := Status{Resources: map[string][]Placement{}}
	if r.Summary.DC.Present == "true" {
		s.DC = r.Summary.DC.Name
	}
	for _, n := range r.Nodes {
		if n.Online == "true" {
			s.Online = append(s.Online, n.Name)
		}
	}
	add := func(rs []monResource) {
		for _, x := range rs {
			for _, n := range x.Nodes {
				s.Resources[x.ID] = append(s.Resources[x.ID], Placement{Node: n.Name, Role: x.Role, Failed: x.Failed == "true", Pending: x.Pending})
			}
		}
	}
	add(r.Resources)
	for _, c := range r.Clones {
		add(c.Resources)
	}
	for _, g := range r.Groups {
		add(g.Resources)
	}
	return s, nil
}

type monResource struct {
	ID      string `xml:"id,attr"`
	Role    string `xml:"role,attr"`
	Failed  string `xml:"failed,attr"`
	Pending string `xml:"pending,attr"`
	Nodes   []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}
