// SPDX-License-Identifier: GPL-2.0
/*
 * tracevisor probe driver: fault injection, all in kernel space so that it
 * works whatever state the guest's user space is in.
 */
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/signal.h>
#include <linux/string.h>
#include <linux/sysrq.h>
#include <linux/timekeeping.h>

#include "tvp.h"

/*
 * A process on its way out: killed, or its last thread in do_exit. It stays
 * in the task list until reaped, and signalling it "succeeds" for nothing.
 */
static bool tvp_exiting(struct task_struct *p)
{
	return (READ_ONCE(p->signal->flags) & SIGNAL_GROUP_EXIT) ||
	       ((READ_ONCE(p->flags) & PF_EXITING) && thread_group_empty(p));
}

/* Signals every live user process named @comm; -ESRCH when there is none. */
static int tvp_inject_signal(const char *comm, u32 sig)
{
	struct task_struct *p;
	int err = -ESRCH;
	int ret;

	if (!sig || !valid_signal(sig) || !comm[0])
		return -EINVAL;
	rcu_read_lock();
	for_each_process(p) {
		if ((p->flags & PF_KTHREAD) || tvp_exiting(p) ||
		    strncmp(p->comm, comm, TVP_COMM_LEN))
			continue;
		/* As the kernel's own: even init cannot ignore it. */
		ret = send_sig_info(sig, SEND_SIG_PRIV, p);
		if (!ret || err)
			err = ret;
	}
	rcu_read_unlock();
	return err;
}

/*
 * What sysrq-f does: the OOM killer picks and kills a victim from a
 * workqueue, with no user space involved, and does not panic when no task
 * is eligible.
 */
static int tvp_inject_oom(void)
{
	if (!IS_ENABLED(CONFIG_MAGIC_SYSRQ))
		return -EOPNOTSUPP;
	handle_sysrq('f');
	return 0;
}

/*
 * Holds its CPU with preemption off and interrupts on: the watchdog's timer
 * still fires there but its per-CPU stopper thread never runs, which is
 * what the soft-lockup detector reports.
 */
static int tvp_hang(void *data)
{
	u64 end = ktime_get_ns() + (unsigned long)data * NSEC_PER_SEC;

	preempt_disable();
	while (ktime_get_ns() < end)
		cpu_relax();
	preempt_enable();
	module_put_and_kthread_exit(0);
}

static int tvp_inject_hang(struct tvp_dev *tv, u32 seq, u32 cpu, u32 secs)
{
	struct task_struct *t;

	if (cpu >= nr_cpu_ids || !cpu_online(cpu) || !secs ||
	    secs > TVP_INJECT_MAX_S)
		return -EINVAL;
	t = kthread_create(tvp_hang, (void *)(unsigned long)secs,
			   "tvp-hang/%u", cpu);
	if (IS_ERR(t))
		return PTR_ERR(t);
	kthread_bind(t, cpu);
	/* The thread outlives the command: keep a module's text around. */
	__module_get(THIS_MODULE);
	tvp_reply(tv, seq, 0, 0);
	wake_up_process(t);
	return 0;
}

/*
 * Sleeps uninterruptibly (D state) for its seconds without holding
 * anything: a hung task for khungtaskd to report once
 * kernel.hung_task_timeout_secs pass, with nothing else harmed.
 */
static int tvp_stall(void *data)
{
	schedule_timeout_uninterruptible((unsigned long)data * HZ);
	module_put_and_kthread_exit(0);
}

static int tvp_inject_stall(u32 secs)
{
	struct task_struct *t;

	if (!secs || secs > TVP_INJECT_MAX_S)
		return -EINVAL;
	/* The thread outlives the command: keep a module's text around. */
	__module_get(THIS_MODULE);
	t = kthread_run(tvp_stall, (void *)(unsigned long)secs, "tvp-stall");
	if (IS_ERR(t)) {
		module_put(THIS_MODULE);
		return PTR_ERR(t);
	}
	return 0;
}

/*
 * TVP_CMD_INJECT. Replies itself: before a panic or a hang starts, after a
 * signal or OOM request is made.
 */
void tvp_inject(struct tvp_dev *tv, const struct tvp_inject *in, u32 seq)
{
	u32 arg = le32_to_cpu(in->arg);
	int err;

	if (in->pad || in->pad2) {
		err = -EINVAL;
	} else {
		switch (le16_to_cpu(in->kind)) {
		case TVP_INJECT_SIGNAL:
			err = tvp_inject_signal(in->comm, arg);
			break;
		case TVP_INJECT_OOM:
			err = tvp_inject_oom();
			break;
		case TVP_INJECT_PANIC:
			tvp_reply(tv, seq, 0, 0);
			panic("tracevisor: injected panic");
		case TVP_INJECT_HANG:
			err = tvp_inject_hang(tv, seq, arg,
					      le32_to_cpu(in->arg2));
			if (!err)
				return;
			break;
		case TVP_INJECT_STALL:
			err = tvp_inject_stall(le32_to_cpu(in->arg2));
			break;
		default:
			err = -EOPNOTSUPP;
		}
	}
	tvp_reply(tv, seq, 0, err);
}
