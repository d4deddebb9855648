package wire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tracevisor/tracevisor/internal/testenv"
)

const headerPath = "../guest-kernel/probe/tracevisor_probe.h"

// cHeader is what the test reads from the C header itself.
type cHeader struct {
	defines []string            // TVP_* names, in order
	structs []string            // struct names, in order
	fields  map[string][]string // struct -> field names, in order
}

var (
	reComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	reDefine  = regexp.MustCompile(`(?m)^#define[ \t]+(\w+)[ \t]+\S`)
	reStruct  = regexp.MustCompile(`(?s)struct[ \t]+(\w+)[ \t]*\{(.*?)\};`)
	reField   = regexp.MustCompile(`^(?:struct[ \t]+)?\w+[ \t]+(\w+)(?:\[[^\]]+\])?;$`)
)

func parseHeader(t *testing.T, src string) cHeader {
	t.Helper()
	src = reComment.ReplaceAllString(src, "")
	h := cHeader{fields: map[string][]string{}}
	for _, m := range reDefine.FindAllStringSubmatch(src, -1) {
		h.defines = append(h.defines, m[1])
	}
	for _, m := range reStruct.FindAllStringSubmatch(src, -1) {
		h.structs = append(h.structs, m[1])
		for _, line := range strings.Split(m[2], "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			f := reField.FindStringSubmatch(line)
			if f == nil {
				t.Fatalf("struct %s: cannot parse field line %q", m[1], line)
			}
			h.fields[m[1]] = append(h.fields[m[1]], f[1])
		}
	}
	if len(h.defines) < 40 || len(h.structs) < 10 {
		t.Fatalf("parsed only %d defines and %d structs from %s", len(h.defines), len(h.structs), headerPath)
	}
	return h
}

