package pcmk

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseLocate(t *testing.T) {
	out := []byte(`<pacemaker-result api-version="2.25" request="crm_resource --locate -r st --output-as=xml">
  <nodes resource="st">
    <node>n1</node>
    <node state="promoted">n2</node>
  </nodes>
  <status code="0" message="OK"/>
</pacemaker-result>`)
	got, err := parseLocate(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Located{{Node: "n1"}, {Node: "n2", Promoted: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseLocate = %+v, want %+v", got, want)
	}
	if l, err := parseLocate([]byte(`<pacemaker-result><status code="0" message="OK"/></pacemaker-result>`)); err != nil || len(l) != 0 {
		t.Errorf("a stopped resource: %+v, %v", l, err)
	}
	if _, err := parseLocate([]byte(`<pacemaker-result><status code="105" message="No such object"/></pacemaker-result>`)); err == nil ||
		!strings.Contains(err.Error(), "No such object") {
		t.Errorf("an error status: %v", err)
	}
	if _, err := parseLocate([]byte("not xml <")); err == nil {
		t.Error("garbage parsed")
	}
}

// TestToolsCommandLines checks the commands the fast path and the agent
// run.
func TestToolsCommandLines(t *testing.T) {
	var calls []string
	tools := Tools{Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		return []byte(`<pacemaker-result><nodes><node>n1</node></nodes><status code="0"/></pacemaker-result>`), nil
	}}
	ctx := context.Background()
	tools.Fail(ctx, "vm2", "n1")
	tools.SetPromotion(ctx, "vm2", 10)
	tools.DelPromotion(ctx, "vm2")
	tools.Locate(ctx, "vm2")
	want := []string{
		"crm_resource --fail --resource vm2 --node n1",
		"crm_attribute --promotion=vm2 --update 10",
		"crm_attribute --promotion=vm2 --delete",
		"crm_resource --locate --resource vm2 --output-as=xml",
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}
