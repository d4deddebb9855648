// SPDX-License-Identifier: MIT
/*
 * hostile: a guest user-space virtio driver that does everything a driver
 * must not, for tests/hostile_test.go.
 *
 * It unbinds the guest kernel's drivers from the virtio-mmio devices on
 * the kernel command line, maps their register pages and a reserved piece
 * of guest RAM (memmap=RES_SIZE$RES_BASE on the command line) through
 * /dev/mem, and builds its own rings there. Then it runs a table of cases
 * against each device (bad rings, bad registers, bad requests, floods),
 * each followed by a reset and a well-formed request that the device must
 * serve. Every case prints one line on the serial port (/dev/ttyS0: the
 * virtio console is one of the devices under attack):
 *
 *   HOSTILE case dev=blk name=avail-jump expect=reset needs_reset=1 served=0 recovered=1 result=pass note=...
 *
 * expect=reset: the device must set DEVICE_NEEDS_RESET (status 0x40);
 * expect=ok: it must not, and the case's own check must hold;
 * expect=any: only the VMM's survival (checked by the test) matters.
 * recovered: after a reset the device served a good request.
 *
 * At the end it checks the canaries (a pattern around the rings and
 * buffers that no device may write), resets every device, gives them back
 * to the kernel's drivers and prints "HOSTILE end ...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tracevisor_probe.h"

/* Reserved guest RAM (memmap=80M$0x8000000) and its layout. */
#define RES_BASE 0x8000000ull
#define RES_SIZE (80ull << 20)
#define SLOT_BASE 0x1000ull  /* queue slots: desc, avail, used, 2 indirect pages, guard */
#define SLOT_SIZE 0x6000ull
#define POOL_BASE 0x100000ull /* per-device buffers, 128 KiB each */
#define POOL_SIZE 0x20000ull
#define POOL_GUARD 0x200000ull
#define ALIAS_BASE 0x1000000ull /* 62 MiB that many descriptors alias */
#define ALIAS_SIZE (62ull << 20)
#define PAGE 0x1000ull

/* virtio-mmio registers (VIRTIO 1.2 section 4.2.2). */
enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008,
	R_DEV_FEAT = 0x010, R_DEV_FEAT_SEL = 0x014, R_DRV_FEAT = 0x020, R_DRV_FEAT_SEL = 0x024,
	R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044,
	R_NOTIFY = 0x050, R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
	R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_AVAIL_LO = 0x090, R_AVAIL_HI = 0x094,
	R_USED_LO = 0x0a0, R_USED_HI = 0x0a4, R_GENERATION = 0x0fc, R_CONFIG = 0x100,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40, S_FAILED = 0x80 };
#define F_INDIRECT (1ull << 28)
#define F_VERSION_1 (1ull << 32)
enum { D_NEXT = 1, D_WRITE = 2, D_INDIRECT = 4 };

struct vq {
	uint16_t size;
	uint64_t desc, avail, used, ind; /* guest-physical addresses */
	uint16_t next_avail, seen_used;
};

struct dev {
	const char *name;
	int slot; /* index on the kernel command line: platform device virtio-mmio.<slot> */
	volatile uint32_t *reg;
	uint32_t id;
	uint64_t offered;
	int k; /* index into the reserved RAM layout */
	int nq, txq; /* queues; the queue attacks go to */
	uint16_t qmax[2];
	struct vq q[2];
};

static uint8_t *ram;
static FILE *out;
static struct dev devs[8];
static int ndevs;
static char note[256];
static int cases, failed;

static void *va(uint64_t pa) { return ram + (pa - RES_BASE); }
static uint64_t pool(struct dev *d, uint64_t off) { return RES_BASE + POOL_BASE + d->k * POOL_SIZE + off; }
static void mb(void) { __sync_synchronize(); }
static uint32_t rd(struct dev *d, int off) { return d->reg[off / 4]; }
static void wr(struct dev *d, int off, uint32_t v) { d->reg[off / 4] = v; }
static int needs_reset(struct dev *d) { return (rd(d, R_STATUS) & S_NEEDS_RESET) != 0; }

static void notef(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(note, sizeof note, fmt, ap);
	va_end(ap);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fflush(out);
	tcdrain(fileno(out)); /* whole lines: the virtio console writes to the same host stream */
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *map_phys(int fd, uint64_t pa, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)pa);
	if (p == MAP_FAILED) {
		say("HOSTILE fatal mmap /dev/mem %#llx+%#llx: %s\n", (unsigned long long)pa,
		    (unsigned long long)len, strerror(errno));
		exit(2);
	}
	return p;
}

/* ---- canaries ---- */

static uint64_t canary(uint64_t pa) { return 0xca4a000000000000ull | pa; }

static void canary_range(uint64_t pa, uint64_t len, int check, int *bad)
{
	for (uint64_t a = pa; a < pa + len; a += 8) {
		uint64_t *w = va(a);
		if (!check)
			*w = canary(a);
		else if (*w != canary(a))
			++*bad;
	}
}

/* canaries writes (check=0) or counts bad words in (check=1) every guard area. */
static int canaries(int check)
{
	int bad = 0;
	canary_range(RES_BASE, PAGE, check, &bad);
	for (int i = 0; i < 16; i++)
		canary_range(RES_BASE + SLOT_BASE + i * SLOT_SIZE + 5 * PAGE, PAGE, check, &bad);
	canary_range(RES_BASE + POOL_GUARD, PAGE, check, &bad);
	canary_range(RES_BASE + ALIAS_BASE - PAGE, PAGE, check, &bad);
	canary_range(RES_BASE + ALIAS_BASE + ALIAS_SIZE, PAGE, check, &bad);
	return bad;
}

