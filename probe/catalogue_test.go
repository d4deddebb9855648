package probe

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/wire"
)

func TestCatalogue(t *testing.T) {
	entries := Catalogue()
	var names []string
	specNames := map[string]string{}
	for _, e := range entries {
		names = append(names, e.Name)
		if e.Summary == "" || len(e.Doc) < 200 || !strings.Contains(e.Doc, "Misses:") {
			t.Errorf("%s: a summary and a Doc that says what it misses are required", e.Name)
		}
		if len(e.Specs) == 0 {
			t.Errorf("%s: no specs", e.Name)
		}
		for i, s := range e.Specs {
			if prev, dup := specNames[s.Name]; dup {
				t.Errorf("spec name %s in both %s and %s", s.Name, prev, e.Name)
			}
			specNames[s.Name] = e.Name
			if _, err := s.Attach(uint32(i+1), 1); err != nil {
				t.Errorf("%s: %v", e.Name, err)
			}
			if again, err := ParseSpec(s.String()); err != nil || !reflect.DeepEqual(again, s) {
				t.Errorf("%s: %q does not round-trip: %v", e.Name, s, err)
			}
			if s.Symbol != "" && !strings.Contains(e.Doc, s.Symbol) {
				t.Errorf("%s: Doc does not name its symbol %s", e.Name, s.Symbol)
			}
		}
	}
	if want := []string{"exit", "hung", "oom", "oops", "panic", "signal"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries %v, want %v", names, want)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	// Callers own the result.
	entries[0].Specs[0].Comm = "changed"
	if e, _ := LookupCatalogue(entries[0].Name); e.Specs[0].Comm != "" {
		t.Error("changing Catalogue()'s result changed the catalogue")
	}
}

// TestCatalogueProbes pins what each entry arms: the symbols, classes and
// filters the guest driver depends on.
func TestCatalogueProbes(t *testing.T) {
	type probe struct {
		kind   wire.Kind
		symbol string
		class  wire.Class
		regs   []wire.Reg
		preds  []wire.Pred
	}
	want := map[string][]probe{
		"signal": {{wire.KindKprobe, "send_signal_locked", wire.ClassSignal, []wire.Reg{wire.RegDI}, nil}},
		"oom": {{wire.KindKprobe, "out_of_memory", wire.ClassOOM, nil, nil},
			{wire.KindKprobe, "mark_oom_victim", wire.ClassOOM, nil, nil}},
		"panic": {{wire.KindPanic, "", wire.ClassPanic, nil, nil}},
		"oops":  {{wire.KindDie, "", wire.ClassOops, nil, nil}},
		"exit":  {{wire.KindKprobe, "do_exit", wire.ClassExit, []wire.Reg{wire.RegDI}, nil}},
		"hung": {{wire.KindKprobe, "sched_show_task", wire.ClassHung, nil, nil},
			{wire.KindKprobe, "add_taint", wire.ClassLockup, []wire.Reg{wire.RegDI},
				[]wire.Pred{{Arg: 0, Op: wire.OpEQ, Value: 14}}}},
	}
	for name, probes := range want {
		e, ok := LookupCatalogue(name)
		if !ok {
			t.Fatalf("no entry %s", name)
		}
		if len(e.Specs) != len(probes) {
			t.Fatalf("%s: %d specs, want %d", name, len(e.Specs), len(probes))
		}
		for i, p := range probes {
			a, err := e.Specs[i].Attach(1, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := probe{a.Kind, a.Symbol, a.Class, a.Regs, a.Preds}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s spec %d: %+v, want %+v", name, i, got, p)
			}
		}
	}
	// The signal entry drops the signals ignored by default, and only those.
	s, _ := LookupCatalogue("signal")
	for sig := 1; sig <= 63; sig++ {
		ignored := sig == 17 || sig == 18 || sig == 23 || sig == 28
		if got := s.Specs[0].SigMask&(1<<sig) != 0; got == ignored {
			t.Errorf("signal %d in mask: %v", sig, got)
		}
	}
	if _, ok := LookupCatalogue("nope"); ok {
		t.Error("LookupCatalogue(nope) found something")
	}
}

func TestParseProbeFlag(t *testing.T) {
	specs, err := ParseProbeFlag("catalogue:oom:comm=postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Comm != "postgres" || specs[1].Comm != "postgres" ||
		specs[1].Symbol != "mark_oom_victim" {
		t.Errorf("catalogue:oom:comm=postgres: %v", specs)
	}
	specs, err = ParseProbeFlag(" catalogue:hung ")
	if err != nil || len(specs) != 2 || specs[0].Comm != "" {
		t.Errorf("catalogue:hung: %v, %v", specs, err)
	}
	specs, err = ParseProbeFlag("p:open do_sys_open fn=%si")
	if err != nil || len(specs) != 1 || specs[0].Name != "open" || specs[0].Args[0].Reg != wire.RegSI {
		t.Errorf("spec flag: %v, %v", specs, err)
	}
	for _, tt := range []struct{ in, want string }{
		{"catalogue:nope", "entries: exit hung oom oops panic signal"},
		{"catalogue:", `no catalogue entry ""`},
		{"catalogue:oom:pid=4", "only comm=SERVICE"},
		{"catalogue:oom:comm=", "comm="},
		{"catalogue:oom:comm=a-very-long-service", "1 to 15 bytes"},
		{"catalogue:oom:comm=a b", "comm="},
		{"p foo bogus", `"bogus"`},
		{"", "empty"},
	} {
		if _, err := ParseProbeFlag(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseProbeFlag(%q): %v; want an error with %q", tt.in, err, tt.want)
		}
	}
}
