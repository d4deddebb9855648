package pcmk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ExitCode is an OCF resource agent's exit status.
type ExitCode int

// The OCF exit codes the agent uses (OCF resource agent API 1.1).
const (
	Success        ExitCode = 0 // OCF_SUCCESS
	ErrGeneric     ExitCode = 1 // OCF_ERR_GENERIC: the VM failed, or an action did
	ErrArgs        ExitCode = 2 // OCF_ERR_ARGS: a required parameter is missing, or a bad action
	ErrUnimpl      ExitCode = 3 // OCF_ERR_UNIMPLEMENTED: an action the agent lacks
	ErrPerm        ExitCode = 4 // OCF_ERR_PERM
	ErrInstalled   ExitCode = 5 // OCF_ERR_INSTALLED: the vmm (or a tool) is missing here
	ErrConfigured  ExitCode = 6 // OCF_ERR_CONFIGURED: a parameter is wrong
	NotRunning     ExitCode = 7 // OCF_NOT_RUNNING: cleanly stopped
	RunningPromote ExitCode = 8 // OCF_RUNNING_PROMOTED
	FailedPromoted ExitCode = 9 // OCF_FAILED_PROMOTED
)

// Actions the agent implements, as Pacemaker and ocf-tester name them.
const Actions = "start, stop, monitor, promote, demote, notify, meta-data, validate-all, reload"

// RunAgent runs one OCF action and returns its exit code. Messages go to
// stderr; the reason of a failure as a line "ocf-exit-reason:TEXT", which
// Pacemaker shows with the failed action. meta-data writes the XML to
// stdout.
func RunAgent(ctx context.Context, action string, env Env, stdout, stderr io.Writer) ExitCode {
	if action == "meta-data" {
		if err := WriteMetadata(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return ErrGeneric
		}
		return Success
	}
	p, err := ParseParams(env)
	if err != nil {
		code := ErrConfigured
		var pe *ParamError
		if errors.As(err, &pe) {
			code = pe.Code
		}
		// A monitor or stop with broken parameters on a node where the
		// VM cannot run says so with the code Pacemaker expects: the
		// VM is not running here, and stopping it has nothing to do.
		switch action {
		case "stop":
			code = Success
		case "monitor":
			if p.Interval == 0 {
				code = NotRunning
			}
		}
		exitReason(stderr, err.Error())
		return code
	}
	var reason strings.Builder
	a := &Agent{P: p, CRM: NewCRM(), Stderr: io.MultiWriter(stderr, &reason)}
	code := ErrUnimpl
	switch action {
	case "start":
		code = a.Start(ctx)
	case "stop":
		code = a.Stop(ctx)
	case "monitor", "status":
		code = a.Monitor(ctx)
	case "promote":
		code = a.Promote(ctx)
	case "demote":
		code = a.Demote(ctx)
	case "notify", "reload":
		return Success
	case "validate-all":
		return a.Validate()
	default:
		exitReason(stderr, fmt.Sprintf("unknown action %q (want one of %s)", action, Actions))
		return ErrUnimpl
	}
	a.state().Record(Action{Action: action, Code: code, Interval: p.Interval, Reason: reason.String()})
	return code
}

// exitReason writes the reason of a failed action in the form Pacemaker
// reads from an agent's stderr.
func exitReason(w io.Writer, msg string) {
	fmt.Fprintf(w, "ocf-exit-reason:%s\n", strings.ReplaceAll(msg, "\n", " "))
}
