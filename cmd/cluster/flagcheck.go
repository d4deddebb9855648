package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// checkFailures refuses a --failures list that is empty, names a failure
// not in known, or names one twice.
func checkFailures(failures []string, known ...string) error {
	if len(failures) == 0 {
		return fmt.Errorf("--failures: name at least one of %s", strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for _, f := range failures {
		if !slices.Contains(known, f) {
			return fmt.Errorf("--failures: unknown failure %q: want one of %s", f, strings.Join(known, ", "))
		}
		if seen[f] {
			return fmt.Errorf("--failures: %s named twice", f)
		}
		seen[f] = true
	}
	return nil
}

// durationFlag is a flag's name and value, for checkPositive.
type durationFlag struct {
	name string
	v    time.Duration
}

// checkPositive refuses a duration flag that is zero or negative.
func checkPositive(flags ...durationFlag) error {
	for _, d := range flags {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: want a positive duration", d.name, d.v)
		}
	}
	return nil
}
