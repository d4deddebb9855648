// SPDX-License-Identifier: GPL-2.0
/*
 * tracevisor probe driver: the virtio device. Commands from the host arrive
 * on the loader queue and run one at a time in process context (arming a
 * kprobe can sleep); every message to the host - probe hits above all - is
 * one buffer added to the listener queue and notified at once, because that
 * notification is how a hit reaches the VMM.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/kvm_para.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#if IS_ENABLED(CONFIG_KVM_GUEST)
#include <linux/clocksource.h>
#include <asm/pvclock.h>
#include <asm/kvmclock.h>
#endif

#include "tvp.h"

/* The device queues boot commands before DRIVER_OK; this bounds the wait. */
#define TVP_BOOT_WAIT (30 * HZ)
/* Process-context sends wait this many times 1-2 ms for a free buffer. */
#define TVP_SEND_TRIES 1000
/* In panic or oops context, how long to try for the listener lock. */
#define TVP_CRASH_WAIT_US 20000

/*
 * Set while this CPU holds (or is taking) a listener lock. A probe placed
 * on anything the send path calls - the ring code, the notify write, the
 * lock itself - fires its handler on the same CPU while the lock is held;
 * the handler sees this flag and counts a drop instead of deadlocking.
 * Interrupts are off while it is set, so only NMIs, which finish before
 * the interrupted code goes on, can interleave with it.
 */
static DEFINE_PER_CPU(bool, tvp_sending);

/*
 * kvmclock counts in the host's KVM clock, which the VMM can read too; it is
 * set up whenever the hypervisor offers it, whichever clocksource
 * timekeeping ended up choosing (the emulated profile switches to the TSC
 * late in boot). Reading it takes no lock: safe in NMI and panic context.
 */
static bool tvp_kvmclock(void)
{
#if IS_ENABLED(CONFIG_KVM_GUEST)
	return kvm_para_available() && pvclock_get_pvti_cpu0_va();
#else
	return false;
#endif
}

/* The event clock. Both sources are lock-free and NMI-safe. */
u64 tvp_now(const struct tvp_dev *tv)
{
#if IS_ENABLED(CONFIG_KVM_GUEST)
	if (!tv->mono)
		return kvm_clock.read(&kvm_clock);
#endif
	return ktime_get_mono_fast_ns();
}

/* Takes back the buffers the device has read. Listener lock held. */
static void tvp_reclaim(struct tvp_dev *tv)
{
	unsigned int len;
	void *buf;

	while ((buf = virtqueue_get_buf(tv->listener, &len)))
		tv->free[tv->nfree++] = (buf - tv->pool) / TVP_BUF_SIZE;
}

/*
 * Copies one message into a pool buffer, adds it to the listener queue and
 * notifies. Listener lock held. For an event, @undelivered is its probe's
 * count of drops since the last delivered event: read and reset here, under
 * the lock, so each drop is reported in exactly one event.
 */
static int tvp_queue(struct tvp_dev *tv, const void *msg, size_t len,
		     atomic_t *undelivered)
{
	struct scatterlist sg;
	unsigned int slot;
	int drops = 0;
	void *buf;
	int err;

	tvp_reclaim(tv);
	if (!tv->nfree)
		return -ENOSPC;
	slot = tv->free[--tv->nfree];
	buf = tv->pool + slot * TVP_BUF_SIZE;
	memcpy(buf, msg, len);
	if (undelivered) {
		drops = atomic_xchg(undelivered, 0);
		((struct tvp_event *)buf)->dropped = cpu_to_le32(drops);
	}
	sg_init_one(&sg, buf, len);
	err = virtqueue_add_outbuf(tv->listener, &sg, 1, buf, GFP_ATOMIC);
	if (err) {
		tv->free[tv->nfree++] = slot;
		if (drops)
			atomic_add(drops, undelivered);
		return err;
	}
	virtqueue_kick(tv->listener);
	return 0;
}

/*
 * Takes the listener lock. In panic and oops context other CPUs may have
 * been stopped while holding it, so give up after a while rather than spin
 * forever; the caller counts a drop.
 */
static bool tvp_lock(struct tvp_dev *tv, bool crash)
{
	unsigned int waited;

	if (!crash) {
		raw_spin_lock(&tv->lock);
		return true;
	}
	for (waited = 0; waited < TVP_CRASH_WAIT_US; waited += 10) {
		if (raw_spin_trylock(&tv->lock))
			return true;
		udelay(10);
	}
	return false;
}

