// SPDX-License-Identifier: GPL-2.0
/*
 * tracevisor probe driver: event classes. Each class knows which task a hit
 * is about and what else to report; the handlers below are the entry
 * points the kprobe core and the notifier chains call.
 */
#include <linux/kdebug.h>
#include <linux/mm.h>
#include <linux/printk.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/string.h>

#include "tvp.h"

/*
 * Whether class and kind fit together. Classes that read a register as a
 * task pointer are tied to the one function whose argument it is, at its
 * entry: anywhere else the register could hold anything.
 */
int tvp_class_check(struct tvp_probe *p, u32 offset)
{
	bool entry = p->kind == TVP_KIND_KPROBE && offset == 0;
	bool notifier = p->kind == TVP_KIND_PANIC || p->kind == TVP_KIND_DIE;

	if (p->sig_mask && p->class != TVP_CLASS_SIGNAL &&
	    p->class != TVP_CLASS_OOPS)
		return -EINVAL;

	switch (p->class) {
	case TVP_CLASS_GENERIC:
	case TVP_CLASS_LOCKUP:
		return notifier ? -EINVAL : 0;
	case TVP_CLASS_OOM:
		if (notifier)
			return -EINVAL;
		p->oom_victim = entry && !strcmp(p->symbol, "mark_oom_victim");
		return 0;
	case TVP_CLASS_SIGNAL:
		return entry && !strcmp(p->symbol, "send_signal_locked") ?
			0 : -EINVAL;
	case TVP_CLASS_HUNG:
		return entry && !strcmp(p->symbol, "sched_show_task") ?
			0 : -EINVAL;
	case TVP_CLASS_EXIT:
		return entry ? 0 : -EINVAL;
	case TVP_CLASS_PANIC:
		/* The panic chain passes no registers to capture. */
		return p->kind == TVP_KIND_PANIC && !p->nargs ? 0 : -EINVAL;
	case TVP_CLASS_OOPS:
		return p->kind == TVP_KIND_DIE ? 0 : -EINVAL;
	}
	return -EOPNOTSUPP;
}

/* Subject and class fields of a kprobe or kretprobe hit. */
static void tvp_class_regs(const struct tvp_probe *p, struct pt_regs *regs,
			   struct tvp_hit *h)
{
	struct task_struct *victim;
	struct mm_struct *mm;

	h->subject = current;
	h->regs = regs;
	/* A probe hit while an oops or panic is under way: see tvp_lock. */
	h->crash = oops_in_progress;

	switch (p->class) {
	case TVP_CLASS_SIGNAL:
		/* send_signal_locked(sig, info, t, type) */
		h->subject = (struct task_struct *)regs->dx;
		h->sig = regs->di;
		h->other = current;
		break;
	case TVP_CLASS_OOM:
		if (!p->oom_victim)
			break;
		/* mark_oom_victim(tsk): its callers hold task_lock(tsk). */
		victim = (struct task_struct *)regs->di;
		mm = READ_ONCE(victim->mm);
		h->subject = victim;
		h->value = mm ? get_mm_rss(mm) : 0;
		h->other = current;
		break;
	case TVP_CLASS_EXIT:
		/* do_exit(code) */
		h->value = regs->di;
		break;
	case TVP_CLASS_HUNG:
		/*
		 * sched_show_task(p) also serves sysrq-t and others; only
		 * khungtaskd calls it for a hung task.
		 */
		h->skip = !(current->flags & PF_KTHREAD) ||
			  strncmp(current->comm, "khungtaskd", TASK_COMM_LEN);
		h->subject = (struct task_struct *)regs->di;
		h->text = "hung task";
		break;
	case TVP_CLASS_LOCKUP:
		/*
		 * add_taint(TAINT_SOFTLOCKUP) runs in the watchdog's timer
		 * interrupt on the locked-up CPU: current held that CPU.
		 */
		h->text = "soft lockup";
		break;
	}
}

int tvp_kprobe_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct tvp_probe *p = container_of(kp, struct tvp_probe, kp);
	struct tvp_hit h = {};

	tvp_class_regs(p, regs, &h);
	tvp_fire(p, &h);
	return 0;
}

int tvp_kretprobe_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct kretprobe *rp = get_kretprobe(ri);
	struct tvp_hit h = { .flags = TVP_EV_RETURN };
	struct tvp_probe *p;

	/* NULL while the kretprobe is being unregistered. */
	if (!rp)
		return 0;
	p = container_of(rp, struct tvp_probe, rp);
	tvp_class_regs(p, regs, &h);
	tvp_fire(p, &h);
	return 0;
}

/* Panic chain: other CPUs are stopped by now, interrupts are off. */
int tvp_panic_notify(struct notifier_block *nb, unsigned long action,
		     void *data)
{
	struct tvp_probe *p = container_of(nb, struct tvp_probe, nb);
	struct tvp_hit h = {
		.subject = current,
		.text = data,
		.crash = true,
	};

	tvp_fire(p, &h);
	return NOTIFY_DONE;
}

/*
 * Die chain. It also sees every user-mode trap, int3, debug exception and
 * NMI the kernel handles; only DIE_OOPS, which every oops passes through
 * once, is a kernel death.
 */
int tvp_die_notify(struct notifier_block *nb, unsigned long val, void *data)
{
	struct tvp_probe *p = container_of(nb, struct tvp_probe, nb);
	struct die_args *args = data;
	struct tvp_hit h = {
		.subject = current,
		.regs = args->regs,
		.text = args->str,
		.value = args->trapnr,
		.sig = args->signr,
		.crash = true,
	};

	if (val != DIE_OOPS)
		return NOTIFY_DONE;
	tvp_fire(p, &h);
	return NOTIFY_DONE;
}
