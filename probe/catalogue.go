package probe

import (
	"fmt"
	"sort"
	"strings"
)

// Entry is a ready-made set of probes for one kind of failure, armed with
// --probe catalogue:NAME and listed by `vmm probe catalogue`.
type Entry struct {
	Name    string // as in catalogue:NAME
	Summary string // one line
	Doc     string // the symbols chosen, why, and what the probes miss
	Specs   []Spec
}

// catalogueEntry is an Entry before its specs are parsed.
type catalogueEntry struct {
	name, summary, doc string
	specs              []string
}

// catalogue is the source of Catalogue. Every spec parses (tested), and
// spec names are unique across entries.
var catalogue = []catalogueEntry{
	// signal: kprobe send_signal_locked, class signal; misses SIGKILLs set
	// directly (zap_other_threads), POSIX timer signals; reports sends,
	// not deaths.
	{
		name:    "signal",
		summary: "a signal sent to a task (kill, OOM kill, fatal fault): which, to whom, by whom",
		specs: []string{"p:signal send_signal_locked sig=%di class:signal " +
			"sig:HUP,INT,QUIT,ILL,TRAP,ABRT,BUS,FPE,KILL,USR1,SEGV,USR2,PIPE,ALRM,TERM,STKFLT," +
			"STOP,TSTP,TTIN,TTOU,XCPU,XFSZ,VTALRM,PROF,IO,PWR,SYS,32-63"},
		doc: `kprobe on send_signal_locked(sig, info, t, type), Linux 6.1's
common path for kill(2), tkill/tgkill, the OOM killer's SIGKILL and the
signals the kernel forces on a faulting task (SIGSEGV, SIGBUS, SIGFPE).
Subject: the target t; sig: the signal; other: the sender (current).
Signals whose default action is to be ignored (CHLD, CONT, URG, WINCH)
are filtered out: SIGCHLD alone would report every exit twice.

Misses: SIGKILLs the kernel sets without send_signal_locked, as
zap_other_threads does to a thread group's other threads on exit_group,
exec or a fatal signal (one event for the process, not one per thread),
and a core dump's zap_process; POSIX timer signals (send_sigqueue); a
signal to a thread already released (lock_task_sighand fails first).
An event says a signal was sent, not that it killed: the target may
handle, block or ignore it, and one sent to a task already exiting is
reported though the kernel drops it. See exit for the deaths.`,
	},
	// oom: kprobes out_of_memory and mark_oom_victim, class oom; misses the
	// other processes sharing the victim's mm, user-space OOM killers,
	// plain ENOMEM failures.
	{
		name:    "oom",
		summary: "the kernel's OOM killer: when it runs, and the victim it picks",
		specs:   []string{"p:oom out_of_memory class:oom", "p:oom_victim mark_oom_victim class:oom"},
		doc: `Two kprobes. out_of_memory(oc): the OOM killer starts, for the
whole guest or for a memory cgroup; subject: the task whose allocation
failed. mark_oom_victim(tsk): the task chosen to die; subject: the
victim; value: its RSS in pages; other: the task that ran the OOM killer.
In this 6.1 build mark_oom_victim is a static function the compiler did
not inline; kprobes reach it through kallsyms. A build that inlines it
fails that probe's attach (ENOENT) and leaves out_of_memory alone.

Misses: the other processes sharing the victim's memory, killed in the
same pass by a plain SIGKILL (the signal entry sees them); user-space OOM
killers (systemd-oomd, earlyoom), which only send signals; allocations
that fail with ENOMEM without the OOM killer (costly orders,
__GFP_NORETRY, a cgroup v1 memcg with oom_kill_disable); panic_on_oom,
which panics instead (see panic). out_of_memory also fires when it kills
nothing (a victim already dying, none eligible). Narrowed to a service,
out_of_memory only reports OOMs the service's own allocations started;
oom_victim reports the service being killed, whoever started it.`,
	},
	// panic: the panic notifier, class panic; misses panics before the
	// driver registers, kdump kernels that run first, resets without panic.
	{
		name:    "panic",
		summary: "a kernel panic, with its message",
		specs:   []string{"panic"},
		doc: `The panic notifier chain (kind panic), not a kprobe: the kernel's
own hook, the same in every build. The driver's notifier runs inside
panic() on the panicking CPU, after the other CPUs are stopped; text: the
panic message; subject: the task current on that CPU.

Misses: panics before the probe driver registers (early boot); a loaded
kdump kernel, which panic() starts before the notifiers unless
crash_kexec_post_notifiers is set; a notifier earlier in the chain that
hangs; a panic on a CPU that held the probe queue's lock, where the
driver cannot send. A guest that resets or triple-faults without
panic() is not seen here; the VMM's own exit status tells those apart.
Narrowing to a service's comm keeps only panics while it was current,
which is rarely what is wanted: a panic stops every service.`,
	},
	// oops: the die notifier, class oops; only DIE_OOPS; misses WARN()s.
	{
		name:    "oops",
		summary: "a kernel oops",
		specs:   []string{"die:oops"},
		doc: `The die notifier chain (kind die), not a kprobe: the trap handlers
call it before they kill the current task. DIE_OOPS is a kernel oops: a
bad page fault, BUG(), a general protection fault in the kernel. text:
the die string ("Oops", "general protection fault", "invalid opcode");
value: the trap number; sig: the signal the kernel would send; subject:
current.

The driver reports DIE_OOPS only: the chain is also called for traps
that are not oopses (a user process's divide error or invalid opcode,
breakpoints and single steps under a debugger, NMIs) and, for a kernel
trap that then oopses, once before the oops; those are not reported.
Misses: WARN()s, which do not die; user-space segmentation faults, which
are signals (see signal); an oops inside the driver's own send path. An
oops in interrupt context, or with panic_on_oops, is followed by a panic.`,
	},
	// exit: kprobe do_exit, class exit; every task and thread exit; misses
	// tasks that never exit (hung) and exec.
	{
		name:    "exit",
		summary: "a task exits: its exit code or the signal that killed it",
		specs:   []string{"p:exit do_exit code=%di class:exit"},
		doc: `kprobe on do_exit(code): every task's and thread's exit goes
through it, whether it called exit(2), was killed by a signal or
oopsed. Subject: the exiting task; value (and arg code): a wait(2)
status, status<<8 for exit(status), the signal (|0x80 with a core dump)
for a death by signal. Noisy: every command a shell runs and every
thread; narrow with comm:, pid: or a predicate, as code&0x7f for deaths
by signal only.

Misses: tasks that never reach do_exit, as those stuck in
uninterruptible sleep (see hung); exec(), which replaces a program
without an exit (the comm changes). A process's end is one event per
thread; the last one is the process's. The exit of init is followed by
a panic.`,
	},
	// hung: kprobes sched_show_task (khungtaskd's report of a hung task)
	// and add_taint with TAINT_SOFTLOCKUP; misses hard lockups, killable
	// sleeps, reports past hung_task_warnings.
	{
		name:    "hung",
		summary: "a task hung in uninterruptible sleep, or a CPU in a soft lockup",
		specs: []string{"p:hung sched_show_task class:hung",
			"p:lockup add_taint flag=%di class:lockup flag==14"},
		doc: `Two kprobes. sched_show_task(p): khungtaskd calls it to print a
task in uninterruptible sleep (D state) for longer than
kernel.hung_task_timeout_secs (120 s by default); the driver reports it
only when current is khungtaskd, so sysrq-t dumps are not taken for hung
tasks. Subject: the hung task. add_taint(flag) with flag == 14
(TAINT_SOFTLOCKUP): the soft-lockup watchdog calls it when a CPU ran
kernel code without scheduling for 2*kernel.watchdog_thresh (20 s by
default). Subject: the task that held the CPU. Symbols, not tracepoints:
the guest kernel has no tracing (kprobe_events cost 26 s of boot).

Needs CONFIG_DETECT_HUNG_TASK and CONFIG_SOFTLOCKUP_DETECTOR in the
guest kernel: without them the probes arm but nothing calls these.
Misses: hung-task reports after kernel.hung_task_warnings of them (10 by
default, one per hung task per check; -1: no limit), and none at all
with hung_task_panic (a panic instead); killable and idle sleeps
(TASK_KILLABLE, TASK_IDLE), which the detector skips; hard lockups (a
CPU stuck with interrupts off) and RCU stalls; a lockup of every vCPU,
which leaves none to send the event. To try both: vmm inject stall (a
kernel thread in D state) and vmm inject hang (a CPU spun with
preemption off).`,
	},
}

