/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tracevisor probe driver: what its parts share. The wire format is in
 * tracevisor_probe.h; this header is the driver's own state.
 */
#ifndef TVP_H
#define TVP_H

#include <linux/atomic.h>
#include <linux/kprobes.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "tracevisor_probe.h"

/* Loader buffers kept posted: commands the device can hand over at once. */
#define TVP_LOADER_BUFS 16
/* Listener buffers: the most messages in flight to the host at once. */
#define TVP_POOL_MAX 256

struct tvp_dev;

/*
 * One armed probe. The filter and class settings are written before the
 * probe is registered and never change after, so handlers read them
 * without locking; the counters are atomics bumped from any context.
 */
struct tvp_probe {
	struct tvp_dev *tv;
	u32 id;
	u16 kind;
	u16 class;
	/* OOM class on mark_oom_victim's entry: the subject is %di. */
	bool oom_victim;

	/* Filters and captures, host byte order. */
	u32 pid;
	u32 rate;
	u64 sig_mask;
	char comm[TVP_COMM_LEN];
	u8 nargs;
	u8 npreds;
	u8 regs[TVP_MAX_ARGS];
	struct {
		u8 arg;
		u8 op;
		u64 value;
	} preds[TVP_MAX_PREDS];

	/* kprobe.symbol_name points here for as long as the probe is armed. */
	char symbol[TVP_SYMBOL_LEN];
	union {
		struct kprobe kp;
		struct kretprobe rp;
		struct notifier_block nb;
	};

	atomic64_t hits;
	atomic64_t delivered;
	atomic64_t filtered;
	atomic64_t limited;
	atomic64_t dropped;
	/* Drops since the last delivered event: reported in that event. */
	atomic_t undelivered;
	/* Rate window: second (upper 32 bits) and events delivered in it. */
	atomic64_t window;
};

/* What a hit is about, as the class handlers work it out. */
struct tvp_hit {
	struct task_struct *subject;
	struct task_struct *other; /* NULL: no other task */
	struct pt_regs *regs;      /* NULL: no registers to capture */
	const char *text;
	u64 value;
	u32 sig;
	u32 flags;   /* TVP_EV_* */
	bool skip;   /* the class itself rejects this hit */
	bool crash;  /* panic or oops context: do not wait for locks */
};

struct tvp_dev {
	struct virtio_device *vdev;
	struct virtqueue *loader;
	struct virtqueue *listener;
	/* guest_ns is CLOCK_MONOTONIC: kvmclock is not set up. */
	bool mono;

	/*
	 * Listener side, all under lock: the queue itself and the pool of
	 * message buffers. Taken from any context with interrupts off.
	 */
	raw_spinlock_t lock;
	void *pool;
	unsigned int npool;
	unsigned int nfree;
	u16 free[TVP_POOL_MAX];

	/* Loader side: commands run one at a time under cmd_lock. */
	struct mutex cmd_lock;
	void *loader_bufs;
	struct work_struct work;
	wait_queue_head_t loader_wq;
	atomic_t loader_irqs;
	unsigned int ncmds; /* commands handled so far */
	bool dead;          /* being removed: no more commands */
	struct tvp_probe *probes[TVP_MAX_PROBES];
};

/* device.c */
u64 tvp_now(const struct tvp_dev *tv);
int tvp_send(struct tvp_dev *tv, const void *msg, size_t len, bool crash,
	     atomic_t *undelivered);
void tvp_reply(struct tvp_dev *tv, u32 seq, u32 id, int status);
int tvp_send_wait(struct tvp_dev *tv, const void *msg, size_t len);

/* probes.c: called with cmd_lock held. */
int tvp_attach(struct tvp_dev *tv, const struct tvp_attach *a);
int tvp_detach(struct tvp_dev *tv, u32 id);
void tvp_detach_all(struct tvp_dev *tv);
void tvp_stats(struct tvp_dev *tv, u32 seq);
void tvp_fire(struct tvp_probe *p, struct tvp_hit *h);

/* classes.c: class checks, and the handlers probes.c registers. */
int tvp_class_check(struct tvp_probe *p, u32 offset);
int tvp_kprobe_pre(struct kprobe *kp, struct pt_regs *regs);
int tvp_kretprobe_ret(struct kretprobe_instance *ri, struct pt_regs *regs);
int tvp_panic_notify(struct notifier_block *nb, unsigned long action,
		     void *data);
int tvp_die_notify(struct notifier_block *nb, unsigned long val, void *data);

/* inject.c: called with cmd_lock held; sends its own reply. */
void tvp_inject(struct tvp_dev *tv, const struct tvp_inject *in, u32 seq);

#endif