/* ---- queues ---- */

/* layout gives queue qi of d its default size and addresses, all zeroed. */
static void layout(struct dev *d)
{
	for (int qi = 0; qi < d->nq; qi++) {
		struct vq *q = &d->q[qi];
		uint64_t s = RES_BASE + SLOT_BASE + (d->k * 2 + qi) * SLOT_SIZE;
		memset(va(s), 0, 5 * PAGE);
		*q = (struct vq){.size = d->qmax[qi], .desc = s, .avail = s + PAGE, .used = s + 2 * PAGE, .ind = s + 3 * PAGE};
	}
	memset(va(pool(d, 0)), 0, POOL_SIZE);
}

static void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = va(table + 16ull * i);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void desc(struct dev *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(d->q[d->txq].desc, i, addr, len, flags, next);
}

static volatile uint16_t *avail_ring(struct vq *q) { return va(q->avail); }
static uint16_t used_idx(struct vq *q) { return ((volatile uint16_t *)va(q->used))[1]; }

/* post publishes head on queue qi; kick notifies it. */
static void post(struct dev *d, int qi, uint16_t head)
{
	struct vq *q = &d->q[qi];
	volatile uint16_t *a = avail_ring(q);
	a[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT: the program polls */
	a[2 + q->next_avail % q->size] = head;
	mb();
	a[1] = ++q->next_avail;
	mb();
}

static void kick(struct dev *d, int qi) { wr(d, R_NOTIFY, qi); }

/* up brings d to DRIVER_OK with features feat and the queue layout in d->q;
 * it returns -1 when the device refused FEATURES_OK. */
static int up(struct dev *d, uint64_t feat)
{
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEAT_SEL, 0);
	wr(d, R_DRV_FEAT, (uint32_t)feat);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, (uint32_t)(feat >> 32));
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d, R_STATUS) & S_FEATURES_OK))
		return -1;
	for (int qi = 0; qi < d->nq; qi++) {
		struct vq *q = &d->q[qi];
		wr(d, R_QUEUE_SEL, qi);
		wr(d, R_QUEUE_NUM, q->size);
		wr(d, R_DESC_LO, (uint32_t)q->desc);
		wr(d, R_DESC_HI, (uint32_t)(q->desc >> 32));
		wr(d, R_AVAIL_LO, (uint32_t)q->avail);
		wr(d, R_AVAIL_HI, (uint32_t)(q->avail >> 32));
		wr(d, R_USED_LO, (uint32_t)q->used);
		wr(d, R_USED_HI, (uint32_t)(q->used >> 32));
		wr(d, R_QUEUE_READY, 1);
	}
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 0;
}

static uint64_t default_features(struct dev *d) { return F_VERSION_1 | (d->offered & F_INDIRECT); }

/* fresh resets d and brings it up with the default layout and features. */
static int fresh(struct dev *d)
{
	layout(d);
	return up(d, default_features(d));
}

enum { WAIT_NONE, WAIT_USED, WAIT_RESET };

/* settle waits up to ms for queue qi to return a buffer or the device to
 * ask for a reset. */
static int settle(struct dev *d, int qi, int ms)
{
	int64_t end = now_ms() + ms;
	do {
		if (needs_reset(d))
			return WAIT_RESET;
		if (used_idx(&d->q[qi]) != d->q[qi].seen_used) {
			d->q[qi].seen_used = used_idx(&d->q[qi]);
			return WAIT_USED;
		}
		sched_yield();
	} while (now_ms() < end);
	return needs_reset(d) ? WAIT_RESET : WAIT_NONE;
}

/* ---- well-formed requests ---- */

static const char pattern[] = "HOSTILE-PATTERN-0123456789abcdef";

struct blk_hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

/* blk_req submits a 3-descriptor request (header, data, status) and
 * returns the status byte, or -1 if the device did not answer. */
static int blk_req(struct dev *d, uint32_t type, uint64_t sector, uint32_t len)
{
	struct blk_hdr h = {.type = type, .sector = sector};
	memcpy(va(pool(d, 0)), &h, sizeof h);
	*(uint8_t *)va(pool(d, 0x2000)) = 0xff;
	desc(d, 0, pool(d, 0), sizeof h, D_NEXT, 1);
	desc(d, 1, pool(d, 0x1000), len, D_NEXT | (type == 0 ? D_WRITE : 0), 2);
	desc(d, 2, pool(d, 0x2000), 1, D_WRITE, 0);
	post(d, 0, 0);
	kick(d, 0);
	if (settle(d, 0, 5000) != WAIT_USED)
		return -1;
	return *(volatile uint8_t *)va(pool(d, 0x2000));
}

static void frame(uint8_t *p, const char *text)
{
	memset(p, 0, 12 + 60);
	memset(p + 12, 0xff, 6);                                         /* broadcast */
	memcpy(p + 18, "\x52\x54\x00\x48\x4f\x53", 6);                   /* 52:54:00:48:4f:53 */
	p[24] = 0x88, p[25] = 0xb5;                                      /* local experimental */
	memcpy(p + 26, text, strlen(text));
}

static void msg_hdr(uint8_t *p, uint16_t type, uint16_t len, uint32_t seq)
{
	struct tvp_hdr h = {.type = type, .len = len, .seq = seq};
	memcpy(p, &h, sizeof h);
}

/* request submits one well-formed request on d's current set-up and
 * reports whether the device served it. */
