package vmmnode

import (
	"context"
	"fmt"

	"github.com/tracevisor/tracevisor/api"
	"github.com/tracevisor/tracevisor/vmm"
)

// call makes one control API request on the vmm at sock, giving up when
// ctx ends.
func call(ctx context.Context, sock string, req api.Request) (api.Response, error) {
	r, err := api.CallContext(ctx, sock, req)
	if err != nil {
		return r, fmt.Errorf("vmm api %s on %s: %w", req.Op, sock, err)
	}
	return r, nil
}

// fence fences the vmm at sock: it returns once every vCPU of its guest
// is out of KVM_RUN for good, with the machine's status. A run that ended
// by itself (a guest panic ends it) is as good as fenced: no vCPU can
// enter that guest again.
func fence(ctx context.Context, sock, reason string) (*vmm.Status, error) {
	r, err := call(ctx, sock, api.Request{Op: api.OpFence, Reason: reason})
	if err != nil {
		if st, serr := status(ctx, sock); serr == nil && st.State == vmm.StateEnded {
			return st, nil
		}
		return nil, err
	}
	if r.Machine == nil || r.Machine.State != vmm.StateFenced {
		return r.Machine, fmt.Errorf("vmm api fence on %s: the machine is not fenced after the fence: %+v", sock, r.Machine)
	}
	return r.Machine, nil
}

// status returns the machine's status of the vmm at sock.
func status(ctx context.Context, sock string) (*vmm.Status, error) {
	r, err := call(ctx, sock, api.Request{Op: api.OpStatus})
	if err != nil {
		return nil, err
	}
	if r.Machine == nil {
		return nil, fmt.Errorf("vmm api status on %s: no machine status in the answer", sock)
	}
	return r.Machine, nil
}

// stop asks the vmm at sock to end.
func stop(ctx context.Context, sock, reason string) error {
	_, err := call(ctx, sock, api.Request{Op: api.OpStop, Reason: reason})
	return err
}

// inject causes a fault in the guest of the vmm at sock.
func inject(ctx context.Context, sock string, in api.Injection) error {
	_, err := call(ctx, sock, api.Request{Op: api.OpInject, Inject: &in})
	return err
}

// fenceOn arms a fence rule (api.FenceRuleSyntax) in the vmm at sock.
func fenceOn(ctx context.Context, sock, rule string) error {
	_, err := call(ctx, sock, api.Request{Op: api.OpFenceOn, Rule: rule})
	return err
}
