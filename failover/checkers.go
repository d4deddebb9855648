package failover

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
)

// HTTPCheck checks a service by GET url: it passes on a 2xx or 3xx answer
// within the check's deadline. It follows no redirect and keeps no
// connection between checks, so each check is a fresh connect, as a new
// client would make.
func HTTPCheck(url string) Checker {
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return CheckFunc(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("http check %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("http check: %w", err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http check %s: %s", url, resp.Status)
		}
		return nil
	})
}

// TCPCheck checks a service by connecting to addr ("10.0.3.2:80"): it
// passes when the connection is accepted within the check's deadline.
func TCPCheck(addr string) Checker {
	return dialCheck("tcp", addr)
}

// VMMCheck checks that a node's vmm runs: its control API socket at path
// (`vmm run --api PATH`) accepts a connection. It asks nothing of the
// guest, so a busy guest does not fail it; a vmm that exited (the guest
// powered off, panicked or crashed the VMM) does.
func VMMCheck(path string) Checker {
	return dialCheck("unix", path)
}

// dialCheck passes when network/addr accepts a connection before ctx's
// deadline.
func dialCheck(network, addr string) Checker {
	return CheckFunc(func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return fmt.Errorf("%s check: %w", network, err)
		}
		return c.Close()
	})
}
