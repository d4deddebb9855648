package pcmk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tracevisor/tracevisor/failover"
	"github.com/tracevisor/tracevisor/internal/atomicfile"
)

// State is the directory one VM instance keeps on its node:
// STATE_DIR/NODE/NAME. Its files:
//
//	api.sock      the vmm's control API
//	vmm.pid       the vmm's pid; vmm.log its output; events.jsonl its events
//	fastpath.pid  the fast path's pid; fastpath.log its journal (JSON lines)
//	started       written by start, removed by stop: a VM that is gone
//	              while it is there has failed, not stopped
//	promoted      written by promote, removed by demote and stop
//	verdict.json  the standing failure verdict the fast path wrote
//	agent.log     the agent's actions (JSON lines, Action): every start,
//	              stop, promote and demote, and each monitor that did not
//	              find the instance healthy
type State string

// StateFor returns the state directory of VM name on node under root.
func StateFor(root, node, name string) State {
	return State(filepath.Join(root, node, name))
}

// Path returns the path of one of the state's files.
func (s State) Path(file string) string { return filepath.Join(string(s), file) }

// Sock is the vmm's control API socket.
func (s State) Sock() string { return s.Path("api.sock") }

// Has reports whether the state holds file.
func (s State) Has(file string) bool {
	_, err := os.Stat(s.Path(file))
	return err == nil
}

// Mark writes file (empty) into the state; Unmark removes it.
func (s State) Mark(file string) error {
	if err := os.MkdirAll(string(s), 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.Path(file), nil, 0o644)
}

// Unmark removes file from the state (no error when it is not there).
func (s State) Unmark(file string) error {
	if err := os.Remove(s.Path(file)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// WritePID records pid in file.
func (s State) WritePID(file string, pid int) error {
	return writeAtomic(s.Path(file), []byte(strconv.Itoa(pid)+"\n"))
}

// PID returns the live process recorded in file whose command line
// contains want (a pid reused by another program is not ours), or 0.
func (s State) PID(file, want string) int {
	b, err := os.ReadFile(s.Path(file))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), want) {
		return 0
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && zombie(st) {
		return 0
	}
	return pid
}

// zombie reports whether a /proc/PID/stat line is a zombie's (state Z).
func zombie(stat []byte) bool {
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// maxVerdictFile bounds the verdict file read back (it holds one verdict,
// whose text fields come from the guest).
const maxVerdictFile = 64 << 10

// WriteVerdict makes v the standing verdict.
func (s State) WriteVerdict(v failover.Verdict) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeAtomic(s.Path("verdict.json"), append(b, '\n'))
}

// Verdict returns the standing verdict, if there is one.
func (s State) Verdict() (failover.Verdict, bool) {
	f, err := os.Open(s.Path("verdict.json"))
	if err != nil {
		return failover.Verdict{}, false
	}
	defer f.Close()
	var v failover.Verdict
	if err := json.NewDecoder(io.LimitReader(f, maxVerdictFile)).Decode(&v); err != nil {
		// A verdict file that cannot be read is still a verdict: the
		// fast path wrote it because it saw a failure.
		return failover.Verdict{Detector: "probe", Cause: failover.Cause{Rule: "unreadable verdict file", Detail: err.Error()}}, true
	}
	return v, true
}

// writeAtomic writes b to path by a rename, so a reader sees all or none.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Not synced: a verdict is on the failover's path, and these files
	// (pids, the verdict, a trimmed log) mean nothing after a host crash,
	// which ends the VMs they describe.
	return atomicfile.Replace(path, 0o644, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// Action is one line of the state's agent.log.
type Action struct {
	TimeNS   int64    `json:"time_ns"`
	Action   string   `json:"action"`
	Code     ExitCode `json:"rc"`
	Interval int64    `json:"interval_ms,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// maxAgentLog bounds agent.log: beyond it the oldest half is dropped.
const maxAgentLog = 1 << 20

// Record appends a to agent.log, except a monitor that found the
// instance healthy or cleanly stopped (one every interval: noise).
func (s State) Record(a Action) {
	if a.Action == "monitor" && (a.Code == Success || a.Code == RunningPromote || a.Code == NotRunning) {
		return
	}
	if a.TimeNS == 0 {
		a.TimeNS = time.Now().UnixNano()
	}
	if len(a.Reason) > 2000 {
		a.Reason = a.Reason[:2000]
	}
	b, err := json.Marshal(a)
	if err != nil {
		return
	}
	if os.MkdirAll(string(s), 0o755) != nil {
		return
	}
	path := s.Path("agent.log")
	if st, err := os.Stat(path); err == nil && st.Size() > maxAgentLog {
		if old, err := os.ReadFile(path); err == nil {
			writeAtomic(path, old[len(old)/2:])
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// Actions reads agent.log (malformed lines are skipped).
func (s State) Actions() []Action {
	b, err := os.ReadFile(s.Path("agent.log"))
	if err != nil {
		return nil
	}
	var out []Action
	for _, line := range strings.Split(string(b), "\n") {
		var a Action
		if line != "" && json.Unmarshal([]byte(line), &a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// perRun are the files each start of the VM begins afresh. The last
// KeptRuns runs' are kept beside them as NAME.prev.EXT (the run before
// this one), NAME.prev2.EXT, ... , so a post-mortem of a failed run
// survives its recovery even when that took more than one start.
var perRun = []string{"events.jsonl", "vmm.log", "fastpath.log"}

// KeptRuns is how many earlier runs' files a state keeps.
const KeptRuns = 3

// KeepPrevious moves the last run's files aside, and the oldest kept
// run's out (start calls it).
func (s State) KeepPrevious() {
	for _, f := range perRun {
		if !s.Has(f) {
			continue
		}
		for n := KeptRuns - 1; n >= 1; n-- {
			os.Rename(s.Path(prevName(f, n)), s.Path(prevName(f, n+1)))
		}
		os.Rename(s.Path(f), s.Path(prevName(f, 1)))
	}
}

// prevName is file's name for the run n starts before the current one:
// events.jsonl → events.prev.jsonl (1), events.prev2.jsonl (2), ...
func prevName(file string, n int) string {
	ext := filepath.Ext(file)
	tag := ".prev"
	if n > 1 {
		tag += strconv.Itoa(n)
	}
	return strings.TrimSuffix(file, ext) + tag + ext
}

// Runs returns the paths of file for the kept earlier runs and the
// current one, the oldest first (any may not exist).
func (s State) Runs(file string) []string {
	var out []string
	for n := KeptRuns; n >= 1; n-- {
		out = append(out, s.Path(prevName(file, n)))
	}
	return append(out, s.Path(file))
}

// Steps reads the fast path's journal lines (JSON, Step) of the kept
// runs and the current one with a time at or after since.
func (s State) Steps(since int64) []Step {
	var out []Step
	for _, path := range s.Runs("fastpath.log") {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			var st Step
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &st) == nil && st.TimeNS >= since {
				out = append(out, st)
			}
		}
	}
	return out
}