static int request(struct dev *d)
{
	uint8_t *b = va(pool(d, 0x3000));
	switch (d->id) {
	case 2:
		return blk_req(d, 0, 0, 512) == 0 && memcmp(va(pool(d, 0x1000)), pattern, sizeof pattern - 1) == 0;
	case 3:
		strcpy((char *)b, "HOSTILE console-ok\n");
		desc(d, 0, pool(d, 0x3000), strlen((char *)b), 0, 0);
		break;
	case 1:
		frame(b, "HOSTILE net-ok");
		desc(d, 0, pool(d, 0x3000), 12 + 60, 0, 0);
		break;
	case TVP_DEVICE_ID:
		memset(b, 0, sizeof(struct tvp_reply));
		msg_hdr(b, TVP_MSG_REPLY, sizeof(struct tvp_reply), 0xfffffff0);
		desc(d, 0, pool(d, 0x3000), sizeof(struct tvp_reply), 0, 0);
		break;
	}
	post(d, d->txq, 0);
	kick(d, d->txq);
	return settle(d, d->txq, 5000) == WAIT_USED;
}

static int serve(struct dev *d) { return fresh(d) == 0 && request(d); }

/* ---- the cases ---- */

enum { EXP_RESET, EXP_OK, EXP_ANY };
static const char *expect_name[] = {"reset", "ok", "any"};

/* A case returns 1 when its own check held (used by EXP_OK). */
struct kase {
	const char *name;
	int expect;
	int (*run)(struct dev *d);
	int only; /* 0: every device; else a device ID */
	int indirect; /* needs VIRTIO_F_INDIRECT_DESC */
};

/* attack publishes head (after the case wrote its descriptors) and waits. */
static int attack(struct dev *d, uint16_t head)
{
	post(d, d->txq, head);
	kick(d, d->txq);
	int w = settle(d, d->txq, 2000);
	notef("wait=%s", w == WAIT_RESET ? "reset" : w == WAIT_USED ? "used" : "none");
	return w != WAIT_NONE;
}

static uint64_t buf(struct dev *d) { return pool(d, 0x8000); }

static int c_avail_jump(struct dev *d)
{
	struct vq *q = &d->q[d->txq];
	fresh(d);
	avail_ring(q)[1] = q->size + 1;
	kick(d, d->txq);
	int w = settle(d, d->txq, 2000);
	notef("avail.idx=%u", q->size + 1);
	return w == WAIT_RESET;
}

static int c_head_range(struct dev *d)
{
	fresh(d);
	return attack(d, d->q[d->txq].size + 5);
}

static int c_next_range(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 64, D_NEXT, d->q[d->txq].size + 3);
	return attack(d, 0);
}

static int c_next_loop(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 64, D_NEXT, 1);
	desc(d, 1, buf(d), 64, D_NEXT, 0);
	return attack(d, 0);
}

static int indirect_case(struct dev *d, uint32_t len, int nested)
{
	struct vq *q = &d->q[d->txq];
	fresh(d);
	for (uint16_t i = 0; i < 2 * PAGE / 16; i++)
		put_desc(q->ind, i, buf(d), 64, 0, 0);
	if (nested)
		put_desc(q->ind, 0, q->ind + 16, 16, D_INDIRECT, 0);
	desc(d, 0, q->ind, len, D_INDIRECT, 0);
	return attack(d, 0);
}

static int c_ind_odd(struct dev *d) { return indirect_case(d, 17, 0); }
static int c_ind_big(struct dev *d) { return indirect_case(d, (d->q[d->txq].size + 1) * 16, 0); }
static int c_ind_zero(struct dev *d) { return indirect_case(d, 0, 0); }
static int c_ind_nested(struct dev *d) { return indirect_case(d, 32, 1); }

static int c_unknown_flags(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 64, 0x80, 0);
	return attack(d, 0);
}

static int c_read_after_write(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 64, D_WRITE | D_NEXT, 1);
	desc(d, 1, buf(d), 64, 0, 0);
	return attack(d, 0);
}

static int c_zero_len(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 0, 0, 0);
	return attack(d, 0);
}

static int c_outside_ram(struct dev *d)
{
	fresh(d);
	desc(d, 0, 0xd0000000ull, 4096, D_NEXT, 1); /* the MMIO window */
	desc(d, 1, 0xfffffffffffff000ull, 0x2000, 0, 0); /* wraps */
	return attack(d, 0);
}

/* Rings placed where the device must refuse them at DRIVER_OK. */
static int ring_case(struct dev *d, int which)
{
	struct vq *q = &d->q[d->txq];
	layout(d);
	switch (which) {
	case 0: q->used = q->desc; break;
	case 1: q->used = q->avail; break;
	case 2: q->desc = 0x400000000ull; break; /* 16 GiB: beyond RAM */
	case 3: q->desc += 8; break; /* misaligned */
	}
	up(d, default_features(d));
	int w = settle(d, d->txq, 500);
	notef("status=%#x", rd(d, R_STATUS));
	return w == WAIT_RESET;
}

static int c_used_over_desc(struct dev *d) { return ring_case(d, 0); }
static int c_used_over_avail(struct dev *d) { return ring_case(d, 1); }
static int c_ring_outside(struct dev *d) { return ring_case(d, 2); }
static int c_ring_misaligned(struct dev *d) { return ring_case(d, 3); }

/* A chain of size-1 direct buffers ending in an indirect table of size
 * more: each table within bounds, the chain twice the queue size. Each
 * device gets a chain it would otherwise serve. */