/*
 * tvp_send - hand one message to the host, from any context
 * @crash: panic or oops context (see tvp_lock)
 * @undelivered: for an event, its probe's drops not yet reported
 *
 * Never sleeps. Returns 0, or -EDEADLK when this CPU is already inside the
 * send path, -EBUSY when the lock could not be had in crash context,
 * -ENOSPC when every buffer is with the host, or the ring's error.
 */
int tvp_send(struct tvp_dev *tv, const void *msg, size_t len, bool crash,
	     atomic_t *undelivered)
{
	unsigned long flags;
	int err;

	local_irq_save(flags);
	if (this_cpu_read(tvp_sending)) {
		err = -EDEADLK;
		goto out;
	}
	this_cpu_write(tvp_sending, true);
	if (tvp_lock(tv, crash)) {
		err = tvp_queue(tv, msg, len, undelivered);
		raw_spin_unlock(&tv->lock);
	} else {
		err = -EBUSY;
	}
	this_cpu_write(tvp_sending, false);
out:
	local_irq_restore(flags);
	return err;
}

/*
 * Sends a message that must not be lost (hello, replies, stats) from
 * process context: while every buffer is with the host, waits for one.
 */
int tvp_send_wait(struct tvp_dev *tv, const void *msg, size_t len)
{
	unsigned int tries;
	int err;

	for (tries = 0;; tries++) {
		err = tvp_send(tv, msg, len, false, NULL);
		if (err != -ENOSPC || tries == TVP_SEND_TRIES)
			break;
		usleep_range(1000, 2000);
	}
	if (err)
		dev_warn_ratelimited(&tv->vdev->dev,
				     "message type %#x not sent: %d\n",
				     le16_to_cpu(((const struct tvp_hdr *)msg)->type),
				     err);
	return err;
}

void tvp_reply(struct tvp_dev *tv, u32 seq, u32 id, int status)
{
	struct tvp_reply r = {
		.hdr.type = cpu_to_le16(TVP_MSG_REPLY),
		.hdr.len = cpu_to_le16(sizeof(r)),
		.hdr.seq = cpu_to_le32(seq),
		.status = cpu_to_le32(status),
		.id = cpu_to_le32(id),
	};

	tvp_send_wait(tv, &r, sizeof(r));
}

static int tvp_cmd_len(u16 type)
{
	switch (type) {
	case TVP_CMD_ATTACH:
		return sizeof(struct tvp_attach);
	case TVP_CMD_DETACH:
		return sizeof(struct tvp_detach);
	case TVP_CMD_STATS:
		return sizeof(struct tvp_hdr);
	case TVP_CMD_INJECT:
		return sizeof(struct tvp_inject);
	}
	return -EOPNOTSUPP;
}

/* Runs one command and answers it. cmd_lock held. */
static void tvp_command(struct tvp_dev *tv, const void *buf, unsigned int used)
{
	const struct tvp_hdr *hdr = buf;
	const struct tvp_detach *d = buf;
	const struct tvp_attach *a = buf;
	u32 seq;
	int want;

	if (used < sizeof(*hdr)) {
		tvp_reply(tv, 0, 0, -EBADMSG);
		return;
	}
	seq = le32_to_cpu(hdr->seq);
	want = tvp_cmd_len(le16_to_cpu(hdr->type));
	if (want < 0) {
		tvp_reply(tv, seq, 0, want);
		return;
	}
	if (le16_to_cpu(hdr->len) != want || (unsigned int)want > used) {
		tvp_reply(tv, seq, 0, -EBADMSG);
		return;
	}

	switch (le16_to_cpu(hdr->type)) {
	case TVP_CMD_ATTACH:
		tvp_reply(tv, seq, le32_to_cpu(a->id), tvp_attach(tv, a));
		break;
	case TVP_CMD_DETACH:
		tvp_reply(tv, seq, le32_to_cpu(d->id),
			  d->pad ? -EINVAL : tvp_detach(tv, le32_to_cpu(d->id)));
		break;
	case TVP_CMD_STATS:
		tvp_stats(tv, seq);
		break;
	case TVP_CMD_INJECT:
		tvp_inject(tv, buf, seq);
		break;
	}
}

