package wire

// cProgram is the hand-written half of the C cross-check program: samples
// filled from C (mode "samples") and a decoder of Go-marshaled messages
// (mode "decode"). The generated half, layout(), prints every constant,
// struct size and field offset parsed from the header.
const cProgram = `
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit(const char *name, const void *p, size_t n)
{
	const unsigned char *b = p;
	printf("%s ", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

static void hdr(struct tvp_hdr *h, unsigned type, size_t len, uint32_t seq)
{
	h->type = htole16(type);
	h->len = htole16(len);
	h->seq = htole32(seq);
}

static void samples(void)
{
	{
		struct tvp_attach m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_ATTACH, sizeof m, 0x01020304);
		m.id = htole32(7);
		m.kind = htole16(TVP_KIND_KPROBE);
		m.class = htole16(TVP_CLASS_SIGNAL);
		m.offset = htole32(0x10);
		m.rate = htole32(100);
		m.pid = htole32(4242);
		m.nargs = 3;
		m.regs[0] = TVP_REG_DI;
		m.regs[1] = TVP_REG_DX;
		m.regs[2] = TVP_REG_IP;
		m.npreds = 2;
		m.preds[0].arg = 0;
		m.preds[0].op = TVP_OP_EQ;
		m.preds[0].value = htole64(15);
		m.preds[1].arg = 2;
		m.preds[1].op = TVP_OP_AND;
		m.preds[1].value = htole64(0xffffffff80000000ULL);
		m.sig_mask = htole64((1ULL << 9) | (1ULL << 15) | (1ULL << 63));
		strcpy(m.symbol, "send_signal_locked");
		memcpy(m.comm, "0123456789abcdef", TVP_COMM_LEN); /* full: no NUL */
		emit("attach_signal", &m, sizeof m);
	}
	{
		struct tvp_attach m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_ATTACH, sizeof m, 0xfffffffe);
		m.id = htole32(0xffffffff);
		m.kind = htole16(TVP_KIND_KRETPROBE);
		m.class = htole16(TVP_CLASS_LOCKUP);
		m.rate = htole32(0xffffffff);
		m.pid = htole32(0xfffffff0);
		m.nargs = TVP_MAX_ARGS;
		m.regs[0] = TVP_REG_AX;
		m.regs[1] = TVP_REG_SP;
		m.regs[2] = TVP_REG_R8;
		m.regs[3] = TVP_REG_R9;
		m.regs[4] = TVP_REG_CX;
		m.regs[5] = TVP_REG_SI;
		m.npreds = 1;
		m.preds[0].arg = 5;
		m.preds[0].op = TVP_OP_GE;
		m.preds[0].value = htole64(0x8000000000000001ULL);
		memset(m.symbol, 'x', TVP_SYMBOL_LEN - 1); /* longest: 63 bytes and its NUL */
		emit("attach_max", &m, sizeof m);
	}
	{
		struct tvp_attach m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_ATTACH, sizeof m, 3);
		m.id = htole32(3);
		m.kind = htole16(TVP_KIND_PANIC);
		m.class = htole16(TVP_CLASS_PANIC);
		strcpy(m.comm, "sshd");
		emit("attach_panic", &m, sizeof m);
	}
	{
		struct tvp_detach m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_DETACH, sizeof m, 9);
		m.id = htole32(0x11223344);
		emit("detach", &m, sizeof m);
	}
	{
		struct tvp_hdr m;
		hdr(&m, TVP_CMD_STATS, sizeof m, 77);
		emit("stats_request", &m, sizeof m);
	}
	{
		struct tvp_inject m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_INJECT, sizeof m, 10);
		m.kind = htole16(TVP_INJECT_SIGNAL);
		m.arg = htole32(15);
		strcpy(m.comm, "nginx");
		emit("inject_signal", &m, sizeof m);
	}
	{
		struct tvp_inject m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_INJECT, sizeof m, 11);
		m.kind = htole16(TVP_INJECT_HANG);
		m.arg = htole32(1);
		m.arg2 = htole32(30);
		emit("inject_hang", &m, sizeof m);
	}
	{
		struct tvp_inject m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_CMD_INJECT, sizeof m, 13);
		m.kind = htole16(TVP_INJECT_STALL);
		m.arg2 = htole32(60);
		emit("inject_stall", &m, sizeof m);
	}
	{
		struct tvp_hello m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_HELLO, sizeof m, 0);
		m.version = htole32(TVP_VERSION);
		m.clock = htole16(TVP_CLOCK_KVM);
		m.ncpus = htole16(4);
		m.guest_ns = htole64(0x0102030405060708ULL);
		emit("hello", &m, sizeof m);
	}
	{
		struct tvp_reply m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_REPLY, sizeof m, 5);
		m.status = htole32((uint32_t)-ENOENT);
		m.id = htole32(7);
		emit("reply_enoent", &m, sizeof m);
	}
	{
		struct tvp_reply m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_REPLY, sizeof m, 6);
		emit("reply_ok", &m, sizeof m);
	}
	{
		struct tvp_stats m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_STATS, sizeof m, 12);
		m.count = htole16(2);
		m.last = htole16(1);
		m.stats[0].id = htole32(7);
		m.stats[0].kind = htole16(TVP_KIND_KPROBE);
		m.stats[0].class = htole16(TVP_CLASS_SIGNAL);
		m.stats[0].hits = htole64(1000);
		m.stats[0].delivered = htole64(900);
		m.stats[0].filtered = htole64(50);
		m.stats[0].limited = htole64(40);
		m.stats[0].dropped = htole64(10);
		m.stats[0].missed = htole64(1);
		m.stats[1].id = htole32(8);
		m.stats[1].kind = htole16(TVP_KIND_DIE);
		m.stats[1].class = htole16(TVP_CLASS_OOPS);
		m.stats[1].hits = htole64(0xffffffffffffffffULL);
		m.stats[1].missed = htole64(0x8000000000000000ULL);
		emit("stats", &m, sizeof m);
	}
	{
		struct tvp_stats m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_STATS, sizeof m, 13);
		m.count = htole16(0);
		m.last = htole16(0);
		emit("stats_empty", &m, sizeof m);
	}
	{
		struct tvp_event m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_EVENT, sizeof m, 0);
		m.probe = htole32(7);
		m.class = htole16(TVP_CLASS_SIGNAL);
		m.cpu = htole16(3);
		m.guest_ns = htole64(123456789012ULL);
		m.pid = htole32(100);
		m.tid = htole32(101);
		strcpy(m.comm, "sleep");
		m.dropped = htole32(2);
		m.args[0] = htole64(15);
		m.args[1] = htole64(0xffff888000001000ULL);
		m.sig = htole32(15);
		m.other_pid = htole32(1);
		strcpy(m.other_comm, "init");
		emit("event_signal", &m, sizeof m);
	}
	{
		struct tvp_event m;
		memset(&m, 0, sizeof m);
		hdr(&m.hdr, TVP_MSG_EVENT, sizeof m, 0);
		m.probe = htole32(0xffffffff);
		m.class = htole16(TVP_CLASS_PANIC);
		m.cpu = htole16(0xffff);
		m.guest_ns = htole64(0xffffffffffffffffULL);
		m.pid = htole32(0xfffffffe);
		m.tid = htole32(0xfffffffd);
		memcpy(m.comm, "ABCDEFGHIJKLMNOP", TVP_COMM_LEN);
		m.dropped = htole32(0xffffffff);
		m.flags = htole32(TVP_EV_RETURN | TVP_EV_CLOCK_MONO);
		for (int i = 0; i < TVP_MAX_ARGS; i++)
			m.args[i] = htole64(0x1111111111111111ULL * (i + 1));
		m.sig = htole32(64);
		m.other_pid = htole32(0xfffffffc);
		memcpy(m.other_comm, "qrstuvwxyz012345", TVP_COMM_LEN);
		m.value = htole64(0xfedcba9876543210ULL);
		memset(m.text, 't', TVP_TEXT_LEN); /* full: no NUL */
		emit("event_full", &m, sizeof m);
	}
}

/* pstr prints a char array as hex up to its NUL or its end. */
static void pstr(const char *name, const char *s, size_t n)
{
	printf(" %s=", name);
	for (size_t i = 0; i < n && s[i]; i++)
		printf("%02x", (unsigned char)s[i]);
}

/* zero reports whether n bytes at p are all zero. */
static int zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void decode_one(const unsigned char *buf, size_t n)
{
	struct tvp_hdr h;
	memcpy(&h, buf, sizeof h);
	unsigned type = le16toh(h.type), len = le16toh(h.len);
	uint32_t seq = le32toh(h.seq);
	if (len != n) {
		printf("badlen %u %zu\n", len, n);
		return;
	}
	switch (type) {
	case TVP_CMD_ATTACH: {
		struct tvp_attach m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("attach seq=%u id=%u kind=%u class=%u offset=%u rate=%u pid=%u regs=", seq,
		       le32toh(m.id), le16toh(m.kind), le16toh(m.class), le32toh(m.offset),
		       le32toh(m.rate), le32toh(m.pid));
		for (int i = 0; i < m.nargs && i < TVP_MAX_ARGS; i++)
			printf("%s%u", i ? "," : "", m.regs[i]);
		printf(" sig_mask=%llu", (unsigned long long)le64toh(m.sig_mask));
		pstr("symbol", m.symbol, TVP_SYMBOL_LEN);
		pstr("comm", m.comm, TVP_COMM_LEN);
		printf(" preds=");
		int pads = zero(m.pad, sizeof m.pad);
		for (int i = 0; i < m.npreds && i < TVP_MAX_PREDS; i++) {
			printf("%s%u:%u:%llu", i ? "," : "", m.preds[i].arg, m.preds[i].op,
			       (unsigned long long)le64toh(m.preds[i].value));
			pads &= zero(m.preds[i].pad, sizeof m.preds[i].pad);
		}
		printf(" pads=%d\n", pads);
		return;
	}
	case TVP_CMD_DETACH: {
		struct tvp_detach m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("detach seq=%u id=%u pads=%d\n", seq, le32toh(m.id), m.pad == 0);
		return;
	}
	case TVP_CMD_STATS:
		if (n != sizeof(struct tvp_hdr))
			break;
		printf("stats_request seq=%u\n", seq);
		return;
	case TVP_CMD_INJECT: {
		struct tvp_inject m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("inject seq=%u kind=%u arg=%u arg2=%u", seq, le16toh(m.kind), le32toh(m.arg),
		       le32toh(m.arg2));
		pstr("comm", m.comm, TVP_COMM_LEN);
		printf(" pads=%d\n", m.pad == 0 && m.pad2 == 0);
		return;
	}
	case TVP_MSG_HELLO: {
		struct tvp_hello m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("hello seq=%u version=%u clock=%u ncpus=%u guest_ns=%llu\n", seq,
		       le32toh(m.version), le16toh(m.clock), le16toh(m.ncpus),
		       (unsigned long long)le64toh(m.guest_ns));
		return;
	}
	case TVP_MSG_REPLY: {
		struct tvp_reply m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("reply seq=%u status=%d id=%u\n", seq, (int32_t)le32toh(m.status), le32toh(m.id));
		return;
	}
	case TVP_MSG_STATS: {
		struct tvp_stats m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("stats seq=%u last=%u entries=", seq, le16toh(m.last));
		for (int i = 0; i < le16toh(m.count) && i < TVP_STATS_PER_MSG; i++) {
			struct tvp_stat *s = &m.stats[i];
			printf("%s%u:%u:%u:%llu:%llu:%llu:%llu:%llu:%llu", i ? "," : "", le32toh(s->id),
			       le16toh(s->kind), le16toh(s->class), (unsigned long long)le64toh(s->hits),
			       (unsigned long long)le64toh(s->delivered),
			       (unsigned long long)le64toh(s->filtered),
			       (unsigned long long)le64toh(s->limited),
			       (unsigned long long)le64toh(s->dropped),
			       (unsigned long long)le64toh(s->missed));
		}
		printf(" pads=%d\n", m.pad == 0);
		return;
	}
	case TVP_MSG_EVENT: {
		struct tvp_event m;
		if (n != sizeof m)
			break;
		memcpy(&m, buf, n);
		printf("event seq=%u probe=%u class=%u cpu=%u guest_ns=%llu pid=%u tid=%u", seq,
		       le32toh(m.probe), le16toh(m.class), le16toh(m.cpu),
		       (unsigned long long)le64toh(m.guest_ns), le32toh(m.pid), le32toh(m.tid));
		pstr("comm", m.comm, TVP_COMM_LEN);
		printf(" dropped=%u flags=%u args=", le32toh(m.dropped), le32toh(m.flags));
		for (int i = 0; i < TVP_MAX_ARGS; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)le64toh(m.args[i]));
		printf(" sig=%u other_pid=%u", le32toh(m.sig), le32toh(m.other_pid));
		pstr("other_comm", m.other_comm, TVP_COMM_LEN);
		printf(" value=%llu", (unsigned long long)le64toh(m.value));
		pstr("text", m.text, TVP_TEXT_LEN);
		printf("\n");
		return;
	}
	}
	printf("unknown type=%u len=%zu\n", type, n);
}

static void decode(void)
{
	char line[4 * TVP_BUF_SIZE];
	while (fgets(line, sizeof line, stdin)) {
		unsigned char buf[TVP_BUF_SIZE];
		size_t n = 0;
		for (char *p = line; hexval(p[0]) >= 0 && hexval(p[1]) >= 0 && n < sizeof buf; p += 2)
			buf[n++] = hexval(p[0]) << 4 | hexval(p[1]);
		decode_one(buf, n);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	if (!strcmp(argv[1], "layout"))
		layout();
	else if (!strcmp(argv[1], "samples"))
		samples();
	else if (!strcmp(argv[1], "decode"))
		decode();
	else
		return 2;
	return 0;
}
`
