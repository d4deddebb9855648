package main

import (
	"bytes"
	"strings"
	"testing"
)

// The binary is the OCF agent when called as .../vm, the fence agent as
// fence_tracevisor, and takes subcommands under its own name.
func TestDispatch(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"/usr/lib/ocf/resource.d/tracevisor/vm", "meta-data"}, 0, `<resource-agent name="vm"`},
		{[]string{"/usr/sbin/fence_tracevisor", "-o", "metadata"}, 0, `<resource-agent name="fence_tracevisor"`},
		{[]string{"tvpcmk", "ocf", "meta-data"}, 0, `<parameter name="host_addr"`},
		{[]string{"tvpcmk", "--help"}, 0, "tvpcmk ocf ACTION"},
		{[]string{"tvpcmk"}, 2, "usage:"},
		{[]string{"tvpcmk", "frob"}, 2, `unknown command "frob"`},
		{[]string{"vm"}, 2, "usage: vm ACTION"},
		{[]string{"tvpcmk", "fence", "-o", "off"}, 1, "needs a plug"},
		{[]string{"tvpcmk", "fastpath", "--state", "/x"}, 2, "are required"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(""), &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%q: exit %d, want %d; output lacks %q:\n%s%s", c.args, code, c.code, c.want, out.String(), errb.String())
		}
	}
}
