/* SPDX-License-Identifier: MIT */
/*
 * tracevisor probe device: the wire between the VMM (host) and the guest's
 * probe driver. This header is the single definition of the device and its
 * messages; the Go side (package wire) is checked against it by a test that
 * compiles a C program with this header and compares sizes, offsets, values
 * and encoded bytes.
 *
 * Device: virtio, device ID TVP_DEVICE_ID (outside the range OASIS assigns),
 * feature bits: only VIRTIO_F_VERSION_1. Two queues:
 *   queue 0, loader   (host -> guest): the driver posts device-writable
 *                     buffers of TVP_BUF_SIZE bytes; the device fills one
 *                     with one command message.
 *   queue 1, listener (guest -> host): the driver adds a device-readable
 *                     buffer holding one message (an event, a reply, stats,
 *                     hello) and notifies; the device returns it used.
 *
 * Every message is little-endian, starts with struct tvp_hdr and is at most
 * TVP_BUF_SIZE bytes. All structs are naturally aligned with explicit
 * padding: no compiler inserts anything.
 */
#ifndef TRACEVISOR_PROBE_H
#define TRACEVISOR_PROBE_H

#include <linux/types.h>

#define TVP_DEVICE_ID 0x7476 /* "tv" */
#define TVP_VERSION 1

#define TVP_QUEUE_LOADER 0
#define TVP_QUEUE_LISTENER 1
#define TVP_BUF_SIZE 256

/*
 * Device configuration space. boot_cmds: the number of commands the device
 * queued on the loader before the driver set DRIVER_OK; the driver handles
 * that many before its probe returns, so probes given on the VMM's command
 * line are armed before user space starts.
 */
struct tvp_config {
	__le32 version;   /* TVP_VERSION */
	__le32 boot_cmds;
};

/* Message types: commands (host -> guest) below 0x80, messages (guest -> host) above. */
#define TVP_CMD_ATTACH 0x01
#define TVP_CMD_DETACH 0x02
#define TVP_CMD_STATS 0x03
#define TVP_CMD_INJECT 0x04
#define TVP_MSG_HELLO 0x81
#define TVP_MSG_REPLY 0x82
#define TVP_MSG_EVENT 0x83
#define TVP_MSG_STATS 0x84

struct tvp_hdr {
	__le16 type; /* TVP_CMD_* or TVP_MSG_* */
	__le16 len;  /* bytes of the whole message, header included */
	__le32 seq;  /* a command's sequence number; its reply echoes it; 0 in events */
};

#define TVP_SYMBOL_LEN 64
#define TVP_COMM_LEN 16
#define TVP_TEXT_LEN 48
#define TVP_MAX_ARGS 6
#define TVP_MAX_PREDS 2
#define TVP_MAX_PROBES 64

/* What a probe is attached to. */
#define TVP_KIND_KPROBE 1    /* symbol+offset, entry */
#define TVP_KIND_KRETPROBE 2 /* symbol's return (offset must be 0) */
#define TVP_KIND_PANIC 3     /* panic notifier chain; symbol ignored */
#define TVP_KIND_DIE 4       /* die notifier chain (oops); symbol ignored */

/*
 * Event classes: which task the event is about (its "subject", reported in
 * pid/tid/comm and matched by the comm and pid filters) and what the class
 * fields hold.
 *   GENERIC  subject: current.
 *   SIGNAL   kprobe on send_signal_locked(sig=%di, info=%si, t=%dx, type=%cx):
 *            subject: the target t; sig; other: the sender (current).
 *   OOM      kprobe on mark_oom_victim(tsk=%di): subject: the victim;
 *            value: the victim's RSS in pages; other: the task that ran the OOM
 *            killer (current). On out_of_memory(oc=%di): subject: current.
 *   PANIC    panic notifier: subject: current; text: the panic message.
 *   OOPS     die notifier, DIE_OOPS only: every oops passes it once; the
 *            chain's other calls are user-mode traps, breakpoints, debug
 *            exceptions, and a second call for a kernel GPF or trap that
 *            then oopses. Subject: current; sig: the signal the kernel
 *            would send (SIGSEGV), value: trap number, text: the die string
 *            ("Oops", "general protection fault", "invalid opcode", ...).
 *   EXIT     kprobe on do_exit(code=%di): subject: current; value: the code.
 *   HUNG     kprobe on sched_show_task(p=%di), only when current is
 *            khungtaskd: subject: p (the hung task); text: "hung task".
 *   LOCKUP   kprobe on add_taint(flag=%di) with flag TAINT_SOFTLOCKUP (use a
 *            predicate arg0 == 14): subject: current (the task that held the
 *            CPU); text: "soft lockup".
 */
#define TVP_CLASS_GENERIC 0
#define TVP_CLASS_SIGNAL 1
#define TVP_CLASS_OOM 2
#define TVP_CLASS_PANIC 3
#define TVP_CLASS_OOPS 4
#define TVP_CLASS_EXIT 5
#define TVP_CLASS_HUNG 6
#define TVP_CLASS_LOCKUP 7

/* Registers a probe captures (x86-64 pt_regs). AX on a kretprobe is the return value. */
#define TVP_REG_DI 0
#define TVP_REG_SI 1
#define TVP_REG_DX 2
#define TVP_REG_CX 3
#define TVP_REG_R8 4
#define TVP_REG_R9 5
#define TVP_REG_AX 6
#define TVP_REG_SP 7
#define TVP_REG_IP 8

/* Predicate operators: captured arg <op> value. */
#define TVP_OP_EQ 1
#define TVP_OP_NE 2
#define TVP_OP_LT 3 /* unsigned comparisons */
#define TVP_OP_GT 4
#define TVP_OP_LE 5
#define TVP_OP_GE 6
#define TVP_OP_AND 7 /* (arg & value) != 0 */

