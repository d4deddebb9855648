// SPDX-License-Identifier: GPL-2.0
/*
 * tracevisor probe driver: arming and disarming probes, their counters, and
 * the path every hit takes - filters, rate limit, event - in whatever
 * context the hit happened (process, interrupt, NMI, panic).
 */
#include <linux/kdebug.h>
#include <linux/math64.h>
#include <linux/panic_notifier.h>
#include <linux/ptrace.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>

#include "tvp.h"

/* Where each TVP_REG_* lives in struct pt_regs. */
static const unsigned int tvp_reg_offset[] = {
	[TVP_REG_DI] = offsetof(struct pt_regs, di),
	[TVP_REG_SI] = offsetof(struct pt_regs, si),
	[TVP_REG_DX] = offsetof(struct pt_regs, dx),
	[TVP_REG_CX] = offsetof(struct pt_regs, cx),
	[TVP_REG_R8] = offsetof(struct pt_regs, r8),
	[TVP_REG_R9] = offsetof(struct pt_regs, r9),
	[TVP_REG_AX] = offsetof(struct pt_regs, ax),
	[TVP_REG_SP] = offsetof(struct pt_regs, sp),
	[TVP_REG_IP] = offsetof(struct pt_regs, ip),
};

/*
 * A task's comm without task_lock (which a handler cannot take): a racy
 * copy at worst mixes an old and a new name; the last byte is always NUL.
 */
static void tvp_comm(char *dst, const struct task_struct *t)
{
	BUILD_BUG_ON(TVP_COMM_LEN != TASK_COMM_LEN);
	memcpy(dst, t->comm, TVP_COMM_LEN);
	dst[TVP_COMM_LEN - 1] = '\0';
}

static bool tvp_pred(u64 arg, u8 op, u64 value)
{
	switch (op) {
	case TVP_OP_EQ:
		return arg == value;
	case TVP_OP_NE:
		return arg != value;
	case TVP_OP_LT:
		return arg < value;
	case TVP_OP_GT:
		return arg > value;
	case TVP_OP_LE:
		return arg <= value;
	case TVP_OP_GE:
		return arg >= value;
	case TVP_OP_AND:
		return arg & value;
	}
	return false;
}

static bool tvp_pass(const struct tvp_probe *p, const struct tvp_hit *h,
		     const char *comm, const u64 *args)
{
	unsigned int i;

	if (p->comm[0] && strncmp(comm, p->comm, TVP_COMM_LEN))
		return false;
	if (p->pid && task_tgid_nr(h->subject) != p->pid)
		return false;
	if (p->sig_mask && (h->sig >= 64 || !(p->sig_mask & BIT_ULL(h->sig))))
		return false;
	for (i = 0; i < p->npreds; i++)
		if (!tvp_pred(args[p->preds[i].arg], p->preds[i].op,
			      p->preds[i].value))
			return false;
	return true;
}

/*
 * At most p->rate events per second of the event clock. The second and the
 * count in it share one 64-bit word, updated by cmpxchg: no lock, so it is
 * safe from NMI and from a CPU that interrupted another one mid-update.
 */
static bool tvp_rate_ok(struct tvp_probe *p, u64 now)
{
	u32 sec = div_u64(now, NSEC_PER_SEC);
	s64 old = atomic64_read(&p->window);
	s64 new;

	do {
		if ((u32)((u64)old >> 32) == sec) {
			if ((u32)old >= p->rate)
				return false;
			new = old + 1;
		} else {
			new = (s64)((u64)sec << 32 | 1);
		}
	} while (!atomic64_try_cmpxchg(&p->window, &old, new));
	return true;
}

/*
 * tvp_fire - one hit of probe @p, as its class handler described it in @h
 *
 * Counts it, filters it, rate-limits it and sends the event. Never sleeps
 * and takes no lock but the listener's (see tvp_send).
 */
