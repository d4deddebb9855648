package probe

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/tracevisor/tracevisor/wire"
)

// errProtocol is an answer that breaks the wire protocol; the waiter gets
// it wrapped with the command.
var errProtocol = errors.New("the guest driver broke the protocol")

// request is one command awaiting the guest's answer: the pending table's
// entry. Every answer is matched against the type it expects; an answer of
// another type, for a sequence number not in the table (never asked, or
// given up on), or past the protocol's bounds is malformed and never
// reaches the waiter.
type request struct {
	seq   uint32       // its key in the table; a re-arm may move it
	cmd   wire.MsgType // the command: CmdAttach, CmdDetach, CmdStats, CmdInject
	op    string       // for errors and log lines: "attach sig"
	probe uint32       // CmdAttach, CmdDetach: the probe id the reply names
	wait  chan answer  // capacity 1; nil when nobody waits (preload, re-arm)
	parts []wire.Stat  // CmdStats: entries received so far
	batch *rearmBatch  // the re-arm it belongs to, if any
}

// answer is what a waiter gets: the reply, the stats entries, or an error.
type answer struct {
	reply wire.Reply
	stats []wire.Stat
	err   error
}

// want is the message type that answers r.
func (r *request) want() wire.MsgType {
	if r.cmd == wire.CmdStats {
		return wire.MsgStats
	}
	return wire.MsgReply
}

// pendingTable holds every outstanding request by sequence number. Its
// size is bounded by the host's own commands: one entry per waiting call,
// one per attached probe for preloads and re-arms.
type pendingTable map[uint32]*request

// add registers r under a fresh sequence number; Host.mu is held.
func (h *Host) addRequestLocked(r *request) {
	r.seq = h.nextSeq()
	h.reqs[r.seq] = r
}

// nextSeq returns a fresh nonzero sequence number not in the table;
// Host.mu is held.
func (h *Host) nextSeq() uint32 {
	for {
		h.seq++
		if _, busy := h.reqs[h.seq]; h.seq != 0 && !busy {
			return h.seq
		}
	}
}

// matchLocked gives a Reply or Stats to the request it answers, or says
// why it answers none (the message is then malformed); Host.mu is held.
func (h *Host) matchLocked(m wire.Message) error {
	switch m := m.(type) {
	case wire.Reply:
		r := h.reqs[m.Seq]
		if r == nil {
			return fmt.Errorf("reply to sequence number %d, which awaits no answer", m.Seq)
		}
		if r.want() != wire.MsgReply && m.Status == 0 {
			// The driver answers a command it cannot parse with a
			// refusal; a success reply is no answer to a stats request.
			return fmt.Errorf("reply with status 0 to %s command %d, which awaits %s", r.cmd, m.Seq, r.want())
		}
		if r.probe != 0 && m.ID != r.probe && (m.Status == 0 || m.ID != 0) {
			return fmt.Errorf("reply to %s command %d names probe %d, not %d", r.cmd, m.Seq, m.ID, r.probe)
		}
		delete(h.reqs, m.Seq)
		h.completeLocked(r, answer{reply: m})
	case wire.Stats:
		r := h.reqs[m.Seq]
		if r == nil {
			return fmt.Errorf("stats for sequence number %d, which awaits no answer", m.Seq)
		}
		if r.want() != wire.MsgStats {
			return fmt.Errorf("stats answering %s command %d, which awaits %s", r.cmd, m.Seq, r.want())
		}
		if len(r.parts)+len(m.Entries) > wire.MaxProbes {
			delete(h.reqs, m.Seq)
			err := fmt.Errorf("stats answer %d holds more than %d entries", m.Seq, wire.MaxProbes)
			h.completeLocked(r, answer{err: fmt.Errorf("probe: %s: %w: %v", r.op, errProtocol, err)})
			return err
		}
		r.parts = append(r.parts, m.Entries...)
		if m.Last {
			delete(h.reqs, m.Seq)
			h.completeLocked(r, answer{stats: r.parts})
		}
	default:
		return fmt.Errorf("%s message (type %#x) is no answer", m.Type(), uint16(m.Type()))
	}
	return nil
}

// completeLocked ends r, already out of the table, with a: an attach's
// answer updates its probe's state, a re-arm counts down its batch, and a
// waiter gets a. Host.mu is held.
func (h *Host) completeLocked(r *request, a answer) {
	if r.cmd == wire.CmdAttach {
		a = h.attachAnsweredLocked(r, a)
	}
	if r.cmd == wire.CmdDetach && r.wait == nil {
		h.detachAnsweredLocked(r, a)
	}
	h.leaveBatchLocked(r)
	if r.wait != nil {
		r.wait <- a
		r.wait = nil
	}
}

// attachAnsweredLocked records the guest's answer to an attach of r.probe
// and returns the answer its waiter gets; Host.mu is held.
func (h *Host) attachAnsweredLocked(r *request, a answer) answer {
	p := h.reg.get(r.probe)
	if p == nil || p.seq != r.seq {
		return a
	}
	p.seq = 0
	status := a.reply.Status
	switch {
	case a.err != nil:
		p.state = stateUnconfirmed
	case status == 0, r.batch != nil && status == -int32(syscall.EEXIST):
		// EEXIST on a re-arm: the driver holds our id already (it got
		// the commands of an earlier re-arm): armed.
		p.state = stateArmed
		a.reply.Status = 0
	default:
		errno := syscall.Errno(-status)
		h.reg.fail(p, errno)
		if r.wait == nil {
			h.log.Printf("probe: guest refused probe %q (%s): %s (%s)", p.spec.Name, p.spec, explain(wire.CmdAttach, errno), errnoName(errno))
		}
	}
	return a
}

// detachAnsweredLocked does what Detach does with the answer to a detach
// nobody waits for: one restored from a snapshot (HostState), whose caller
// stayed in the old process. Host.mu is held.
func (h *Host) detachAnsweredLocked(r *request, a answer) {
	p := h.reg.get(r.probe)
	if p == nil {
		return
	}
	p.detaching = false
	if a.err == nil && (a.reply.Status == 0 || a.reply.Status == -int32(syscall.ENOENT)) {
		h.reg.remove(p.id)
	}
}

// abandonLocked ends r without an answer: its waiter gave up, or its
// command could not be sent (sent false). r is still in the table.
// Host.mu is held.
func (h *Host) abandonLocked(r *request, sent bool) {
	delete(h.reqs, r.seq)
	if r.cmd == wire.CmdAttach {
		if p := h.reg.get(r.probe); p != nil && p.seq == r.seq {
			p.seq = 0
			if !sent && p.state == stateArming && r.batch == nil {
				h.reg.remove(p.id) // a new attach that never left the host
			} else {
				p.state = stateUnconfirmed
			}
		}
	}
	h.leaveBatchLocked(r)
	r.wait = nil
}

// owns reports whether r is still the table's entry for seq.
func (h *Host) ownsLocked(r *request, seq uint32) bool {
	return r.seq == seq && h.reqs[seq] == r
}
