package pcmk

import (
	"bytes"
	"encoding/xml"
	"testing"
)

func TestMetadata(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMetadata(&b); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name     string `xml:"name,attr"`
			Required string `xml:"required,attr"`
			Content  struct {
				Default string `xml:"default,attr"`
			} `xml:"content"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("meta-data is not XML: %v\n%s", err, b.String())
	}
	if m.Name != "vm" || len(m.Params) != len(params) {
		t.Fatalf("agent %q with %d parameters, want vm with %d", m.Name, len(m.Params), len(params))
	}
	for i, p := range params {
		got := m.Params[i]
		if got.Name != p.name || (got.Required == "1") != p.required || got.Content.Default != p.def {
			t.Errorf("parameter %d: %+v, want %+v", i, got, p)
		}
	}
	acts := map[string]bool{}
	for _, a := range m.Actions {
		acts[a.Name] = true
	}
	for _, a := range []string{"start", "stop", "monitor", "promote", "demote", "meta-data", "validate-all"} {
		if !acts[a] {
			t.Errorf("meta-data lacks action %s", a)
		}
	}
	b.Reset()
	if err := WriteFenceMetadata(&b); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b.Bytes(), &m); err != nil || m.Name != "fence_tracevisor" {
		t.Fatalf("fence meta-data: %v, name %q", err, m.Name)
	}
}
