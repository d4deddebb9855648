package vmmnode

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Outage is what a client polling the service address saw: the first
// request that failed, the first one sent after it that succeeded, how
// many failed in all, and who answered first and last.
type Outage struct {
	Requests int // requests that ended (answered or failed)
	Failed   int // requests that failed (no answer in time, an error)
	Skipped  int // ticks with MaxInFlight requests open: none sent
	// FirstFailed is when the first failed request was sent; FirstOK when
	// the first successful request sent after it was sent, and FirstOKBy
	// who answered it. Zero when nothing failed, or nothing succeeded
	// after.
	FirstFailed, FirstOK time.Time
	FirstOKBy            string
	// FirstErr is the first failed request's error.
	FirstErr string
	// First and Last are the nodes that answered the first and the last
	// successful request (by the time they were sent).
	First, Last string
}

// Duration is FirstFailed → FirstOK: how long the service looked down to
// the client, to within the polling interval (0 when it never did, or
// never came back).
func (o Outage) Duration() time.Duration {
	if o.FirstFailed.IsZero() || o.FirstOK.IsZero() {
		return 0
	}
	return o.FirstOK.Sub(o.FirstFailed)
}

// MaxInFlight bounds a Poller's open requests.
const MaxInFlight = 2

// maxPolls bounds what a Poller keeps: 2^20 requests, over 14 hours at
// 50 ms. Later requests are made but not kept.
const maxPolls = 1 << 20

// poll is one request's result.
type poll struct {
	sent, ended time.Time // ended: when the answer (or the error) came
	by          string
	err         error
}

// Poller is a client requesting http://host/ from the cluster namespace
// on a fixed schedule, one request every interval whether or not the
// ones before it were answered (each within timeout), as a stream of
// clients would: a request lost with a failed node does not hold up the
// next. At most MaxInFlight requests are open at once (a tick with that
// many open sends nothing, and is counted in Outage.Skipped): busybox
// httpd forks a child for each request, which takes a guest on an
// emulating, loaded host hundreds of milliseconds, and requests the
// client gave up on still cost the guest that much — more in flight
// piles them up until nothing is answered in time. The outage it sees is
// therefore exact to within the interval while requests are answered
// quickly, and to within timeout/MaxInFlight at worst.
type Poller struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	since   time.Time // Reset's time: requests sent before it are not kept
	polls   []poll
	skipped int
}

// Reset forgets every request so far, and those in flight when they end:
// Outage then describes what the client sees from now on (after a slow
// start, say, before the failure a test causes).
func (p *Poller) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since, p.polls, p.skipped = time.Now(), nil, 0
}

// Poll starts polling host until Stop, at most MaxInFlight requests open.
func (c *Client) Poll(host string, interval, timeout time.Duration) *Poller {
	return c.PollN(host, interval, timeout, MaxInFlight)
}

// PollN is Poll with at most inFlight (at least 1) requests open: 1 loads
// a slow guest least, at the price of an outage seen to within a request's
// time rather than the interval.
func (c *Client) PollN(host string, interval, timeout time.Duration, inFlight int) *Poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Poller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		t := time.NewTicker(interval)
		defer t.Stop()
		slots := make(chan struct{}, max(inFlight, 1))
		for {
			select {
			case slots <- struct{}{}:
				sent := time.Now()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					// Not ctx: Stop lets a request in flight end (within
					// timeout), so one lost with a failed node is counted.
					by, err := c.Get(context.Background(), host, timeout)
					p.record(poll{sent: sent, ended: time.Now(), by: by, err: err})
				}()
			default:
				p.mu.Lock()
				p.skipped++
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// record keeps one request's result.
func (p *Poller) record(r poll) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.sent.Before(p.since) {
		return
	}
	if len(p.polls) < maxPolls {
		p.polls = append(p.polls, r)
	}
}

// FirstAnswerBy returns when the first answer from by arrived (not when
// its request was sent: a request sent while the address moved may be
// answered seconds later, after a SYN retransmit), or false if by has
// not answered.
func (p *Poller) FirstAnswerBy(by string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for _, r := range p.polls {
		if r.err == nil && r.by == by && (first.IsZero() || r.ended.Before(first)) {
			first = r.ended
		}
	}
	return first, !first.IsZero()
}

// Outage returns what the client saw so far; only the first outage is
// described.
func (p *Poller) Outage() Outage {
	p.mu.Lock()
	ps := append([]poll(nil), p.polls...)
	o := Outage{Skipped: p.skipped}
	p.mu.Unlock()
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].sent.Before(ps[j].sent) })
	for _, r := range ps {
		o.Requests++
		if r.err != nil {
			o.Failed++
			if o.FirstFailed.IsZero() {
				o.FirstFailed, o.FirstErr = r.sent, r.err.Error()
			}
			continue
		}
		if o.First == "" {
			o.First = r.by
		}
		o.Last = r.by
		if !o.FirstFailed.IsZero() && o.FirstOK.IsZero() {
			o.FirstOK, o.FirstOKBy = r.sent, r.by
		}
	}
	return o
}

// Stop ends the polling, waits for the requests in flight to end (each
// within its timeout), and returns what the client saw.
func (p *Poller) Stop() Outage {
	p.cancel()
	<-p.done
	return p.Outage()
}