static int c_over_size(struct dev *d)
{
	struct vq *q = &d->q[d->txq];
	uint16_t n = q->size;
	fresh(d);
	if (d->id == 2) {
		struct blk_hdr h = {.type = 0};
		memcpy(va(buf(d)), &h, sizeof h);
		desc(d, 0, buf(d), sizeof h, D_NEXT, 1);
		for (uint16_t i = 1; i < n - 1; i++)
			desc(d, i, buf(d) + 0x1000, 512, D_WRITE | D_NEXT, i + 1);
		for (uint16_t i = 0; i < n; i++)
			put_desc(q->ind, i, buf(d) + 0x1000, i == n - 1 ? 1 : 512, D_WRITE | (i < n - 1 ? D_NEXT : 0), i + 1);
	} else {
		frame(va(buf(d)), "HOSTILE over-size");
		desc(d, 0, buf(d), 12, D_NEXT, 1);
		for (uint16_t i = 1; i < n - 1; i++)
			desc(d, i, buf(d) + 12, 2, D_NEXT, i + 1);
		for (uint16_t i = 0; i < n; i++)
			put_desc(q->ind, i, buf(d) + 12, 2, i < n - 1 ? D_NEXT : 0, i + 1);
	}
	desc(d, n - 1, q->ind, n * 16, D_INDIRECT, 0);
	return attack(d, 0);
}

/* Registers: undefined offsets, read-only registers, narrow accesses,
 * config space; the device must keep serving. */
static int c_undefined_regs(struct dev *d)
{
	static const int holes[] = {0x018, 0x01c, 0x028, 0x02c, 0x03c, 0x040, 0x048, 0x04c, 0x054, 0x058, 0x05c,
				    0x068, 0x06c, 0x074, 0x078, 0x07c, 0x088, 0x08c, 0x098, 0x09c, 0x0a8, 0x0c4, 0x0d0, 0x0f8};
	static const int ro[] = {R_MAGIC, R_VERSION, R_DEVICE_ID, R_DEV_FEAT, R_QUEUE_NUM_MAX, R_INT_STATUS, R_GENERATION};
	int bad = 0;
	fresh(d);
	uint32_t st = rd(d, R_STATUS);
	for (unsigned i = 0; i < sizeof holes / sizeof holes[0]; i++)
		bad += rd(d, holes[i]) != 0;
	for (unsigned i = 0; i < sizeof holes / sizeof holes[0]; i++)
		wr(d, holes[i], 0xffffffff);
	for (unsigned i = 0; i < sizeof ro / sizeof ro[0]; i++)
		wr(d, ro[i], 0xffffffff);
	volatile uint8_t *b8 = (volatile uint8_t *)d->reg;
	volatile uint16_t *b16 = (volatile uint16_t *)d->reg;
	b8[R_STATUS] = 0;              /* a 1-byte reset attempt: ignored */
	b16[R_QUEUE_SEL / 2 + 1] = 7;  /* unaligned to the register */
	(void)b8[R_MAGIC + 1];
	(void)b16[R_STATUS / 2];
	for (int o = R_CONFIG; o < 0x1000; o += 4)
		wr(d, o, 0xffffffff);
	for (int o = R_CONFIG; o < 0x1000; o += 4)
		(void)rd(d, o);
	bad += rd(d, R_MAGIC) != 0x74726976;
	bad += rd(d, R_VERSION) != 2;
	bad += rd(d, R_DEVICE_ID) != d->id;
	bad += rd(d, R_STATUS) != st;
	int ok = request(d);
	notef("bad_reads=%d served_after=%d", bad, ok);
	return bad == 0 && ok;
}

static int c_queue_after_ok(struct dev *d)
{
	fresh(d);
	for (int qi = 0; qi < d->nq + 1; qi++) {
		wr(d, R_QUEUE_SEL, qi);
		wr(d, R_QUEUE_NUM, 2);
		wr(d, R_DESC_LO, 0xdead000);
		wr(d, R_AVAIL_LO, 0x10);
		wr(d, R_USED_LO, 0x10);
		wr(d, R_USED_HI, 0xffffffff);
		wr(d, R_QUEUE_READY, 0);
	}
	int ok = request(d);
	notef("served_after=%d", ok);
	return ok;
}

/* expect_status writes v to Status and checks what reads back. */
static int expect_status(struct dev *d, uint32_t v, uint32_t want, int *bad)
{
	wr(d, R_STATUS, v);
	uint32_t got = rd(d, R_STATUS);
	if (got != want) {
		++*bad;
		notef("wrote %#x read %#x want %#x", v, got, want);
	}
	return got;
}

static int c_bad_status(struct dev *d)
{
	int bad = 0;
	notef("-");
	wr(d, R_STATUS, 0);
	expect_status(d, S_DRIVER_OK, 0, &bad);
	expect_status(d, S_FEATURES_OK, 0, &bad);
	expect_status(d, S_ACK, S_ACK, &bad);
	expect_status(d, S_ACK | S_FEATURES_OK, S_ACK, &bad);
	expect_status(d, S_ACK | S_NEEDS_RESET, S_ACK, &bad);
	expect_status(d, S_ACK | S_DRIVER | S_DRIVER_OK, S_ACK, &bad);
	expect_status(d, S_ACK | S_DRIVER, S_ACK | S_DRIVER, &bad);
	expect_status(d, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, S_ACK | S_DRIVER, &bad);
	expect_status(d, 0xff, S_ACK | S_DRIVER | S_FAILED, &bad);
	expect_status(d, S_ACK | S_DRIVER | S_FEATURES_OK, S_ACK | S_DRIVER | S_FAILED, &bad);
	int ok = serve(d);
	if (!bad)
		notef("served_after_reset=%d", ok);
	return bad == 0 && ok;
}