struct tvp_pred {
	__u8 arg; /* index into the probe's captured args */
	__u8 op;  /* TVP_OP_* */
	__u8 pad[6];
	__le64 value;
};

/*
 * TVP_CMD_ATTACH: arm probe `id` (chosen by the host, nonzero, unique among
 * armed probes). Replied to with TVP_MSG_REPLY.
 * Filters, all of which must pass: comm (subject's comm, "" = any), pid
 * (subject's tgid, 0 = any), sig_mask (bit N: signal N passes; 0 = all; only
 * for classes with a signal), preds (on captured args).
 * rate: at most that many events per second are delivered (0 = no limit);
 * the rest count as "limited".
 */
struct tvp_attach {
	struct tvp_hdr hdr;
	__le32 id;
	__le16 kind;  /* TVP_KIND_* */
	__le16 class; /* TVP_CLASS_* */
	__le32 offset;
	__le32 rate;
	__le32 pid;
	__u8 nargs;  /* <= TVP_MAX_ARGS */
	__u8 npreds; /* <= TVP_MAX_PREDS */
	__u8 regs[TVP_MAX_ARGS]; /* TVP_REG_* for each captured arg */
	__u8 pad[4];
	__le64 sig_mask;
	char symbol[TVP_SYMBOL_LEN]; /* NUL-terminated */
	char comm[TVP_COMM_LEN];     /* NUL-terminated unless 16 bytes long */
	struct tvp_pred preds[TVP_MAX_PREDS];
};

/* TVP_CMD_DETACH: disarm probe `id`. Replied to with TVP_MSG_REPLY. */
struct tvp_detach {
	struct tvp_hdr hdr;
	__le32 id;
	__le32 pad;
};

/* TVP_CMD_STATS is a bare struct tvp_hdr; answered by TVP_MSG_STATS messages. */

/* Fault injection, done by the driver in kernel space. */
#define TVP_INJECT_SIGNAL 1 /* send signal `arg` to every process whose comm is `comm` */
#define TVP_INJECT_OOM 2    /* run the OOM killer (as sysrq-f does) */
#define TVP_INJECT_PANIC 3  /* panic("tracevisor: injected panic") */
#define TVP_INJECT_HANG 4   /* spin CPU `arg` with preemption off for `arg2` seconds */
#define TVP_INJECT_STALL 5  /* a kernel thread "tvp-stall" sleeps uninterruptibly for `arg2` seconds */
/* Longest hang or stall: far beyond the soft-lockup (20 s) and hung-task (120 s) defaults. */
#define TVP_INJECT_MAX_S 3600

/* TVP_CMD_INJECT. Replied to with TVP_MSG_REPLY (id 0) before a panic or hang starts. */
struct tvp_inject {
	struct tvp_hdr hdr;
	__le16 kind; /* TVP_INJECT_* */
	__le16 pad;
	__le32 arg;
	__le32 arg2;
	__le32 pad2;
	char comm[TVP_COMM_LEN];
};

/* TVP_MSG_HELLO: sent once when the driver is ready, before boot commands. */
#define TVP_CLOCK_KVM 1  /* guest_ns values are kvmclock nanoseconds */
#define TVP_CLOCK_MONO 2 /* guest_ns values are the guest's CLOCK_MONOTONIC */
struct tvp_hello {
	struct tvp_hdr hdr;
	__le32 version; /* TVP_VERSION */
	__le16 clock;   /* TVP_CLOCK_* */
	__le16 ncpus;
	__le64 guest_ns; /* the clock when sent */
};

/* TVP_MSG_REPLY: status is 0 or a negative Linux errno. */
struct tvp_reply {
	struct tvp_hdr hdr;
	__le32 status;
	__le32 id;
};

/* TVP_MSG_STATS: a command's answer, in as many messages as it takes; the last has last=1. */
struct tvp_stat {
	__le32 id;
	__le16 kind;
	__le16 class;
	__le64 hits;      /* handler ran */
	__le64 delivered; /* events handed to the listener queue */
	__le64 filtered;  /* rejected by a filter */
	__le64 limited;   /* over the rate limit */
	__le64 dropped;   /* no buffer or queue space: lost */
	__le64 missed;    /* kprobe nmissed: not run because a probe handler was already running */
};
#define TVP_STATS_PER_MSG 4
struct tvp_stats {
	struct tvp_hdr hdr;
	__le16 count; /* entries used, <= TVP_STATS_PER_MSG */
	__le16 last;
	__le32 pad;
	struct tvp_stat stats[TVP_STATS_PER_MSG];
};

/* TVP_MSG_EVENT: one probe hit. */
#define TVP_EV_RETURN 0x1  /* from a kretprobe */
#define TVP_EV_CLOCK_MONO 0x2 /* guest_ns is CLOCK_MONOTONIC, not kvmclock */
struct tvp_event {
	struct tvp_hdr hdr;
	__le32 probe; /* probe id */
	__le16 class; /* TVP_CLASS_* */
	__le16 cpu;
	__le64 guest_ns; /* when the handler ran (see TVP_MSG_HELLO's clock) */
	__le32 pid;      /* subject tgid */
	__le32 tid;      /* subject pid (thread) */
	char comm[TVP_COMM_LEN];
	__le32 dropped; /* events of this probe lost since the previous one delivered */
	__le32 flags;   /* TVP_EV_* */
	__le64 args[TVP_MAX_ARGS];
	/* Class fields (see TVP_CLASS_*); zero where a class does not use them. */
	__le32 sig;
	__le32 other_pid;
	char other_comm[TVP_COMM_LEN];
	__le64 value;
	char text[TVP_TEXT_LEN];
};

#endif