// layoutSource generates the C function layout(): one line per constant
// ("const NAME VALUE"), struct ("size NAME SIZE") and field ("field
// STRUCT.FIELD OFFSET SIZE").
func layoutSource(h cHeader) string {
	var b strings.Builder
	b.WriteString("static void layout(void)\n{\n")
	for _, d := range h.defines {
		fmt.Fprintf(&b, "\tprintf(\"const %s %%llu\\n\", (unsigned long long)(%s));\n", d, d)
	}
	for _, s := range h.structs {
		fmt.Fprintf(&b, "\tprintf(\"size %s %%zu\\n\", sizeof(struct %s));\n", s, s)
		for _, f := range h.fields[s] {
			fmt.Fprintf(&b, "\tprintf(\"field %s.%s %%zu %%zu\\n\", offsetof(struct %s, %s), sizeof(((struct %s *)0)->%s));\n",
				s, f, s, f, s, f)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// buildC compiles the cross-check program against the header. -Wpadded
// checks the header's promise that no compiler inserts padding.
func buildC(t *testing.T, h cHeader) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		testenv.Missing(t, testenv.GCC, "gcc not found: cannot cross-check wire against the C header (apt-get install gcc linux-libc-dev)")
	}
	inc, err := filepath.Abs(filepath.Dir(headerPath))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := "#include <stddef.h>\n#include <stdio.h>\n#include \"tracevisor_probe.h\"\n\n" +
		layoutSource(h) + cProgram
	if err := os.WriteFile(filepath.Join(dir, "cross.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cross")
	cmd := exec.Command(gcc, "-std=gnu11", "-Wall", "-Wextra", "-Wpadded", "-Werror", "-I", inc,
		"-o", bin, filepath.Join(dir, "cross.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func runC(t *testing.T, bin, mode string, stdin []byte) string {
	t.Helper()
	cmd := exec.Command(bin, mode)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, mode, err, stderr.Bytes())
	}
	return string(out)
}

func TestCrossC(t *testing.T) {
	src, err := os.ReadFile(headerPath)
	if err != nil {
		t.Fatal(err)
	}
	h := parseHeader(t, string(src))
	bin := buildC(t, h)
	t.Run("constants", func(t *testing.T) { testConstants(t, h, runC(t, bin, "layout", nil)) })
	t.Run("layout", func(t *testing.T) { testLayout(t, h, runC(t, bin, "layout", nil)) })
	t.Run("c-to-go", func(t *testing.T) { testCSamples(t, runC(t, bin, "samples", nil)) })
	t.Run("go-to-c", func(t *testing.T) { testGoToC(t, bin) })
}

func testConstants(t *testing.T, h cHeader, out string) {
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		var name string
		var v uint64
		if _, err := fmt.Sscanf(line, "const %s %d", &name, &v); err != nil {
			continue
		}
		seen[name] = true
		gv, ok := goConstants[name]
		switch {
		case !ok:
			t.Errorf("header defines %s = %d: no Go mirror in wire (add it, and to goConstants)", name, v)
		case gv != v:
			t.Errorf("%s: C %d, Go %d", name, v, gv)
		}
	}
	if len(seen) != len(h.defines) {
		t.Errorf("C printed %d constants, the header has %d defines", len(seen), len(h.defines))
	}
	for name := range goConstants {
		if !seen[name] {
			t.Errorf("Go mirrors %s, which the header does not define", name)
		}
	}
}

func testLayout(t *testing.T, h cHeader, out string) {
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "size":
			size, _ := strconv.Atoi(f[2])
			seen[f[1]] = true
			if gs, ok := goSizes[f[1]]; !ok {
				t.Errorf("struct %s (%d bytes): no Go size constant", f[1], size)
			} else if gs != size {
				t.Errorf("sizeof(struct %s): C %d, Go %d", f[1], size, gs)
			}
			if size > BufSize {
				t.Errorf("struct %s is %d bytes, over TVP_BUF_SIZE", f[1], size)
			}
		case len(f) == 4 && f[0] == "field":
			off, _ := strconv.Atoi(f[2])
			size, _ := strconv.Atoi(f[3])
			seen[f[1]] = true
			if g, ok := goFields[f[1]]; !ok {
				t.Errorf("field %s (offset %d, %d bytes): not in Go's layout", f[1], off, size)
			} else if g != (fieldLayout{off, size}) {
				t.Errorf("%s: C offset %d size %d, Go offset %d size %d", f[1], off, size, g.off, g.size)
			}
		}
	}
	for name := range goFields {
		if !seen[name] {
			t.Errorf("Go lays out %s, which the header does not have", name)
		}
	}
	for name := range goSizes {
		if !seen[name] {
			t.Errorf("Go sizes struct %s, which the header does not have", name)
		}
	}
	if StatsRequestSize != HdrSize {
		t.Errorf("StatsRequestSize %d: TVP_CMD_STATS is a bare header of %d", StatsRequestSize, HdrSize)
	}
}

func testCSamples(t *testing.T, out string) {
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad sample line %q", line)
		}
		got[name] = true
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("sample %s: %v", name, err)
		}
		want, ok := cSamples[name]
		if !ok {
			t.Errorf("C sample %s has no Go expectation", name)
			continue
		}
		m, err := Decode(b)
		if err != nil {
			t.Errorf("sample %s: Decode: %v", name, err)
			continue
		}
		for _, d := range diffFields(want, m) {
			t.Errorf("sample %s: %s", name, d)
		}
		mb, err := want.MarshalBinary()
		if err != nil {
			t.Errorf("sample %s: MarshalBinary: %v", name, err)
		} else if !bytes.Equal(mb, b) {
			t.Errorf("sample %s: Go bytes differ from C's\nC:  %x\nGo: %x", name, b, mb)
		}
	}
	for name := range cSamples {
		if !got[name] {
			t.Errorf("C emitted no sample %s", name)
		}
	}
}

// diffFields names each field where got differs from want.
func diffFields(want, got Message) []string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	if wv.Type() != gv.Type() {
		return []string{fmt.Sprintf("decoded a %T, want a %T", got, want)}
	}
	var d []string
	for i := 0; i < wv.NumField(); i++ {
		if !reflect.DeepEqual(wv.Field(i).Interface(), gv.Field(i).Interface()) {
			d = append(d, fmt.Sprintf("field %s: got %#v, want %#v", wv.Type().Field(i).Name,
				gv.Field(i).Interface(), wv.Field(i).Interface()))
		}
	}
	return d
}

