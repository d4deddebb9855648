package debugport

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const headerPath = "../../../guest-kernel/include/tracevisor_debug.h"

// goValues maps each TV_DEBUG_* macro to the Go constant standing for it.
var goValues = map[string]uint64{
	"TV_DEBUG_BASE":             Base,
	"TV_DEBUG_SIZE":             Size,
	"TV_DEBUG_REG_MAGIC":        RegMagic,
	"TV_DEBUG_MAGIC_VALUE":      uint64(MagicValue),
	"TV_DEBUG_REG_EVENT":        RegEvent,
	"TV_DEBUG_EVENT_INIT_START": uint64(EventInitStart),
	"TV_DEBUG_EVENT_CMD_START":  uint64(EventCmdStart),
	"TV_DEBUG_REG_EXIT_STATUS":  RegExitStatus,
}

// defineRE matches `#define TV_DEBUG_NAME value`, value an integer literal
// with an optional U/L suffix.
var defineRE = regexp.MustCompile(`^#define\s+(TV_DEBUG_\w+)\s+(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*\b`)

// parseHeader returns the TV_DEBUG_* macros the header defines, by name.
func parseHeader(t *testing.T) map[string]uint64 {
	t.Helper()
	f, err := os.Open(headerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defs := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if !strings.HasPrefix(line, "#define TV_DEBUG_") {
			continue
		}
		m := defineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: cannot parse %q", headerPath, line)
			continue
		}
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Errorf("%s: %q: %v", headerPath, line, err)
			continue
		}
		defs[m[1]] = v
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestHeaderMatches keeps the C header the single definition of the layout:
// every macro it defines has a Go constant of the same value, and no Go
// constant stands for a macro it lacks.
func TestHeaderMatches(t *testing.T) {
	defs := parseHeader(t)
	for name, v := range defs {
		gv, ok := goValues[name]
		switch {
		case !ok:
			t.Errorf("%s = %#x has no Go constant", name, v)
		case gv != v:
			t.Errorf("%s = %#x in the header, %#x in Go", name, v, gv)
		}
	}
	for name := range goValues {
		if _, ok := defs[name]; !ok {
			t.Errorf("%s is not defined in %s", name, headerPath)
		}
	}
}
