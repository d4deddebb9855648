package pcmk

import (
	"encoding/xml"
	"io"
)

// The meta-data's XML (OCF resource agent API: ra-api-1.dtd).
type (
	raMeta struct {
		XMLName xml.Name   `xml:"resource-agent"`
		Name    string     `xml:"name,attr"`
		Version string     `xml:"version,attr,omitempty"`
		APIVer  string     `xml:"version"`
		Long    raText     `xml:"longdesc"`
		Short   raText     `xml:"shortdesc"`
		Params  []raParam  `xml:"parameters>parameter"`
		Actions []raAction `xml:"actions>action"`
	}
	raText struct {
		Lang string `xml:"lang,attr"`
		Text string `xml:",chardata"`
	}
	raParam struct {
		Name     string    `xml:"name,attr"`
		Unique   string    `xml:"unique,attr,omitempty"`
		Required string    `xml:"required,attr,omitempty"`
		Long     raText    `xml:"longdesc"`
		Short    raText    `xml:"shortdesc"`
		Content  raContent `xml:"content"`
	}
	raContent struct {
		Type    string `xml:"type,attr"`
		Default string `xml:"default,attr,omitempty"`
	}
	raAction struct {
		Name     string `xml:"name,attr"`
		Timeout  string `xml:"timeout,attr,omitempty"`
		Interval string `xml:"interval,attr,omitempty"`
		Depth    string `xml:"depth,attr,omitempty"`
		Role     string `xml:"role,attr,omitempty"`
	}
)

func en(s string) raText { return raText{Lang: "en", Text: s} }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// WriteMetadata writes the OCF agent's meta-data, built from params.
func WriteMetadata(w io.Writer) error {
	m := raMeta{
		Name: "vm", Version: "1.0", APIVer: "1.1",
		Short: en("a tracevisor VM, failed over on the probe event"),
		Long: en("Runs one tracevisor VM (a vmm with its control API, probes armed from boot, and a service such as " +
			"busybox httpd in the guest) as a Pacemaker resource. monitor asks the local VMM whether the guest runs and " +
			"whether a failure verdict stands (an OOM, a panic, a fatal signal to the service: the embedded failover " +
			"manager's rules). With fast_path the node's tracevisor side tells Pacemaker at once on the event " +
			"(crm_resource --fail) instead of waiting for the next monitor. Use it as a promotable clone (both VMs run; " +
			"the promoted one serves, with ocf:heartbeat:IPaddr2 colocated with the Promoted role) or as a plain " +
			"resource grouped with IPaddr2."),
	}
	for _, p := range params {
		typ := p.typ
		if typ == "" {
			typ = "string"
		}
		m.Params = append(m.Params, raParam{Name: p.name, Unique: flag(p.unique), Required: flag(p.required),
			Long: en(p.long), Short: en(p.short), Content: raContent{Type: typ, Default: p.def}})
	}
	m.Actions = []raAction{
		{Name: "start", Timeout: "300s"},
		{Name: "stop", Timeout: "60s"},
		{Name: "monitor", Timeout: "30s", Interval: "12s", Depth: "0"},
		{Name: "monitor", Timeout: "30s", Interval: "10s", Depth: "0", Role: "Promoted"},
		{Name: "monitor", Timeout: "30s", Interval: "11s", Depth: "0", Role: "Unpromoted"},
		{Name: "promote", Timeout: "30s"},
		{Name: "demote", Timeout: "30s"},
		{Name: "notify", Timeout: "30s"},
		{Name: "reload", Timeout: "30s"},
		{Name: "meta-data", Timeout: "5s"},
		{Name: "validate-all", Timeout: "30s"},
	}
	return writeXML(w, m, "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n")
}

// The fence agent's meta-data (fence-agents' form).
type (
	fenceMeta struct {
		XMLName xml.Name      `xml:"resource-agent"`
		Name    string        `xml:"name,attr"`
		Short   string        `xml:"shortdesc,attr"`
		Long    string        `xml:"longdesc"`
		Params  []fenceParam  `xml:"parameters>parameter"`
		Actions []fenceAction `xml:"actions>action"`
	}
	fenceParam struct {
		Name     string    `xml:"name,attr"`
		Unique   string    `xml:"unique,attr"`
		Required string    `xml:"required,attr"`
		Obsolete string    `xml:"obsoletes,attr,omitempty"`
		Getopt   getopt    `xml:"getopt"`
		Content  raContent `xml:"content"`
		Short    raText    `xml:"shortdesc"`
	}
	getopt struct {
		Mixed string `xml:"mixed,attr"`
	}
	fenceAction struct {
		Name string `xml:"name,attr"`
	}
)

// WriteFenceMetadata writes fence_tracevisor's meta-data.
func WriteFenceMetadata(w io.Writer) error {
	m := fenceMeta{
		Name:  "fence_tracevisor",
		Short: "Fence agent for tracevisor VMs",
		Long: "fence_tracevisor fences a cluster node's tracevisor VMs through their VMMs' control API: off stops " +
			"every vCPU of each VM for good (the guest can never answer on the service address again) and ends its " +
			"vmm. The plug is a node (all the VMs ocf:tracevisor:vm started there) or NODE/VM. It reads the same " +
			"state_dir as the resource agent; on hosts apart, that directory (or the API sockets in it) must be " +
			"reachable from the fencing node.",
		Params: []fenceParam{
			{Name: "action", Unique: "0", Required: "1", Getopt: getopt{"-o, --action=[action]"},
				Content: raContent{Type: "string", Default: "reboot"}, Short: en("Fencing action")},
			{Name: "plug", Unique: "0", Required: "1", Obsolete: "port", Getopt: getopt{"-n, --plug=[node]"},
				Content: raContent{Type: "string"}, Short: en("Node name (all its VMs) or NODE/VM")},
			{Name: "port", Unique: "0", Required: "0", Getopt: getopt{"-n, --plug=[node]"},
				Content: raContent{Type: "string"}, Short: en("Node name (all its VMs) or NODE/VM")},
			{Name: "state_dir", Unique: "0", Required: "0", Getopt: getopt{"--state-dir=[dir]"},
				Content: raContent{Type: "string", Default: "/run/tracevisor"}, Short: en("The resource agent's state_dir")},
		},
	}
	for _, a := range []string{"on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all"} {
		m.Actions = append(m.Actions, fenceAction{Name: a})
	}
	return writeXML(w, m, "")
}

func writeXML(w io.Writer, v any, doctype string) error {
	// No encoding in the declaration: crmsh hands the text to lxml as a
	// str, which refuses one ("Cannot parse meta-data XML").
	if _, err := io.WriteString(w, "<?xml version=\"1.0\"?>\n"+doctype); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
