package main

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
)

// kind is the type of one archive entry.
type kind int

const (
	kindDir kind = iota
	kindFile
	kindSymlink
	kindCharDev
)

// node is one entry of the archive to write.
type node struct {
	name         string
	kind         kind
	perm         fs.FileMode
	source       string // kindFile: host file to copy, or "" to use data
	data         []byte // kindFile: contents when source is ""
	target       string // kindSymlink
	major, minor uint32 // kindCharDev
}

// layout is the set of entries of an archive, by name.
type layout struct {
	nodes map[string]node
}

// Fixed content of the base initramfs.
var (
	baseDirs = []node{
		{name: "bin", perm: 0o755},
		{name: "dev", perm: 0o755},
		{name: "etc", perm: 0o755},
		{name: "proc", perm: 0o555},
		{name: "root", perm: 0o700},
		{name: "run", perm: 0o755},
		{name: "sbin", perm: 0o755},
		{name: "sys", perm: 0o555},
		{name: "tmp", perm: 0o777 | fs.ModeSticky},
		{name: "tracevisor", perm: 0o755},
		{name: "usr", perm: 0o755},
		{name: "usr/bin", perm: 0o755},
		{name: "usr/sbin", perm: 0o755},
	}
	baseNodes = []node{
		{name: "dev/console", kind: kindCharDev, perm: 0o600, major: 5, minor: 1},
		{name: "dev/null", kind: kindCharDev, perm: 0o666, major: 1, minor: 3},
		{name: "etc/passwd", kind: kindFile, perm: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{name: "etc/group", kind: kindFile, perm: 0o644, data: []byte("root:x:0:\n")},
	}
)

const (
	initName    = "init"
	busyboxName = "bin/busybox"
)

// baseLayout lays out the base initramfs around the host files busybox and
// init, with a symlink to /bin/busybox for each applet path. An applet whose
// path the layout already holds (bin/busybox itself, say) gets no link.
func baseLayout(busybox, init string, applets []string) (*layout, error) {
	l := &layout{nodes: make(map[string]node)}
	fixed := append(slices.Clone(baseDirs), baseNodes...)
	fixed = append(fixed,
		node{name: initName, kind: kindFile, perm: 0o755, source: init},
		node{name: busyboxName, kind: kindFile, perm: 0o755, source: busybox})
	for _, n := range fixed {
		if err := l.add(n); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if _, taken := l.nodes[a]; taken {
			continue
		}
		if err := l.add(node{name: a, kind: kindSymlink, target: "/" + busyboxName}); err != nil {
			return nil, err
		}
	}
	if err := l.addMissingParents(); err != nil {
		return nil, err
	}
	return l, nil
}

// add puts n in the layout; a name may appear once.
func (l *layout) add(n node) error {
	if _, dup := l.nodes[n.name]; dup {
		return fmt.Errorf("%q is laid out twice", n.name)
	}
	l.nodes[n.name] = n
	return nil
}

// addMissingParents adds a 0755 directory for every parent of an entry that
// the layout lacks, and fails if a parent is there but not a directory.
func (l *layout) addMissingParents() error {
	for _, name := range slices.Sorted(maps.Keys(l.nodes)) {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			parent, ok := l.nodes[dir]
			if !ok {
				l.nodes[dir] = node{name: dir, kind: kindDir, perm: 0o755}
				continue
			}
			if parent.kind != kindDir {
				return fmt.Errorf("%q lies under %q, which is not a directory", name, dir)
			}
		}
	}
	return nil
}

// sorted returns the entries ordered by path components, so that every
// directory precedes what it holds, as the kernel's unpacker needs.
func (l *layout) sorted() []node {
	nodes := make([]node, 0, len(l.nodes))
	for _, n := range l.nodes {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b node) int { return comparePaths(a.name, b.name) })
	return nodes
}

// comparePaths orders slash-separated paths component by component:
// "usr" < "usr/bin" < "usr/bin/x" < "usr/sbin" < "usr-local".
func comparePaths(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}
