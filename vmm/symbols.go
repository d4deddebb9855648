package vmm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Symbols maps guest kernel addresses to names, from a System.map.
type Symbols struct {
	addrs []uint64
	names []string

	// path, when set, is read on first use (see LazySystemMap).
	path string
	once sync.Once
}

// LazySystemMap returns Symbols read from path on first use, so a run that
// never needs a name never pays for the ~35 000 of a System.map in memory.
// An unreadable file just names nothing.
func LazySystemMap(path string) *Symbols { return &Symbols{path: path} }

func (s *Symbols) load() {
	s.once.Do(func() {
		if s.path == "" {
			return
		}
		if l, err := LoadSystemMap(s.path); err == nil {
			s.addrs, s.names = l.addrs, l.names
		}
	})
}

// LoadSystemMap reads a System.map ("ADDRESS TYPE NAME" per line). Text
// symbols (t/T) and weak ones are kept.
func LoadSystemMap(path string) (*Symbols, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSystemMap(f)
}

// ParseSystemMap parses System.map text.
func ParseSystemMap(r io.Reader) (*Symbols, error) {
	type sym struct {
		a uint64
		n string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		switch f[1] {
		case "t", "T", "W", "w":
		default:
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("System.map line %d: bad address %q", line, f[0])
		}
		syms = append(syms, sym{a, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].a < syms[j].a })
	s := &Symbols{}
	for _, y := range syms {
		s.addrs = append(s.addrs, y.a)
		s.names = append(s.names, y.n)
	}
	return s, nil
}

// Lookup returns "name+0xoff" for the symbol at or below addr, or "" when
// addr is below every symbol or s is nil.
func (s *Symbols) Lookup(addr uint64) string {
	if s == nil {
		return ""
	}
	s.load()
	if len(s.addrs) == 0 {
		return ""
	}
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("%s+%#x", s.names[i], addr-s.addrs[i])
}

// Address returns the address of the named symbol.
func (s *Symbols) Address(name string) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	s.load()
	for i, n := range s.names {
		if n == name {
			return s.addrs[i], true
		}
	}
	return 0, false
}