void tvp_fire(struct tvp_probe *p, struct tvp_hit *h)
{
	struct tvp_dev *tv = p->tv;
	u64 args[TVP_MAX_ARGS] = {};
	u64 now = tvp_now(tv);
	struct tvp_event ev;
	unsigned int i;

	atomic64_inc(&p->hits);
	if (h->skip || !h->subject)
		goto filtered;
	if (h->regs)
		for (i = 0; i < p->nargs; i++)
			args[i] = regs_get_register(h->regs,
						    tvp_reg_offset[p->regs[i]]);
	memset(&ev, 0, sizeof(ev));
	tvp_comm(ev.comm, h->subject);
	if (!tvp_pass(p, h, ev.comm, args))
		goto filtered;
	if (p->rate && !tvp_rate_ok(p, now)) {
		atomic64_inc(&p->limited);
		return;
	}

	ev.hdr.type = cpu_to_le16(TVP_MSG_EVENT);
	ev.hdr.len = cpu_to_le16(sizeof(ev));
	ev.probe = cpu_to_le32(p->id);
	ev.class = cpu_to_le16(p->class);
	ev.cpu = cpu_to_le16(raw_smp_processor_id());
	ev.guest_ns = cpu_to_le64(now);
	ev.pid = cpu_to_le32(task_tgid_nr(h->subject));
	ev.tid = cpu_to_le32(task_pid_nr(h->subject));
	ev.flags = cpu_to_le32(h->flags | (tv->mono ? TVP_EV_CLOCK_MONO : 0));
	for (i = 0; i < p->nargs; i++)
		ev.args[i] = cpu_to_le64(args[i]);
	ev.sig = cpu_to_le32(h->sig);
	if (h->other) {
		ev.other_pid = cpu_to_le32(task_tgid_nr(h->other));
		tvp_comm(ev.other_comm, h->other);
	}
	ev.value = cpu_to_le64(h->value);
	if (h->text)
		strscpy(ev.text, h->text, sizeof(ev.text));

	if (tvp_send(tv, &ev, sizeof(ev), h->crash, &p->undelivered)) {
		atomic64_inc(&p->dropped);
		atomic_inc(&p->undelivered);
		return;
	}
	atomic64_inc(&p->delivered);
	return;

filtered:
	atomic64_inc(&p->filtered);
}

static int tvp_register(struct tvp_probe *p, u32 offset)
{
	switch (p->kind) {
	case TVP_KIND_KPROBE:
		p->kp.symbol_name = p->symbol;
		p->kp.offset = offset;
		p->kp.pre_handler = tvp_kprobe_pre;
		return register_kprobe(&p->kp);
	case TVP_KIND_KRETPROBE:
		p->rp.kp.symbol_name = p->symbol;
		p->rp.handler = tvp_kretprobe_ret;
		return register_kretprobe(&p->rp);
	case TVP_KIND_PANIC:
		/* First in the chain: later notifiers may never return. */
		p->nb.notifier_call = tvp_panic_notify;
		p->nb.priority = INT_MAX;
		return atomic_notifier_chain_register(&panic_notifier_list,
						      &p->nb);
	case TVP_KIND_DIE:
		p->nb.notifier_call = tvp_die_notify;
		p->nb.priority = INT_MAX;
		return register_die_notifier(&p->nb);
	}
	return -EOPNOTSUPP;
}

/* Each of these waits until no handler of the probe still runs. */
static void tvp_unregister(struct tvp_probe *p)
{
	switch (p->kind) {
	case TVP_KIND_KPROBE:
		unregister_kprobe(&p->kp);
		break;
	case TVP_KIND_KRETPROBE:
		unregister_kretprobe(&p->rp);
		break;
	case TVP_KIND_PANIC:
		atomic_notifier_chain_unregister(&panic_notifier_list, &p->nb);
		break;
	case TVP_KIND_DIE:
		unregister_die_notifier(&p->nb);
		break;
	}
}

/* Checks what does not depend on the class; fills @p from @a. */
static int tvp_parse(struct tvp_probe *p, const struct tvp_attach *a)
{
	unsigned int i;

	p->id = le32_to_cpu(a->id);
	p->kind = le16_to_cpu(a->kind);
	p->class = le16_to_cpu(a->class);
	p->rate = le32_to_cpu(a->rate);
	p->pid = le32_to_cpu(a->pid);
	p->sig_mask = le64_to_cpu(a->sig_mask);
	p->nargs = a->nargs;
	p->npreds = a->npreds;
	memcpy(p->comm, a->comm, TVP_COMM_LEN);
	memcpy(p->symbol, a->symbol, TVP_SYMBOL_LEN);

	if (p->kind < TVP_KIND_KPROBE || p->kind > TVP_KIND_DIE)
		return -EOPNOTSUPP;
	if (memchr_inv(a->pad, 0, sizeof(a->pad)))
		return -EINVAL;
	if (p->kind == TVP_KIND_KPROBE || p->kind == TVP_KIND_KRETPROBE) {
		if (!p->symbol[0] || !memchr(p->symbol, 0, TVP_SYMBOL_LEN))
			return -EINVAL;
		if (p->kind == TVP_KIND_KRETPROBE && a->offset)
			return -EINVAL;
	}
	if (p->nargs > TVP_MAX_ARGS || p->npreds > TVP_MAX_PREDS)
		return -EINVAL;
	for (i = 0; i < p->nargs; i++) {
		if (a->regs[i] >= ARRAY_SIZE(tvp_reg_offset))
			return -EINVAL;
		p->regs[i] = a->regs[i];
	}
	for (i = 0; i < p->npreds; i++) {
		const struct tvp_pred *pr = &a->preds[i];

		if (pr->arg >= p->nargs || pr->op < TVP_OP_EQ ||
		    pr->op > TVP_OP_AND || memchr_inv(pr->pad, 0, sizeof(pr->pad)))
			return -EINVAL;
		p->preds[i].arg = pr->arg;
		p->preds[i].op = pr->op;
		p->preds[i].value = le64_to_cpu(pr->value);
	}
	return tvp_class_check(p, le32_to_cpu(a->offset));
}

