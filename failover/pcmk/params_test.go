package pcmk

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracevisor/tracevisor/api"
)

// envOf is an Env over a map.
func envOf(m map[string]string) Env { return func(k string) string { return m[k] } }

func baseEnv() map[string]string {
	return map[string]string{
		"OCF_RESOURCE_INSTANCE":       "vm1:1",
		"OCF_RESKEY_host_addr":        "10.80.1.1/24",
		"OCF_RESKEY_guest_addr":       "10.80.1.2/24",
		"OCF_RESKEY_CRM_meta_on_node": "n1",
	}
}

func TestParseParamsDefaults(t *testing.T) {
	p, err := ParseParams(envOf(baseEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "vm1" || p.Resource != "vm1" {
		t.Errorf("name %q resource %q from instance vm1:1, want vm1 and vm1", p.Name, p.Resource)
	}
	if p.Tap != "tv-vm1" || p.Watch != "httpd" || p.Port != 80 || p.Mem != "256M" || !p.FastPath || !p.Check {
		t.Errorf("defaults: %+v", p)
	}
	if p.Service.IsValid() {
		t.Errorf("service address %v with none given", p.Service)
	}
	if p.ServiceWait != 10*time.Second {
		t.Errorf("service check waits %v, want service_timeout's default of 10 s", p.ServiceWait)
	}
	if got := StateFor(p.StateDir, p.Node, p.Name); got != "/run/tracevisor/n1/vm1" {
		t.Errorf("state dir %s", got)
	}
	if len(p.FenceRules) == 0 {
		t.Fatal("no default fence rules")
	}
	for _, r := range p.FenceRules {
		if _, err := api.ParseFenceRule(r); err != nil {
			t.Errorf("default fence rule %q does not parse: %v", r, err)
		}
	}
	if !strings.Contains(strings.Join(p.Probes, " "), "catalogue:exit:comm=httpd") {
		t.Errorf("default probes %v do not watch httpd's exit", p.Probes)
	}
}

func TestParseParamsErrors(t *testing.T) {
	cases := []struct {
		set  map[string]string
		code ExitCode
		want string
	}{
		{map[string]string{"OCF_RESKEY_host_addr": ""}, ErrArgs, "host_addr is required"},
		{map[string]string{"OCF_RESKEY_guest_addr": "10.80.2.2/24"}, ErrConfigured, "one subnet"},
		{map[string]string{"OCF_RESKEY_guest_addr": "10.80.1.1/24"}, ErrConfigured, "one subnet"},
		{map[string]string{"OCF_RESKEY_host_addr": "fe80::1/64"}, ErrConfigured, "IPv4"},
		{map[string]string{"OCF_RESKEY_port": "0"}, ErrConfigured, "port"},
		{map[string]string{"OCF_RESKEY_service": "a-very-long-process-name"}, ErrConfigured, "service"},
		{map[string]string{"OCF_RESKEY_service_address": "nope"}, ErrConfigured, "service_address"},
		{map[string]string{"OCF_RESKEY_fast_path": "maybe"}, ErrConfigured, "fast_path"},
		{map[string]string{"OCF_RESKEY_service_timeout": "0"}, ErrConfigured, "service_timeout"},
		{map[string]string{"OCF_RESKEY_service_timeout": "3s"}, ErrConfigured, "service_timeout"},
		{map[string]string{"OCF_RESKEY_state_dir": "relative"}, ErrConfigured, "state_dir"},
		{map[string]string{"OCF_RESKEY_name": "../etc"}, ErrConfigured, "name"},
		{map[string]string{"OCF_RESKEY_CRM_meta_on_node": ".."}, ErrConfigured, "node name"},
	}
	for _, c := range cases {
		env := baseEnv()
		for k, v := range c.set {
			env[k] = v
		}
		_, err := ParseParams(envOf(env))
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want code %d mentioning %q", c.set, err, c.code, c.want)
		}
	}
}

func TestParseParamsOverrides(t *testing.T) {
	env := baseEnv()
	env["OCF_RESKEY_name"] = "averyveryverylongname"
	env["OCF_RESKEY_fence_rules"] = "class=oom; class=panic"
	env["OCF_RESKEY_probes"] = "catalogue:oom  catalogue:panic"
	env["OCF_RESKEY_service_address"] = "10.79.0.101"
	env["OCF_RESKEY_CRM_meta_promotable"] = "true"
	env["OCF_RESKEY_service_timeout"] = "4"
	p, err := ParseParams(envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tap) != 15 || !strings.HasPrefix(p.Tap, "tv-averyvery") {
		t.Errorf("tap %q: want tv-NAME cut to 15 bytes", p.Tap)
	}
	if strings.Join(p.FenceRules, "|") != "class=oom|class=panic" || len(p.Probes) != 2 {
		t.Errorf("rules %q probes %q", p.FenceRules, p.Probes)
	}
	if !p.Service.IsValid() || !p.Promotable || p.ServiceWait != 4*time.Second {
		t.Errorf("service %v promotable %v service check %v", p.Service, p.Promotable, p.ServiceWait)
	}
	env["OCF_RESKEY_fence_rules"] = "none"
	if p, _ := ParseParams(envOf(env)); len(p.FenceRules) != 0 {
		t.Errorf("fence_rules=none gave %q", p.FenceRules)
	}
}

func TestPromotable(t *testing.T) {
	for _, c := range []struct {
		set  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OCF_RESKEY_CRM_meta_promoted_max": "1"}, true}, // what pacemaker 2.1 passes
		{map[string]string{"OCF_RESKEY_CRM_meta_master_max": "1"}, true},
		{map[string]string{"OCF_RESKEY_CRM_meta_promotable": "true"}, true},
		{map[string]string{"OCF_RESKEY_CRM_meta_promotable": "false", "OCF_RESKEY_CRM_meta_promoted_max": "1"}, false},
		{map[string]string{"OCF_RESKEY_CRM_meta_promoted_max": "0"}, false},
	} {
		env := baseEnv()
		for k, v := range c.set {
			env[k] = v
		}
		if p, err := ParseParams(envOf(env)); err != nil || p.Promotable != c.want {
			t.Errorf("%v: promotable %v (%v), want %v", c.set, p.Promotable, err, c.want)
		}
	}
}
