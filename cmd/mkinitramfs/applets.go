package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"
)

// listApplets runs "busybox --list-full" and returns the install path of
// every applet, relative to the root: "bin/sh", "usr/bin/md5sum", ...
func listApplets(busybox string) ([]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(busybox, "--list-full")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exit *exec.ExitError
		if errors.As(err, &exit) && msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, fmt.Errorf("listing applets with '%s --list-full': %w", busybox, err)
	}
	applets, err := parseApplets(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("'%s --list-full': %w", busybox, err)
	}
	return applets, nil
}

// parseApplets reads the output of "busybox --list-full": one path per line,
// relative to the root. Blank lines are skipped; a leading "/" is dropped.
func parseApplets(out string) ([]string, error) {
	var applets []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %q is not an applet path", line)
		}
		name := strings.TrimLeft(line, "/")
		if name == "" || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("line %q is not a clean path below the root", line)
		}
		applets = append(applets, name)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("no applets listed: is this busybox built with --list-full support?")
	}
	return applets, nil
}
