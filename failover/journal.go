package failover

import (
	"encoding/json"
	"io"
	"sync"
)

// Journal writes the cluster's history as JSON lines to a writer, one
// object a line, times in host Unix nanoseconds:
//
//	{"time_ns":..,"node":"a","from":"active","to":"failed","cause":"probe: signal KILL to httpd[212] by sh[201]"}
//	{"time_ns":..,"service":"down","cause":"no healthy standby after a failed"}
//	{"time_ns":..,"service":"up","active":"b","cause":"failover from a"}
//
// A line with "node" is a node transition; one with "service" is the
// service's state. A nil *Journal writes nothing. Safe for concurrent use.
type Journal struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

// NewJournal returns a Journal writing to w.
func NewJournal(w io.Writer) *Journal { return &Journal{enc: json.NewEncoder(w)} }

// TransitionLine is one node transition as the journal writes it.
type TransitionLine struct {
	TimeNS int64  `json:"time_ns"`
	Node   string `json:"node"`
	From   State  `json:"from"`
	To     State  `json:"to"`
	Cause  string `json:"cause"`
}

// ServiceLine is one change of the service's state as the journal writes
// it: Service is "up" (Active names the node serving) or "down".
type ServiceLine struct {
	TimeNS  int64  `json:"time_ns"`
	Service string `json:"service"`
	Active  string `json:"active,omitempty"`
	Cause   string `json:"cause"`
}

// Err returns the first write error, if any; after one, the journal
// writes nothing more.
func (j *Journal) Err() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

func (j *Journal) transition(ns int64, node string, from, to State, cause string) {
	j.write(TransitionLine{TimeNS: ns, Node: node, From: from, To: to, Cause: cause})
}

func (j *Journal) service(ns int64, up bool, active, cause string) {
	l := ServiceLine{TimeNS: ns, Service: "down", Cause: cause}
	if up {
		l.Service, l.Active = "up", active
	}
	j.write(l)
}

func (j *Journal) write(v any) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = j.enc.Encode(v)
	}
}
