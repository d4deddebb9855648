package pcmk

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// CRM is what the agent and the fast path ask of Pacemaker. Tools is the
// real one (its command-line tools); tests give a fake.
type CRM interface {
	// Locate returns the nodes resource runs on, and which of them holds
	// it promoted.
	Locate(ctx context.Context, resource string) ([]Located, error)
	// Fail tells Pacemaker that resource has failed on node.
	Fail(ctx context.Context, resource, node string) error
	// SetPromotion sets this node's promotion score for resource (the
	// promotable clone's instance here; ScoreFailed keeps it from being
	// promoted); DelPromotion removes it (a stopped instance).
	SetPromotion(ctx context.Context, resource string, score int) error
	DelPromotion(ctx context.Context, resource string) error
}

// Located is one node a resource runs on.
type Located struct {
	Node     string
	Promoted bool
}

// CRMTimeout bounds each Pacemaker tool's run.
const CRMTimeout = 10 * time.Second

// Tools is CRM by Pacemaker's command-line tools (crm_resource,
// crm_attribute), run from PATH.
type Tools struct {
	// Run runs one tool and returns its stdout; nil: exec.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// NewCRM returns the CRM of this node's Pacemaker.
func NewCRM() CRM { return Tools{} }

func (t Tools) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CRMTimeout)
	defer cancel()
	if t.Run != nil {
		return t.Run(ctx, name, args...)
	}
	out, errb := &capped{max: maxToolOutput}, &capped{max: 4 << 10}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Run(); err != nil {
		return out.b.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.b.String()))
	}
	if out.over {
		return nil, fmt.Errorf("%s %s: more than %d bytes of output", name, strings.Join(args, " "), maxToolOutput)
	}
	return out.b.Bytes(), nil
}

// capped keeps the first max bytes written to it and notes the rest.
type capped struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:max(room, 0)])
		c.over = true
		return len(p), nil
	}
	return c.b.Write(p)
}

// Locate runs crm_resource --locate with XML output.
func (t Tools) Locate(ctx context.Context, resource string) ([]Located, error) {
	out, err := t.run(ctx, "crm_resource", "--locate", "--resource", resource, "--output-as=xml")
	if err != nil {
		return nil, err
	}
	return parseLocate(out)
}

// maxToolOutput bounds the XML parsed from a tool.
const maxToolOutput = 1 << 20

// parseLocate reads crm_resource --locate --output-as=xml:
//
//	<pacemaker-result ...><nodes resource="vm1"><node>n1</node>
//	<node state="promoted">n2</node></nodes><status code="0" .../></pacemaker-result>
func parseLocate(out []byte) ([]Located, error) {
	if len(out) > maxToolOutput {
		return nil, fmt.Errorf("crm_resource --locate: %d bytes of output, more than %d", len(out), maxToolOutput)
	}
	var r struct {
		Nodes []struct {
			Node []struct {
				State string `xml:"state,attr"`
				Name  string `xml:",chardata"`
			} `xml:"node"`
		} `xml:"nodes"`
		Status struct {
			Code    string `xml:"code,attr"`
			Message string `xml:"message,attr"`
		} `xml:"status"`
	}
	if err := xml.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("crm_resource --locate: %w", err)
	}
	if r.Status.Code != "" && r.Status.Code != "0" {
		return nil, fmt.Errorf("crm_resource --locate: status %s: %s", r.Status.Code, r.Status.Message)
	}
	var l []Located
	for _, ns := range r.Nodes {
		for _, n := range ns.Node {
			l = append(l, Located{Node: strings.TrimSpace(n.Name), Promoted: n.State == "promoted" || n.State == "master"})
		}
	}
	return l, nil
}

// Fail runs crm_resource --fail for resource on node.
func (t Tools) Fail(ctx context.Context, resource, node string) error {
	_, err := t.run(ctx, "crm_resource", "--fail", "--resource", resource, "--node", node)
	return err
}

// SetPromotion runs crm_attribute --promotion with a value (lifetime
// reboot: the score is gone with the node's cluster stack).
func (t Tools) SetPromotion(ctx context.Context, resource string, score int) error {
	_, err := t.run(ctx, "crm_attribute", "--promotion="+resource, "--update", strconv.Itoa(score))
	return err
}

// DelPromotion runs crm_attribute --promotion --delete.
func (t Tools) DelPromotion(ctx context.Context, resource string) error {
	_, err := t.run(ctx, "crm_attribute", "--promotion="+resource, "--delete")
	return err
}