static int c_bad_features(struct dev *d)
{
	int bad = 0;
	uint64_t tries[] = {F_VERSION_1 | ~d->offered, 0, ~0ull, F_VERSION_1 | (1ull << 63)};
	for (unsigned i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		layout(d);
		bad += up(d, tries[i]) == 0;
	}
	/* a feature window beyond 64 bits */
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, 1);
	wr(d, R_DRV_FEAT_SEL, 2);
	wr(d, R_DRV_FEAT, 0xffffffff);
	wr(d, R_DEV_FEAT_SEL, 7);
	bad += rd(d, R_DEV_FEAT) != 0;
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	/* features written after FEATURES_OK: ignored */
	wr(d, R_DRV_FEAT_SEL, 0);
	wr(d, R_DRV_FEAT, 0xffffffff);
	notef("accepted_bad=%d status=%#x", bad, rd(d, R_STATUS));
	return bad == 0;
}

static int c_bad_queue_size(struct dev *d)
{
	int bad = 0;
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, 1);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	uint32_t sizes[] = {3, 0, (uint32_t)d->qmax[0] * 2, 0x10000, 0xffffffff};
	wr(d, R_QUEUE_SEL, 0);
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		wr(d, R_QUEUE_NUM, sizes[i]);
		wr(d, R_QUEUE_READY, 1);
		bad += rd(d, R_QUEUE_READY) != 0;
	}
	wr(d, R_QUEUE_SEL, 50);
	bad += rd(d, R_QUEUE_NUM_MAX) != 0;
	wr(d, R_QUEUE_READY, 1);
	wr(d, R_QUEUE_SEL, 0xffffffff);
	wr(d, R_QUEUE_NUM, 4);
	notef("bad=%d", bad);
	return bad == 0;
}

static int c_bad_notify(struct dev *d)
{
	wr(d, R_STATUS, 0);
	kick(d, 0);
	kick(d, 1);
	fresh(d);
	wr(d, R_NOTIFY, 0xffff);
	wr(d, R_NOTIFY, 0xffffffff);
	wr(d, R_INT_ACK, 0xffffffff);
	int ok = request(d);
	notef("served_after=%d", ok);
	return ok;
}

/* ---- per-device requests ---- */

/* 66 data descriptors of 62 MiB, all the same guest pages: a 4092 MiB read. */
static int c_blk_huge(struct dev *d)
{
	struct blk_hdr h = {.type = 0, .sector = 0};
	fresh(d);
	memcpy(va(buf(d)), &h, sizeof h);
	*(uint8_t *)va(buf(d) + 0x100) = 0xff;
	desc(d, 0, buf(d), sizeof h, D_NEXT, 1);
	for (uint16_t i = 1; i <= 66; i++)
		desc(d, i, RES_BASE + ALIAS_BASE, ALIAS_SIZE, D_WRITE | D_NEXT, i + 1);
	desc(d, 67, buf(d) + 0x100, 1, D_WRITE, 0);
	post(d, 0, 0);
	kick(d, 0);
	int w = settle(d, 0, 120000);
	notef("wait=%s status=%d", w == WAIT_RESET ? "reset" : w == WAIT_USED ? "used" : "none",
	      *(volatile uint8_t *)va(buf(d) + 0x100));
	return w != WAIT_NONE;
}

static uint64_t capacity(struct dev *d)
{
	return (uint64_t)rd(d, R_CONFIG) | (uint64_t)rd(d, R_CONFIG + 4) << 32;
}

static int c_blk_write_ro(struct dev *d)
{
	fresh(d);
	memset(va(pool(d, 0x1000)), 'X', 512);
	int st = blk_req(d, 1, 0, 512);
	notef("status=%d (want 1, IOERR)", st);
	return st == 1;
}

static int c_blk_range(struct dev *d)
{
	uint64_t cap = capacity(d), sectors[] = {cap, cap - 1, 1ull << 63, ~0ull};
	uint32_t lens[] = {512, 1024, 512, 512};
	int bad = 0;
	fresh(d);
	for (int i = 0; i < 4; i++) {
		int st = blk_req(d, i % 2 == 0 ? 0 : 1, sectors[i], lens[i]);
		bad += st != 1;
	}
	notef("capacity=%llu not_ioerr=%d", (unsigned long long)cap, bad);
	return bad == 0;
}

/* n readable descriptors of len bytes each, all over the alias area. */
static int aliased_chain(struct dev *d, uint16_t n, uint32_t len, int hdr)
{
	fresh(d);
	uint16_t i = 0;
	if (hdr)
		desc(d, i++, buf(d), 12, D_NEXT, 1);
	for (; i < n; i++)
		desc(d, i, RES_BASE + ALIAS_BASE, len, i < n - 1 ? D_NEXT : 0, i + 1);
	post(d, d->txq, 0);
	kick(d, d->txq);
	int w = settle(d, d->txq, 60000);
	notef("wait=%s bytes=%llu", w == WAIT_RESET ? "reset" : w == WAIT_USED ? "used" : "none",
	      (unsigned long long)n * len);
	return w == WAIT_USED;
}

static int c_alias_1g(struct dev *d) { return aliased_chain(d, 64, 16 << 20, d->id == 1); }