static int tvp_post_loader(struct tvp_dev *tv, void *buf)
{
	struct scatterlist sg;

	sg_init_one(&sg, buf, TVP_BUF_SIZE);
	return virtqueue_add_inbuf(tv->loader, &sg, 1, buf, GFP_KERNEL);
}

/*
 * Runs every command the device has filled in, re-posting each buffer as
 * soon as its command is answered so the device can hand over the next.
 * cmd_lock held.
 */
static void tvp_run_loader(struct tvp_dev *tv)
{
	unsigned int used;
	void *buf;

	while (!tv->dead && (buf = virtqueue_get_buf(tv->loader, &used))) {
		tvp_command(tv, buf, used);
		tv->ncmds++;
		/* Its own descriptor just came back: only a broken ring fails. */
		if (tvp_post_loader(tv, buf))
			dev_err(&tv->vdev->dev, "loader buffer not re-posted\n");
		virtqueue_kick(tv->loader);
	}
}

static void tvp_work(struct work_struct *work)
{
	struct tvp_dev *tv = container_of(work, struct tvp_dev, work);

	mutex_lock(&tv->cmd_lock);
	tvp_run_loader(tv);
	mutex_unlock(&tv->cmd_lock);
}

/*
 * Loader interrupt: commands arrived. Running them may sleep: defer, to an
 * unbound worker so that a CPU held by a hang (injected or not) does not
 * hold up the commands queued behind it.
 */
static void tvp_loader_done(struct virtqueue *vq)
{
	struct tvp_dev *tv = vq->vdev->priv;

	atomic_inc(&tv->loader_irqs);
	wake_up(&tv->loader_wq);
	queue_work(system_unbound_wq, &tv->work);
}

static void tvp_hello(struct tvp_dev *tv)
{
	struct tvp_hello h = {
		.hdr.type = cpu_to_le16(TVP_MSG_HELLO),
		.hdr.len = cpu_to_le16(sizeof(h)),
		.version = cpu_to_le32(TVP_VERSION),
		.clock = cpu_to_le16(tv->mono ? TVP_CLOCK_MONO : TVP_CLOCK_KVM),
		.ncpus = cpu_to_le16(num_online_cpus()),
		.guest_ns = cpu_to_le64(tvp_now(tv)),
	};

	tvp_send_wait(tv, &h, sizeof(h));
}

/*
 * Runs the commands the device queued before DRIVER_OK, so that probes
 * given on the VMM's command line are armed before user space starts. They
 * are delivered as soon as the loader buffers are posted; the interrupt
 * wakes us (and the work item, which may run some of them: ncmds counts
 * both), and a short timeout polls in case an interrupt is lost.
 */
static void tvp_boot_cmds(struct tvp_dev *tv, u32 boot_cmds)
{
	unsigned long deadline = jiffies + TVP_BOOT_WAIT;
	unsigned int done;
	int seen;

	for (;;) {
		seen = atomic_read(&tv->loader_irqs);
		mutex_lock(&tv->cmd_lock);
		tvp_run_loader(tv);
		done = tv->ncmds;
		mutex_unlock(&tv->cmd_lock);
		if (done >= boot_cmds)
			return;
		if (time_after(jiffies, deadline))
			break;
		wait_event_timeout(tv->loader_wq,
				   atomic_read(&tv->loader_irqs) != seen, HZ / 10);
	}
	dev_warn(&tv->vdev->dev, "%u of %u boot commands arrived in %u s\n",
		 done, boot_cmds, TVP_BOOT_WAIT / HZ);
}

