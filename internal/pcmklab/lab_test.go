package pcmklab

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// crm_mon.xml is `crm_mon -1 --output-as=xml` of TestPacemaker's lab
// (pacemaker 2.1.5) just after an OOM failover: vm1 promoted on n2 with
// ip1, its failed instance on n1 stopped (banned until its
// failure-timeout).
func TestParseMon(t *testing.T) {
	b, err := os.ReadFile("testdata/crm_mon.xml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseMon(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.DC != "n1" || !reflect.DeepEqual(s.Online, []string{"n1", "n2"}) {
		t.Errorf("DC %q online %v", s.DC, s.Online)
	}
	c := VMCluster{Index: 1}
	if got := c.PromotedOn(s); got != "n2" {
		t.Errorf("vm1 promoted on %q, want n2 (placements %+v)", got, s.Resources)
	}
	if c.Protected(s) {
		t.Errorf("vm1 protected with one instance stopped: %+v", s.Resources["vm1"])
	}
	if got := len(s.Resources["fence-n1"]); got != 1 || s.Resources["fence-n1"][0].Node != "n2" {
		t.Errorf("fence-n1 placements %+v", s.Resources["fence-n1"])
	}
	// The same with ip1's start still running (Pacemaker shows it Started
	// with pending="Starting"): vm1 is not yet promoted with its address.
	pending := strings.Replace(string(b), `<resource id="ip1" resource_agent="ocf:heartbeat:IPaddr2" role="Started"`,
		`<resource id="ip1" resource_agent="ocf:heartbeat:IPaddr2" role="Started" pending="Starting"`, 1)
	if pending == string(b) {
		t.Fatal("the test data has no ip1 to mark pending")
	}
	ps, err := parseMon([]byte(pending))
	if err != nil {
		t.Fatal(err)
	}
	if ip := ps.Resources["ip1"]; len(ip) != 1 || ip[0].Pending != "Starting" {
		t.Errorf("ip1 placements %+v, want one pending Starting", ip)
	}
	if got := c.PromotedOn(ps); got != "" {
		t.Errorf("vm1 promoted on %q with its address still starting, want none", got)
	}
	if _, err := parseMon([]byte("<nope")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestVMClusterCRM(t *testing.T) {
	c := VMCluster{Index: 2, Params: map[string]string{"fast_path": "true", "host_addr": "10.80.9.1/24"}}
	got := c.CRM()
	for _, want := range []string{
		"primitive vm2 ocf:tracevisor:vm params fast_path=true guest_addr=10.80.2.2/24 host_addr=10.80.9.1/24 service_address=10.79.0.102 ",
		"clone vm2-clone vm2 meta promotable=true",
		"primitive ip2 ocf:heartbeat:IPaddr2 params ip=10.79.0.102",
		"colocation ip2-with-vm2 inf: ip2 vm2-clone:Promoted",
		"order vm2-before-ip2 Mandatory: vm2-clone:promote ip2:start",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CRM lacks %q:\n%s", want, got)
		}
	}
	if f := FenceCRM([]string{"n1", "n2"}, "/srv/tv"); !strings.Contains(f, "location fence-n2-elsewhere fence-n2 -inf: n2") ||
		!strings.Contains(f, "stonith:fence_tracevisor params state_dir=/srv/tv pcmk_host_list=n1") {
		t.Errorf("FenceCRM:\n%s", f)
	}
}

func TestCorosyncConf(t *testing.T) {
	l := &Lab{cfg: Config{Token: 1500 * 1e6}, id: "abc"}
	for i, n := range []string{"n1", "n2"} {
		l.nodes = append(l.nodes, &Node{Name: n, Index: i, Addr: Addr(i)})
	}
	conf := l.corosyncConf()
	for _, want := range []string{"token: 1500", "ring0_addr: 10.79.0.11", "ring0_addr: 10.79.0.12", "two_node: 1", "knet_transport: udp"} {
		if !strings.Contains(conf, want) {
			t.Errorf("corosync.conf lacks %q:\n%s", want, conf)
		}
	}
	// corosync's parser takes one key or block opening per line.
	for _, line := range strings.Split(conf, "\n") {
		if strings.Count(line, "{") > 1 || (strings.Contains(line, "{") && strings.Contains(line, ":")) {
			t.Errorf("line %q would not parse", line)
		}
	}
}