static int c_net_oversize(struct dev *d)
{
	fresh(d);
	frame(va(buf(d)), "HOSTILE oversize");
	desc(d, 0, buf(d), 12 + 60, D_NEXT, 1);
	desc(d, 1, RES_BASE + ALIAS_BASE, 65536 + 64, 0, 0); /* frame > MaxFrameLen */
	int ok = attack(d, 0) && !needs_reset(d);
	return ok && request(d);
}

static int c_net_short(struct dev *d)
{
	fresh(d);
	desc(d, 0, buf(d), 4, 0, 0);
	return attack(d, 0);
}

/* probe_send posts n listener messages of len bytes built by fill, in
 * batches of the queue size, and reports whether all came back. */
static int probe_send(struct dev *d, int n, uint16_t len, void (*fill)(uint8_t *, int))
{
	struct vq *q = &d->q[TVP_QUEUE_LISTENER];
	for (int done = 0; done < n;) {
		int batch = n - done < q->size ? n - done : q->size;
		for (int i = 0; i < batch; i++) {
			uint8_t *m = va(buf(d) + (uint64_t)i * TVP_BUF_SIZE);
			fill(m, done + i);
			put_desc(q->desc, i, buf(d) + (uint64_t)i * TVP_BUF_SIZE, len, 0, 0);
			volatile uint16_t *a = avail_ring(q);
			a[2 + q->next_avail++ % q->size] = i;
		}
		mb();
		avail_ring(q)[1] = q->next_avail;
		mb();
		kick(d, TVP_QUEUE_LISTENER);
		int64_t end = now_ms() + 10000;
		while (used_idx(q) != q->next_avail && !needs_reset(d) && now_ms() < end)
			sched_yield();
		if (used_idx(q) != q->next_avail)
			return 0;
		q->seen_used = used_idx(q);
		done += batch;
	}
	return 1;
}

static void fill_hello(uint8_t *m, int i)
{
	struct tvp_hello h = {.version = TVP_VERSION, .clock = TVP_CLOCK_KVM, .ncpus = 1, .guest_ns = i};
	memcpy(m, &h, sizeof h);
	msg_hdr(m, TVP_MSG_HELLO, sizeof h, 0);
}

static void fill_stats(uint8_t *m, int i)
{
	struct tvp_stats s = {.count = TVP_STATS_PER_MSG, .last = 0};
	for (int j = 0; j < TVP_STATS_PER_MSG; j++)
		s.stats[j].id = i * 4 + j + 1000;
	memcpy(m, &s, sizeof s);
	msg_hdr(m, TVP_MSG_STATS, sizeof s, 0x40000000u + i);
}

static void fill_garbage(uint8_t *m, int i)
{
	msg_hdr(m, i % 3 == 0 ? 0x99 : TVP_MSG_EVENT, i % 3 == 1 ? 7 : 200, i);
	memset(m + 8, 0xa5, TVP_BUF_SIZE - 8);
}

static void fill_big(uint8_t *m, int i)
{
	fill_hello(m, i);
	msg_hdr(m, TVP_MSG_HELLO, 0xffff, 0);
}

static int c_probe_1g(struct dev *d) { return c_alias_1g(d); }

static int c_probe_oversize(struct dev *d)
{
	fresh(d);
	int ok = probe_send(d, 1, 4096, fill_big);
	notef("returned=%d", ok);
	return ok;
}

static int c_probe_hellos(struct dev *d)
{
	fresh(d);
	int ok = probe_send(d, 1000, sizeof(struct tvp_hello), fill_hello);
	notef("returned=%d", ok);
	return ok;
}

static int c_probe_stats(struct dev *d)
{
	fresh(d);
	int ok = probe_send(d, 2000, sizeof(struct tvp_stats), fill_stats);
	notef("returned=%d", ok);
	return ok;
}

/* Answer the host's next stats request (the test sends one through the
 * control API when it reads "HOSTILE await-stats") with a Reply. */
static int c_probe_reply_to_stats(struct dev *d)
{
	struct vq *lq = &d->q[TVP_QUEUE_LOADER];
	int nbuf = 64;
	uint32_t seq = 0;
	int got = 0, seen = 0;
	fresh(d);
	for (int i = 0; i < nbuf; i++) {
		put_desc(lq->desc, i, buf(d) + (uint64_t)i * TVP_BUF_SIZE, TVP_BUF_SIZE, D_WRITE, 0);
		post(d, TVP_QUEUE_LOADER, i);
	}
	kick(d, TVP_QUEUE_LOADER);
	say("HOSTILE await-stats\n");
	int64_t end = now_ms() + 90000;
	volatile uint32_t *used = va(lq->used);
	while (!got && now_ms() < end && !needs_reset(d)) {
		if (used_idx(lq) == lq->seen_used) {
			usleep(1000);
			continue;
		}
		uint32_t id = used[1 + 2 * (lq->seen_used % lq->size)];
		lq->seen_used++;
		seen++;
		struct tvp_hdr h;
		memcpy(&h, va(buf(d) + (uint64_t)(id % nbuf) * TVP_BUF_SIZE), sizeof h);
		if (h.type == TVP_CMD_STATS) {
			seq = h.seq;
			got = 1;
		}
		post(d, TVP_QUEUE_LOADER, id % nbuf);
		kick(d, TVP_QUEUE_LOADER);
	}
	if (got) {
		struct tvp_reply r = {.status = 0, .id = 0};
		uint8_t *m = va(pool(d, 0x3000));
		memcpy(m, &r, sizeof r);
		msg_hdr(m, TVP_MSG_REPLY, sizeof r, seq);
		put_desc(d->q[1].desc, 0, pool(d, 0x3000), sizeof r, 0, 0);
		post(d, 1, 0);
		kick(d, 1);
		settle(d, 1, 5000);
		sleep(2); /* the host decodes it on its own goroutine */
	}
	notef("commands_seen=%d stats_seq=%u replied=%d", seen, seq, got);
	return got;
}