static int tvp_probe(struct virtio_device *vdev)
{
	vq_callback_t *callbacks[] = {
		[TVP_QUEUE_LOADER] = tvp_loader_done,
		/* No listener interrupts: used buffers are reclaimed on send. */
		[TVP_QUEUE_LISTENER] = NULL,
	};
	static const char * const names[] = {
		[TVP_QUEUE_LOADER] = "loader",
		[TVP_QUEUE_LISTENER] = "listener",
	};
	struct virtqueue *vqs[2];
	unsigned int i, nloader;
	struct tvp_dev *tv;
	u32 version, boot_cmds;
	int err;

	BUILD_BUG_ON(sizeof(struct tvp_event) > TVP_BUF_SIZE);
	BUILD_BUG_ON(sizeof(struct tvp_stats) > TVP_BUF_SIZE);
	BUILD_BUG_ON(sizeof(struct tvp_attach) > TVP_BUF_SIZE);

	virtio_cread_le(vdev, struct tvp_config, version, &version);
	if (version != TVP_VERSION) {
		dev_err(&vdev->dev, "device version %u, driver version %u\n",
			version, TVP_VERSION);
		return -ENODEV;
	}
	virtio_cread_le(vdev, struct tvp_config, boot_cmds, &boot_cmds);

	tv = kzalloc(sizeof(*tv), GFP_KERNEL);
	if (!tv)
		return -ENOMEM;
	tv->vdev = vdev;
	tv->mono = !tvp_kvmclock();
	raw_spin_lock_init(&tv->lock);
	mutex_init(&tv->cmd_lock);
	INIT_WORK(&tv->work, tvp_work);
	init_waitqueue_head(&tv->loader_wq);
	vdev->priv = tv;

	err = virtio_find_vqs(vdev, 2, vqs, callbacks, names, NULL);
	if (err)
		goto err_free;
	tv->loader = vqs[TVP_QUEUE_LOADER];
	tv->listener = vqs[TVP_QUEUE_LISTENER];

	/* One descriptor per buffer: the pool can never outgrow the ring. */
	tv->npool = min_t(unsigned int, TVP_POOL_MAX,
			  virtqueue_get_vring_size(tv->listener));
	nloader = min_t(unsigned int, TVP_LOADER_BUFS,
			virtqueue_get_vring_size(tv->loader));
	tv->pool = kmalloc_array(tv->npool, TVP_BUF_SIZE, GFP_KERNEL);
	tv->loader_bufs = kmalloc_array(nloader, TVP_BUF_SIZE, GFP_KERNEL);
	err = -ENOMEM;
	if (!tv->pool || !tv->loader_bufs)
		goto err_vqs;
	for (i = 0; i < tv->npool; i++)
		tv->free[i] = i;
	tv->nfree = tv->npool;
	for (i = 0; i < nloader; i++) {
		err = tvp_post_loader(tv, tv->loader_bufs + i * TVP_BUF_SIZE);
		if (err)
			goto err_vqs;
	}

	/* The work item may run commands from now on: hello goes first. */
	mutex_lock(&tv->cmd_lock);
	virtio_device_ready(vdev);
	virtqueue_kick(tv->loader);
	tvp_hello(tv);
	mutex_unlock(&tv->cmd_lock);
	tvp_boot_cmds(tv, boot_cmds);
	dev_info(&vdev->dev, "ready: %u boot commands, %s clock\n", boot_cmds,
		 tv->mono ? "monotonic" : "kvm");
	return 0;

err_vqs:
	vdev->config->del_vqs(vdev);
err_free:
	kfree(tv->loader_bufs);
	kfree(tv->pool);
	kfree(tv);
	return err;
}

static void tvp_remove(struct virtio_device *vdev)
{
	struct tvp_dev *tv = vdev->priv;

	/* No command runs after this, and no handler once probes are gone. */
	mutex_lock(&tv->cmd_lock);
	tv->dead = true;
	tvp_detach_all(tv);
	mutex_unlock(&tv->cmd_lock);

	virtio_reset_device(vdev);
	/* Frees the interrupt: no loader callback can queue the work again. */
	vdev->config->del_vqs(vdev);
	cancel_work_sync(&tv->work);
	kfree(tv->loader_bufs);
	kfree(tv->pool);
	kfree(tv);
}

static const struct virtio_device_id tvp_id_table[] = {
	{ TVP_DEVICE_ID, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, tvp_id_table);

/* No feature bits: VIRTIO_F_VERSION_1 is a transport feature the core keeps. */
static struct virtio_driver tvp_driver = {
	.driver.name = KBUILD_MODNAME,
	.driver.owner = THIS_MODULE,
	.id_table = tvp_id_table,
	.probe = tvp_probe,
	.remove = tvp_remove,
};
module_virtio_driver(tvp_driver);

MODULE_DESCRIPTION("tracevisor probe device: kprobes armed by the host");
MODULE_LICENSE("GPL");
