package probe

import (
	"sort"
	"time"

	"github.com/tracevisor/tracevisor/wire"
)

// A second hello is a driver that started again (a module reloaded, a
// device reset): it holds no probes. The host arms its attached ones again,
// under the same ids, so nothing is silently lost. A guest may say hello as
// often as it likes, so at most one re-arm is in flight: from its commands'
// sending until each is answered (or rearmWait passes). A hello meanwhile
// only marks that another is needed, and it runs once after. Each probe has
// at most one attach command outstanding: a re-arm takes over the one
// before it, waiter included.

// rearmWait is how long a re-arm waits for its answers before the next
// one may start; the driver it was sent to may have gone.
const rearmWait = 5 * time.Second

// rearmState is the re-arm in flight; Host.mu guards it.
type rearmState struct {
	running bool // a rearmLoop goroutine runs
	again   bool // a hello came: re-arm (once more)
}

// rearmBatch counts one re-arm's unanswered commands; done is closed at 0.
type rearmBatch struct {
	left int
	done chan struct{}
}

// rearmCommand is one attach command of a re-arm.
type rearmCommand struct {
	r   *request
	seq uint32
	b   []byte
}

// helloLocked handles the driver's hello; Host.mu is held.
func (h *Host) helloLocked(m wire.Hello) {
	first := h.hello == nil
	h.hello = &m
	if first {
		close(h.ready)
		return
	}
	h.counts.Restarts++
	if h.reg.count() == 0 {
		return
	}
	h.rearm.again = true
	if !h.rearm.running {
		h.rearm.running = true
		go h.rearmLoop()
	}
}

// rearmLoop runs re-arms while hellos ask for them, one at a time.
func (h *Host) rearmLoop() {
	for {
		h.mu.Lock()
		if h.closed || !h.rearm.again {
			h.rearm.running = false
			h.mu.Unlock()
			return
		}
		h.rearm.again = false
		cmds, batch := h.rearmCommandsLocked()
		h.mu.Unlock()

		if len(cmds) > 0 {
			h.log.Printf("probe: the guest driver started again: re-arming %d probes", len(cmds))
		}
		for _, c := range cmds {
			h.issue(c.r, c.seq, c.b)
		}
		t := time.NewTimer(rearmWait)
		select {
		case <-batch.done:
		case <-t.C:
		case <-h.done:
		}
		t.Stop()
	}
}

// rearmCommandsLocked marks every attached probe (but those being detached)
// arming and returns an attach command for each, in id order, with the
// batch that counts their answers; Host.mu is held.
func (h *Host) rearmCommandsLocked() ([]rearmCommand, *rearmBatch) {
	batch := &rearmBatch{done: make(chan struct{})}
	ids := make([]uint32, 0, h.reg.count())
	for id, a := range h.reg.attached {
		if !a.detaching {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var cmds []rearmCommand
	for _, id := range ids {
		a := h.reg.get(id)
		r := h.reqs[a.seq]
		if a.seq != 0 && r != nil {
			// Its attach is still out, to a driver that may be gone:
			// this one replaces it, and its waiter waits for this.
			delete(h.reqs, a.seq)
			h.leaveBatchLocked(r)
			r.parts = nil
		} else {
			r = &request{cmd: wire.CmdAttach, op: "re-arm " + a.spec.Name, probe: id}
		}
		h.addRequestLocked(r)
		b, err := attachCommand(a.spec, id, r.seq)
		if err != nil { // it was marshalled once: cannot happen
			h.log.Printf("probe: re-arming %q: %v", a.spec.Name, err)
			h.abandonLocked(r, false)
			continue
		}
		r.batch = batch
		batch.left++
		a.state, a.seq = stateArming, r.seq
		cmds = append(cmds, rearmCommand{r: r, seq: r.seq, b: b})
	}
	if batch.left == 0 {
		close(batch.done)
	}
	return cmds, batch
}

// leaveBatchLocked takes r out of its re-arm's count; Host.mu is held.
func (h *Host) leaveBatchLocked(r *request) {
	if b := r.batch; b != nil {
		r.batch = nil
		if b.left--; b.left == 0 {
			close(b.done)
		}
	}
}