/* ---- floods ---- */

static int c_flood_notify_broken(struct dev *d)
{
	c_avail_jump(d);
	for (int i = 0; i < 30000; i++)
		kick(d, i & 1);
	notef("notifies=30000 still_needs_reset=%d", needs_reset(d));
	return needs_reset(d);
}

static int c_flood_notify_badq(struct dev *d)
{
	fresh(d);
	for (int i = 0; i < 30000; i++)
		wr(d, R_NOTIFY, 0x1234 + (i & 7));
	int ok = request(d);
	notef("notifies=30000 served_after=%d", ok);
	return ok;
}

static int c_flood_messages(struct dev *d)
{
	fresh(d);
	int ok = probe_send(d, 20000, 200, fill_garbage);
	int served = ok && request(d);
	notef("messages=20000 returned=%d served_after=%d", ok, served);
	return served;
}

static int c_flood_resets(struct dev *d)
{
	int n = 0;
	for (int i = 0; i < 2000; i++) {
		fresh(d);
		avail_ring(&d->q[d->txq])[1] = 0x8000;
		kick(d, d->txq);
		n += needs_reset(d);
	}
	int ok = serve(d);
	notef("cycles=2000 saw_reset=%d served_after=%d", n, ok);
	return ok;
}

#define BLK 2
#define CONSOLE 3
#define NET 1
#define PROBE TVP_DEVICE_ID

static const struct kase table[] = {
	{"avail-jump", EXP_RESET, c_avail_jump, 0, 0},
	{"head-out-of-range", EXP_RESET, c_head_range, 0, 0},
	{"next-out-of-range", EXP_RESET, c_next_range, 0, 0},
	{"next-loop", EXP_RESET, c_next_loop, 0, 0},
	{"indirect-odd-length", EXP_RESET, c_ind_odd, 0, 0},
	{"indirect-over-size", EXP_RESET, c_ind_big, 0, 0},
	{"indirect-zero-length", EXP_RESET, c_ind_zero, 0, 0},
	{"indirect-nested", EXP_RESET, c_ind_nested, 0, 0},
	{"unknown-desc-flags", EXP_RESET, c_unknown_flags, 0, 0},
	{"readable-after-writable", EXP_RESET, c_read_after_write, 0, 0},
	{"zero-length-chain", EXP_RESET, c_zero_len, 0, 0},
	{"buffer-outside-ram", EXP_RESET, c_outside_ram, 0, 0},
	{"used-over-desc", EXP_RESET, c_used_over_desc, 0, 0},
	{"used-over-avail", EXP_RESET, c_used_over_avail, 0, 0},
	{"ring-outside-ram", EXP_RESET, c_ring_outside, 0, 0},
	{"ring-misaligned", EXP_RESET, c_ring_misaligned, 0, 0},
	{"direct-plus-indirect-over-size", EXP_RESET, c_over_size, BLK, 1},
	{"direct-plus-indirect-over-size", EXP_RESET, c_over_size, NET, 1},
	{"undefined-registers", EXP_OK, c_undefined_regs, 0, 0},
	{"queue-regs-after-driver-ok", EXP_OK, c_queue_after_ok, 0, 0},
	{"bad-status-transitions", EXP_OK, c_bad_status, 0, 0},
	{"unsupported-features", EXP_OK, c_bad_features, 0, 0},
	{"bad-queue-size", EXP_OK, c_bad_queue_size, 0, 0},
	{"bad-notify", EXP_OK, c_bad_notify, 0, 0},
	{"huge-data-66x62MiB", EXP_ANY, c_blk_huge, BLK, 0},
	{"sector-out-of-range", EXP_OK, c_blk_range, BLK, 0},
	{"transmit-1GiB-aliased", EXP_ANY, c_alias_1g, CONSOLE, 0},
	{"transmit-oversize-frame", EXP_OK, c_net_oversize, NET, 0},
	{"transmit-1GiB-aliased", EXP_OK, c_alias_1g, NET, 0},
	{"transmit-shorter-than-header", EXP_RESET, c_net_short, NET, 0},
	{"listener-1GiB-aliased", EXP_ANY, c_probe_1g, PROBE, 0},
	{"listener-over-256-bytes", EXP_ANY, c_probe_oversize, PROBE, 0},
	{"unsolicited-stats-2000", EXP_ANY, c_probe_stats, PROBE, 0},
	{"hellos-1000", EXP_ANY, c_probe_hellos, PROBE, 0},
	{"flood-notify-while-broken", EXP_RESET, c_flood_notify_broken, 0, 0},
	{"flood-notify-bad-queue", EXP_OK, c_flood_notify_badq, 0, 0},
	{"flood-malformed-messages", EXP_OK, c_flood_messages, PROBE, 0},
	{"flood-reset-cycles", EXP_OK, c_flood_resets, NET, 0},
};

static void run_case(struct dev *d, const struct kase *c)
{
	if (c->indirect && !(d->offered & F_INDIRECT))
		return;
	note[0] = 0;
	say("HOSTILE run dev=%s name=%s\n", d->name, c->name);
	int own = c->run(d);
	int nr = needs_reset(d);
	int pass = c->expect == EXP_RESET ? nr : c->expect == EXP_OK ? own && !nr : 1;
	int rec = serve(d);
	pass = pass && rec;
	cases++;
	failed += !pass;
	say("HOSTILE case dev=%s name=%s expect=%s needs_reset=%d check=%d recovered=%d result=%s note=%s\n", d->name,
	    c->name, expect_name[c->expect], nr, own, rec, pass ? "pass" : "FAIL", note[0] ? note : "-");
}