func testGoToC(t *testing.T, bin string) {
	var msgs []Message
	names := make([]string, 0, len(cSamples))
	for name := range cSamples {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		msgs = append(msgs, cSamples[name])
	}
	msgs = append(msgs, goOnlySamples...)
	var in bytes.Buffer
	for _, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%#v: %v", m, err)
		}
		fmt.Fprintf(&in, "%x\n", b)
	}
	lines := strings.Split(strings.TrimSpace(runC(t, bin, "decode", in.Bytes())), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("C decoded %d messages of %d:\n%s", len(lines), len(msgs), strings.Join(lines, "\n"))
	}
	for i, m := range msgs {
		if want := cLine(m); lines[i] != want {
			t.Errorf("C read Go's %T as\n  %s\nwant\n  %s", m, lines[i], want)
		}
	}
}

// cLine is what cProgram's decoder prints for m.
func cLine(m Message) string {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	switch m := m.(type) {
	case Attach:
		var regs, preds []string
		for _, r := range m.Regs {
			regs = append(regs, strconv.Itoa(int(r)))
		}
		for _, p := range m.Preds {
			preds = append(preds, fmt.Sprintf("%d:%d:%d", p.Arg, p.Op, p.Value))
		}
		return fmt.Sprintf("attach seq=%d id=%d kind=%d class=%d offset=%d rate=%d pid=%d regs=%s sig_mask=%d symbol=%s comm=%s preds=%s pads=1",
			m.Seq, m.ID, m.Kind, m.Class, m.Offset, m.Rate, m.PID, strings.Join(regs, ","), m.SigMask,
			hx(m.Symbol), hx(m.Comm), strings.Join(preds, ","))
	case Detach:
		return fmt.Sprintf("detach seq=%d id=%d pads=1", m.Seq, m.ID)
	case StatsRequest:
		return fmt.Sprintf("stats_request seq=%d", m.Seq)
	case Inject:
		return fmt.Sprintf("inject seq=%d kind=%d arg=%d arg2=%d comm=%s pads=1", m.Seq, m.Kind, m.Arg, m.Arg2, hx(m.Comm))
	case Hello:
		return fmt.Sprintf("hello seq=0 version=%d clock=%d ncpus=%d guest_ns=%d", m.Version, m.Clock, m.NCPUs, m.GuestNS)
	case Reply:
		return fmt.Sprintf("reply seq=%d status=%d id=%d", m.Seq, m.Status, m.ID)
	case Stats:
		var es []string
		for _, e := range m.Entries {
			es = append(es, fmt.Sprintf("%d:%d:%d:%d:%d:%d:%d:%d:%d", e.ID, e.Kind, e.Class, e.Hits,
				e.Delivered, e.Filtered, e.Limited, e.Dropped, e.Missed))
		}
		last := 0
		if m.Last {
			last = 1
		}
		return fmt.Sprintf("stats seq=%d last=%d entries=%s pads=1", m.Seq, last, strings.Join(es, ","))
	case Event:
		args := make([]string, MaxArgs)
		for i := range args {
			var v uint64
			if i < len(m.Args) {
				v = m.Args[i]
			}
			args[i] = strconv.FormatUint(v, 10)
		}
		return fmt.Sprintf("event seq=0 probe=%d class=%d cpu=%d guest_ns=%d pid=%d tid=%d comm=%s dropped=%d flags=%d args=%s sig=%d other_pid=%d other_comm=%s value=%d text=%s",
			m.Probe, m.Class, m.CPU, m.GuestNS, m.PID, m.TID, hx(m.Comm), m.Dropped, m.Flags,
			strings.Join(args, ","), m.Sig, m.OtherPID, hx(m.OtherComm), m.Value, hx(m.Text))
	}
	panic(fmt.Sprintf("cLine: %T", m))
}
