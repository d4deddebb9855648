package probe

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/tracevisor/tracevisor/wire"
)

// Event is one decoded probe hit. Times are host wall-clock Unix
// nanoseconds: HostNS is the guest's hit mapped through KVM_GET_CLOCK,
// ReceivedNS when the VMM took it off the listener queue, DecodedNS when
// it was decoded.
type Event struct {
	Probe      string            `json:"probe"`
	ProbeID    uint32            `json:"probe_id"`
	Class      string            `json:"class"`
	PID        uint32            `json:"pid"`
	TID        uint32            `json:"tid"`
	Comm       string            `json:"comm"`
	CPU        uint16            `json:"cpu"`
	GuestNS    uint64            `json:"guest_ns"`
	HostNS     int64             `json:"host_ns,omitempty"`
	ReceivedNS int64             `json:"received_ns"`
	DecodedNS  int64             `json:"decoded_ns"`
	Return     bool              `json:"return,omitempty"`
	Dropped    uint32            `json:"dropped,omitempty"`
	Args       map[string]uint64 `json:"args,omitempty"`
	// Fields are the class fields (see classFields), flattened into the
	// JSON object: "sig", "sender_pid", "code", ...
	Fields map[string]any `json:"-"`
}

// MarshalJSON writes the event as one flat JSON object, class fields last.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	b, err := json.Marshal(plain(e))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(e.Fields[k])
		if err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON wrote: keys that are not Event's
// own fields become Fields, whole non-negative numbers as uint64.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range eventKeys {
		delete(all, k)
	}
	e.Fields = nil
	for k, raw := range all {
		var v any
		var n uint64
		if err := json.Unmarshal(raw, &n); err == nil {
			v = n
		} else if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if e.Fields == nil {
			e.Fields = map[string]any{}
		}
		e.Fields[k] = v
	}
	return nil
}

// eventKeys are the JSON names of Event's own fields.
var eventKeys = func() []string {
	var keys []string
	t := reflect.TypeOf(Event{})
	for i := 0; i < t.NumField(); i++ {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}()

// classFields names the class fields of wire.Event per class: which of
// sig, other (pid and comm), value and text a class fills, and under what
// names they appear in an Event.
var classFields = map[wire.Class]struct{ sig, other, value, text string }{
	wire.ClassSignal: {sig: "sig", other: "sender"},
	wire.ClassOOM:    {other: "killer", value: "rss_pages"},
	wire.ClassPanic:  {text: "message"},
	wire.ClassOops:   {sig: "sig", value: "trap", text: "message"},
	wire.ClassExit:   {value: "code"},
	wire.ClassHung:   {text: "message"},
	wire.ClassLockup: {text: "message"},
}

// decodeEvent builds an Event from the wire; h.mu is held.
func (h *Host) decodeEvent(m wire.Event, received, decoded int64) Event {
	e := Event{
		ProbeID: m.Probe, Class: m.Class.String(), PID: m.PID, TID: m.TID, Comm: m.Comm,
		CPU: m.CPU, GuestNS: m.GuestNS, ReceivedNS: received, DecodedNS: decoded,
		Return: m.Flags&wire.EvReturn != 0, Dropped: m.Dropped,
	}
	if h.clock != nil && m.Flags&wire.EvClockMono == 0 {
		if ns, ok := h.clock.HostNS(m.GuestNS); ok {
			e.HostNS = ns
		}
	}
	if a := h.reg.ever[m.Probe]; a != nil {
		e.Probe = a.spec.Name
		if len(a.spec.Args) > 0 {
			e.Args = map[string]uint64{}
			for i, arg := range a.spec.Args {
				if i < len(m.Args) {
					e.Args[arg.Name] = m.Args[i]
				}
			}
		}
	}
	if f, ok := classFields[m.Class]; ok {
		e.Fields = map[string]any{}
		if f.sig != "" {
			e.Fields[f.sig] = m.Sig
		}
		if f.other != "" {
			e.Fields[f.other+"_pid"] = m.OtherPID
			e.Fields[f.other+"_comm"] = m.OtherComm
		}
		if f.value != "" {
			e.Fields[f.value] = m.Value
		}
		if f.text != "" {
			e.Fields[f.text] = m.Text
		}
	}
	if m.Class == wire.ClassExit {
		// do_exit's code: exit status in bits 8-15, a killing signal in 0-6.
		e.Fields["status"] = (m.Value >> 8) & 0xff
		e.Fields["signal"] = m.Value & 0x7f
	}
	return e
}

// Subscription is a stream of events. C is closed when the Host closes or
// the subscription is cancelled.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	h       *Host
	dropped atomic.Uint64
}

// Subscribe returns a stream of every event decoded from now on, buffering
// up to size events for a slow reader; beyond that, events are dropped
// for this subscriber and counted by Dropped.
func (h *Host) Subscribe(size int) *Subscription {
	c := make(chan Event, size)
	s := &Subscription{C: c, c: c, h: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Cancel ends the subscription and closes C.
func (s *Subscription) Cancel() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if _, ok := s.h.subs[s]; ok {
		delete(s.h.subs, s)
		close(s.c)
	}
}

// Dropped counts events this subscriber was too slow to take.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// SetEventHook makes fn see every event decoded from now on, first and
// losslessly, on the Host's decoding goroutine (never a vCPU's), before
// any subscriber: the VMM's fence rules act there before any other
// process is involved. fn runs with the Host's lock held: it must return
// quickly and must not call the Host. nil removes it.
func (h *Host) SetEventHook(fn func(Event)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = fn
}

// publish hands e to the hook and every subscriber; h.mu is held.
func (h *Host) publish(e Event) {
	if h.hook != nil {
		h.hook(e)
	}
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}