/* cross leaves d needing a reset and checks every other device serves. */
static void cross(struct dev *d)
{
	int bad = 0;
	char who[128] = "";
	c_avail_jump(d);
	for (int i = 0; i < ndevs; i++) {
		if (&devs[i] == d)
			continue;
		int ok = serve(&devs[i]);
		bad += !ok;
		snprintf(who + strlen(who), sizeof who - strlen(who), "%s%s=%d", who[0] ? "," : "", devs[i].name, ok);
	}
	cases++;
	failed += bad != 0 || !needs_reset(d);
	say("HOSTILE case dev=%s name=others-serve-while-broken expect=ok needs_reset=%d check=%d recovered=1 result=%s note=%s\n",
	    d->name, needs_reset(d), bad == 0, bad == 0 && needs_reset(d) ? "pass" : "FAIL", who);
	wr(d, R_STATUS, 0);
}

static void sysfs(const char *what, int slot)
{
	char path[128], name[32];
	snprintf(path, sizeof path, "/sys/bus/platform/drivers/virtio-mmio/%s", what);
	int n = snprintf(name, sizeof name, "virtio-mmio.%d", slot);
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, name, n) != n)
		say("HOSTILE note %s %s: %s\n", what, name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* discover maps every virtio_mmio.device= on the kernel command line. */
static void discover(int mem)
{
	char line[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	if (!f || !fgets(line, sizeof line, f)) {
		say("HOSTILE fatal /proc/cmdline\n");
		exit(2);
	}
	fclose(f);
	int slot = 0;
	for (char *p = line; (p = strstr(p, "virtio_mmio.device=")); p++, slot++) {
		unsigned long long base = strtoull(strchr(p, '@') + 1, NULL, 0);
		struct dev *d = &devs[ndevs];
		d->slot = slot;
		d->reg = map_phys(mem, base, PAGE);
		d->id = rd(d, R_DEVICE_ID);
		wr(d, R_DEV_FEAT_SEL, 0);
		d->offered = rd(d, R_DEV_FEAT);
		wr(d, R_DEV_FEAT_SEL, 1);
		d->offered |= (uint64_t)rd(d, R_DEV_FEAT) << 32;
		d->nq = d->id == 2 ? 1 : 2;
		d->txq = d->id == 2 ? 0 : 1;
		for (int qi = 0; qi < d->nq; qi++) {
			wr(d, R_QUEUE_SEL, qi);
			d->qmax[qi] = rd(d, R_QUEUE_NUM_MAX);
		}
		switch (d->id) {
		case 2: d->name = d->offered & (1 << 5) ? "blk-ro" : "blk"; break;
		case 3: d->name = "console"; break;
		case 1: d->name = "net"; break;
		case TVP_DEVICE_ID: d->name = "probe"; break;
		default: continue;
		}
		d->k = ndevs++;
		say("HOSTILE device %s slot=%d base=%#llx id=%#x features=%#llx qmax=%u,%u\n", d->name, slot, base, d->id,
		    (unsigned long long)d->offered, d->qmax[0], d->qmax[1]);
	}
}

int main(void)
{
	signal(SIGHUP, SIG_IGN); /* unbinding the virtio console hangs up hvc0 */
	out = fopen("/dev/ttyS0", "w");
	if (!out)
		out = stdout;
	int mem = open("/dev/mem", O_RDWR | O_SYNC);
	if (mem < 0) {
		say("HOSTILE fatal /dev/mem: %s\n", strerror(errno));
		return 2;
	}
	discover(mem);
	for (int i = 0; i < ndevs; i++)
		sysfs("unbind", devs[i].slot);
	ram = map_phys(mem, RES_BASE, RES_SIZE);
	memset(ram + ALIAS_BASE, 0, ALIAS_SIZE);
	canaries(0);
	int64_t start = now_ms();

	static const struct kase ro = {"write-to-read-only", EXP_OK, c_blk_write_ro, BLK, 0};
	for (int i = 0; i < ndevs; i++) {
		struct dev *d = &devs[i];
		if (!strcmp(d->name, "blk-ro"))
			run_case(d, &ro);
		else
			for (unsigned c = 0; c < sizeof table / sizeof table[0]; c++)
				if (!table[c].only || (uint32_t)table[c].only == d->id)
					run_case(d, &table[c]);
		cross(d);
	}

	int bad = canaries(1);
	cases++;
	failed += bad != 0;
	say("HOSTILE case dev=ram name=canaries expect=ok needs_reset=0 check=%d recovered=1 result=%s note=bad_words=%d\n",
	    bad == 0, bad ? "FAIL" : "pass", bad);
	/* Last: it needs the test's help, and a VMM that mishandles it ends the run. */
	static const struct kase reply = {"reply-to-stats-request", EXP_ANY, c_probe_reply_to_stats, PROBE, 0};
	for (int i = 0; i < ndevs; i++)
		if (devs[i].id == TVP_DEVICE_ID)
			run_case(&devs[i], &reply);
	for (int i = 0; i < ndevs; i++) {
		wr(&devs[i], R_STATUS, 0);
		sysfs("bind", devs[i].slot);
	}
	say("HOSTILE end cases=%d failed=%d seconds=%lld\n", cases, failed, (long long)(now_ms() - start) / 1000);
	return failed ? 1 : 0;
}