/* TVP_CMD_ATTACH: 0 or -errno for the reply. */
int tvp_attach(struct tvp_dev *tv, const struct tvp_attach *a)
{
	u32 id = le32_to_cpu(a->id);
	struct tvp_probe *p;
	int slot = -1;
	unsigned int i;
	int err;

	if (!id)
		return -EINVAL;
	for (i = 0; i < TVP_MAX_PROBES; i++) {
		if (!tv->probes[i]) {
			if (slot < 0)
				slot = i;
		} else if (tv->probes[i]->id == id) {
			return -EEXIST;
		}
	}
	if (slot < 0)
		return -ENOSPC;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->tv = tv;
	/* Handlers may run as soon as it is registered: fill it in first. */
	err = tvp_parse(p, a);
	if (!err)
		err = tvp_register(p, le32_to_cpu(a->offset));
	if (err) {
		kfree(p);
		return err;
	}
	tv->probes[slot] = p;
	return 0;
}

/* TVP_CMD_DETACH: 0 or -errno for the reply. */
int tvp_detach(struct tvp_dev *tv, u32 id)
{
	unsigned int i;

	for (i = 0; i < TVP_MAX_PROBES; i++) {
		struct tvp_probe *p = tv->probes[i];

		if (p && p->id == id) {
			tvp_unregister(p);
			tv->probes[i] = NULL;
			kfree(p);
			return 0;
		}
	}
	return -ENOENT;
}

void tvp_detach_all(struct tvp_dev *tv)
{
	unsigned int i;

	for (i = 0; i < TVP_MAX_PROBES; i++) {
		if (tv->probes[i]) {
			tvp_unregister(tv->probes[i]);
			kfree(tv->probes[i]);
			tv->probes[i] = NULL;
		}
	}
}

static u64 tvp_missed(const struct tvp_probe *p)
{
	switch (p->kind) {
	case TVP_KIND_KPROBE:
		return p->kp.nmissed;
	case TVP_KIND_KRETPROBE:
		/* Entry hits missed, and returns missed for want of an instance. */
		return p->rp.kp.nmissed + p->rp.nmissed;
	}
	return 0;
}

static void tvp_stat(struct tvp_stat *s, const struct tvp_probe *p)
{
	s->id = cpu_to_le32(p->id);
	s->kind = cpu_to_le16(p->kind);
	s->class = cpu_to_le16(p->class);
	s->hits = cpu_to_le64(atomic64_read(&p->hits));
	s->delivered = cpu_to_le64(atomic64_read(&p->delivered));
	s->filtered = cpu_to_le64(atomic64_read(&p->filtered));
	s->limited = cpu_to_le64(atomic64_read(&p->limited));
	s->dropped = cpu_to_le64(atomic64_read(&p->dropped));
	s->missed = cpu_to_le64(tvp_missed(p));
}

/*
 * TVP_CMD_STATS: every armed probe's counters, TVP_STATS_PER_MSG a message,
 * the last one marked; no probes is one empty message.
 */
void tvp_stats(struct tvp_dev *tv, u32 seq)
{
	struct tvp_probe *armed[TVP_MAX_PROBES];
	unsigned int n = 0, i, k;
	struct tvp_stats m;

	for (i = 0; i < TVP_MAX_PROBES; i++)
		if (tv->probes[i])
			armed[n++] = tv->probes[i];

	i = 0;
	do {
		memset(&m, 0, sizeof(m));
		m.hdr.type = cpu_to_le16(TVP_MSG_STATS);
		m.hdr.len = cpu_to_le16(sizeof(m));
		m.hdr.seq = cpu_to_le32(seq);
		for (k = 0; k < TVP_STATS_PER_MSG && i < n; k++, i++)
			tvp_stat(&m.stats[k], armed[i]);
		m.count = cpu_to_le16(k);
		m.last = cpu_to_le16(i == n);
		if (tvp_send_wait(tv, &m, sizeof(m)))
			return;
	} while (i < n);
}
