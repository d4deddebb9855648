package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/tracevisor/tracevisor/probe"
)

// Client talks to a running vmm's API socket.
type Client struct {
	c  net.Conn
	in *bufio.Scanner
}

// Dial connects to the API socket at path.
func Dial(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: is a vmm running with --api %s? %w", path, err)
	}
	in := bufio.NewScanner(c)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	return &Client{c: c, in: in}, nil
}

// Call makes one request on a connection of its own to the API socket at
// path: Dial, Call, Close.
func Call(path string, req Request) (Response, error) {
	c, err := Dial(path)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	return c.Call(req)
}

// CallContext is Call bounded by ctx: when ctx ends before the vmm
// answers, the connection is closed and ctx's cause is returned, so a vmm
// that never answers cannot hang its caller.
func CallContext(ctx context.Context, path string, req Request) (Response, error) {
	c, err := Dial(path)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	r, err := c.Call(req)
	if err != nil && ctx.Err() != nil {
		return Response{}, fmt.Errorf("api %s: no answer from the vmm: %w", req.Op, context.Cause(ctx))
	}
	return r, err
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Call sends one request and returns its response; a response carrying an
// error is returned with that error.
func (c *Client) Call(req Request) (Response, error) {
	if err := json.NewEncoder(c.c).Encode(req); err != nil {
		return Response{}, err
	}
	if !c.in.Scan() {
		if err := c.in.Err(); err != nil {
			return Response{}, err
		}
		return Response{}, errors.New("api: vmm closed the connection")
	}
	var r Response
	if err := json.Unmarshal(c.in.Bytes(), &r); err != nil {
		return Response{}, fmt.Errorf("api: bad response: %w", err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// Events turns the connection into an event stream and calls fn for each
// event until fn returns false, the connection ends or an event fails to
// decode. Raw is each event's JSON line as the server wrote it.
func (c *Client) Events(fn func(e probe.Event, raw []byte) bool) error {
	if err := json.NewEncoder(c.c).Encode(Request{Op: OpEvents}); err != nil {
		return err
	}
	for c.in.Scan() {
		var e probe.Event
		if err := json.Unmarshal(c.in.Bytes(), &e); err != nil {
			return fmt.Errorf("api: bad event: %w", err)
		}
		if !fn(e, c.in.Bytes()) {
			return nil
		}
	}
	return c.in.Err()
}

// Fence fences the vmm at path and returns once every vCPU of its guest is
// out of KVM_RUN for good (Response.Machine says when and where).
func Fence(path, reason string) (Response, error) {
	return Call(path, Request{Op: OpFence, Reason: reason})
}

// Status returns the state of the vmm's machine at path: running or
// fenced, and the fence.
func Status(path string) (Response, error) {
	return Call(path, Request{Op: OpStatus})
}

// Stop ends the vmm at path; it answers with the machine's last status
// before it stops.
func Stop(path, reason string) (Response, error) {
	return Call(path, Request{Op: OpStop, Reason: reason})
}

// Snapshot writes the guest of the vmm at path to dir (an absolute path
// on that vmm's host) and returns once it is written; the guest stays
// paused if paused.
func Snapshot(path, dir string, paused bool) (Response, error) {
	return Call(path, Request{Op: OpSnapshot, Dir: dir, Paused: paused})
}

// Resume lets the paused guest of the vmm at path run on.
func Resume(path string) (Response, error) {
	return Call(path, Request{Op: OpResume})
}

// Dump writes the guest of the vmm at path as an ELF core file at file (an
// absolute path on that vmm's host) and returns once it is written.
func Dump(path, file string) (Response, error) {
	return Call(path, Request{Op: OpDump, Path: file})
}

// FenceOn arms a fence rule (FenceRuleSyntax) in the vmm at path.
func FenceOn(path, rule string) (Response, error) {
	return Call(path, Request{Op: OpFenceOn, Rule: rule})
}
