package vmmnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/failover/netaddr"
)

// maxBody bounds what a client reads of an answer: a node's page is its
// name.
const maxBody = 4 << 10

// Client makes HTTP requests from inside a namespace: every connection's
// socket is made on a thread that joined it. It keeps no connection
// between requests, so each request is a fresh connect, as a new client
// would make.
type Client struct {
	ns *netaddr.Namespace
	hc *http.Client
}

// NewClient returns a Client whose requests go out from ns.
func NewClient(ns *netaddr.Namespace) *Client {
	c := &Client{ns: ns}
	c.hc = &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: c.dial},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c
}

// dial connects from inside the namespace.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := c.ns.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// Get fetches http://host/ within timeout and returns the body, trimmed
// (a node's name); a status other than 200 is an error.
func (c *Client) Get(ctx context.Context, host string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + host + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// AwaitAnswer polls host every interval, one request at a time, each
// within timeout, until it answers with want (a node's name), and returns
// when that answer came; it gives up when ctx ends, with the last error.
// A timeout too short for a loaded guest piles up abandoned requests in
// it (busybox httpd forks one child each): give it seconds.
func (c *Client) AwaitAnswer(ctx context.Context, host, want string, interval, timeout time.Duration) (time.Time, error) {
	var last error
	for {
		got, err := c.Get(ctx, host, timeout)
		if err == nil && got == want {
			return time.Now(), nil
		}
		if err == nil {
			err = fmt.Errorf("%s answered %q, not %q", host, got, want)
		}
		if last == nil || ctx.Err() == nil {
			last = err // not the request that ctx's end cut short
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s never answered as %s (%v): %w", host, want, context.Cause(ctx), last)
		case <-time.After(interval):
		}
	}
}

// HTTPCheck is a heartbeat check of host (http://host/), made from the
// namespace: it passes on a 200 within the check's deadline.
func (c *Client) HTTPCheck(host string) failover.Checker {
	return failover.CheckFunc(func(ctx context.Context) error {
		_, err := c.Get(ctx, host, time.Hour) // the check's deadline bounds it
		return err
	})
}

// TCPCheck is a heartbeat check of addr ("10.77.1.2:80"), made from the
// namespace: it passes once the guest's kernel completed the handshake,
// whatever the server does after. Lighter on a slow guest than HTTPCheck,
// for a heartbeat that polls often.
func (c *Client) TCPCheck(addr string) failover.Checker {
	return failover.CheckFunc(func(ctx context.Context) error {
		conn, err := c.dial(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp check: %w", err)
		}
		return conn.Close()
	})
}