// Catalogue returns the ready-made probe sets, sorted by name:
//
//	exit    kprobe do_exit (class exit)
//	hung    kprobes sched_show_task (hung) and add_taint flag==14 (lockup)
//	oom     kprobes out_of_memory and mark_oom_victim (oom)
//	oops    the die notifier (oops)
//	panic   the panic notifier (panic)
//	signal  kprobe send_signal_locked (signal)
//
// Each Entry's Doc says why its symbols and what they miss. The result is
// the caller's to change.
func Catalogue() []Entry {
	out := make([]Entry, 0, len(catalogue))
	for _, c := range catalogue {
		e := Entry{Name: c.name, Summary: c.summary, Doc: c.doc}
		for _, s := range c.specs {
			sp, err := ParseSpec(s)
			if err != nil {
				panic(fmt.Sprintf("probe catalogue %s: %v", c.name, err)) // caught by TestCatalogue
			}
			e.Specs = append(e.Specs, sp)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupCatalogue returns the catalogue entry called name.
func LookupCatalogue(name string) (Entry, bool) {
	for _, e := range Catalogue() {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// ParseProbeFlag reads one --probe value: a spec (see ParseSpec), or
// catalogue:NAME for an entry's specs, or catalogue:NAME:comm=SERVICE for
// them with every spec's comm filter set to SERVICE.
func ParseProbeFlag(s string) ([]Spec, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "catalogue:")
	if !ok {
		sp, err := ParseSpec(s)
		if err != nil {
			return nil, err
		}
		return []Spec{sp}, nil
	}
	name, opt, narrowed := strings.Cut(rest, ":")
	e, ok := LookupCatalogue(name)
	if !ok {
		var names []string
		for _, e := range Catalogue() {
			names = append(names, e.Name)
		}
		return nil, fmt.Errorf("probe %q: no catalogue entry %q (entries: %s)", s, name, strings.Join(names, " "))
	}
	if !narrowed {
		return e.Specs, nil
	}
	comm, ok := strings.CutPrefix(opt, "comm=")
	if !ok {
		return nil, fmt.Errorf("probe %q: after catalogue:%s: only comm=SERVICE", s, name)
	}
	if comm == "" || !validComm(comm) {
		return nil, fmt.Errorf("probe %q: comm=%s: a comm is 1 to %d bytes, no spaces (the kernel keeps no more of a task's name)",
			s, comm, MaxCommLen)
	}
	for i := range e.Specs {
		e.Specs[i].Comm = comm
	}
	return e.Specs, nil
}
