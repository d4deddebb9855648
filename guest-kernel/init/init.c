/* SPDX-License-Identifier: MIT */
/*
 * /init of the tracevisor guest: PID 1, started by the kernel from the
 * initramfs with /dev/console as fds 0, 1 and 2.
 *
 * It mounts /dev, /proc, /sys, /tmp and /run, tells the VMM through the debug
 * page (tracevisor_debug.h) that it started, then runs either the command in
 * /tracevisor/cmd (arguments each followed by a NUL byte, appended to the
 * initramfs by the VMM) or, without that file, an interactive login shell on
 * the console. It reaps every child until that one ends, reports its exit
 * status on the debug page and powers the machine off.
 *
 * Guest kernel mode may be emulated at about 1.5 M instructions/s, where each
 * system call, page fault and fork costs dearly. Hence C rather than a shell
 * script, no stdio, one process besides init, vfork() (no page tables to copy
 * and no copy-on-write faults), and silence on success: only errors are
 * printed, one line each, prefixed "init: ".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracevisor_debug.h"

#define CMD_FILE "/tracevisor/cmd"
#define CMD_MAX_BYTES (4 << 20)
#define SHELL "/bin/sh"
#define BUSYBOX "/bin/busybox" /* runs bare command names PATH lacks */
#define CONSOLE "/dev/console"
#define ACTIVE_CONSOLES "/sys/class/tty/console/active"

/* The status reported when the command could not be started at all. */
#define STATUS_NOT_RUN 127

/* The kernel passes init at most 32 environment strings (MAX_INIT_ENVS). */
#define MAX_ENV 48

extern char **environ;

/* The debug page, or NULL when the VMM offers none. */
static volatile uint32_t *debug_page;

/* say writes "init: ", its arguments up to a NULL, and a newline to stderr. */
static void say(const char *first, ...)
{
	struct iovec iov[12];
	int n = 0;
	va_list ap;

	iov[n++] = (struct iovec){ .iov_base = "init: ", .iov_len = 6 };
	va_start(ap, first);
	for (const char *s = first; s != NULL && n < 11; s = va_arg(ap, const char *))
		iov[n++] = (struct iovec){ .iov_base = (void *)s, .iov_len = strlen(s) };
	va_end(ap);
	iov[n++] = (struct iovec){ .iov_base = "\n", .iov_len = 1 };
	while (writev(STDERR_FILENO, iov, n) < 0 && errno == EINTR)
		;
}

/* hex32 formats v as "0x" and 8 hex digits into buf, and returns buf. */
static char *hex32(char buf[11], uint32_t v)
{
	buf[0] = '0';
	buf[1] = 'x';
	for (int i = 0; i < 8; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xf];
	buf[10] = '\0';
	return buf;
}

static void debug_write(unsigned int reg, uint32_t value)
{
	if (debug_page != NULL)
		debug_page[reg / sizeof(uint32_t)] = value;
}

/*
 * map_debug_page maps the VMM's debug page through /dev/mem. On failure it
 * leaves debug_page NULL and returns what went wrong in *what and *err (0
 * for a magic mismatch, with the value read in *magic) for the caller to
 * print once stderr is sure to exist.
 */
static void map_debug_page(const char **what, int *err, uint32_t *magic)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);
	void *p;

	if (fd < 0) {
		*what = "open /dev/mem";
		*err = errno;
		return;
	}
	p = mmap(NULL, TV_DEBUG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)TV_DEBUG_BASE);
	*err = errno;
	close(fd);
	if (p == MAP_FAILED) {
		*what = "mmap /dev/mem";
		return;
	}
	*magic = ((volatile uint32_t *)p)[TV_DEBUG_REG_MAGIC / sizeof(uint32_t)];
	if (*magic != TV_DEBUG_MAGIC_VALUE) {
		munmap(p, TV_DEBUG_SIZE);
		*what = "magic";
		*err = 0;
		return;
	}
	debug_page = p;
	*what = NULL;
}

static void report_debug_page(const char *what, int err, uint32_t magic)
{
	char base[11], value[11];

	if (what == NULL)
		return;
	hex32(base, (uint32_t)TV_DEBUG_BASE);
	if (err == 0)
		say("no tracevisor debug page at ", base, " (read magic ", hex32(value, magic),
		    "): boot time and exit status go unreported", NULL);
	else
		say("no tracevisor debug page at ", base, " (", what, ": ", strerror(err),
		    "): boot time and exit status go unreported", NULL);
}

/*
 * mount_fs mounts a file system of the given type on dir, creating dir if the
 * initramfs lacks it. EBUSY (already mounted) is not an error.
 */
static void mount_fs(const char *type, const char *dir, unsigned long flags, const char *data)
{
	if (mount(type, dir, type, flags, data) == 0 || errno == EBUSY)
		return;
	if (errno == ENOENT && mkdir(dir, 0755) == 0 &&
	    (mount(type, dir, type, flags, data) == 0 || errno == EBUSY))
		return;
	say("mount ", type, " on ", dir, ": ", strerror(errno), NULL);
}

/*
 * ensure_stdio gives fds 0 to 2 to the console (or /dev/null) should the
 * kernel have found no /dev/console to open for init.
 */
static void ensure_stdio(void)
{
	if (fcntl(STDERR_FILENO, F_GETFD) >= 0)
		return;
	for (int fd = 0; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		/* open returns the lowest free fd: this one. */
		if (open(CONSOLE, O_RDWR | O_NOCTTY) < 0 && open("/dev/null", O_RDWR) < 0)
			return;
	}
}

/* has_name reports whether the environment string e sets the variable name. */
static int has_name(const char *e, const char *name)
{
	size_t n = strlen(name);

	return strncmp(e, name, n) == 0 && e[n] == '=';
}

/*
 * set_environment fixes PATH, HOME and TERM and keeps the other variables the
 * kernel passed (those from its command line).
 */
static void set_environment(void)
{
	static char path[] = "PATH=/bin:/sbin:/usr/bin:/usr/sbin";
	static char home[] = "HOME=/root";
	static char term[] = "TERM=linux";
	static char *env[MAX_ENV + 1];
	size_t n = 0;

	env[n++] = path;
	env[n++] = home;
	env[n++] = term;
	for (char **e = environ; e != NULL && *e != NULL && n < MAX_ENV; e++)
		if (!has_name(*e, "PATH") && !has_name(*e, "HOME") && !has_name(*e, "TERM"))
			env[n++] = *e;
	env[n] = NULL;
	environ = env;
}

/*
 * read_command loads CMD_FILE into a NULL-terminated argv. It returns 1 with
 * *argvp set, 0 when there is no such file, and -1 (after saying why) when
 * the file cannot be used.
 */
static int read_command(char ***argvp)
{
	int fd = open(CMD_FILE, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t size, got = 0, argc = 0;
	char *buf, **argv, *p;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		say("open " CMD_FILE ": ", strerror(errno), NULL);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		say("stat " CMD_FILE ": ", strerror(errno), NULL);
		close(fd);
		return -1;
	}
	if (st.st_size <= 0 || st.st_size > CMD_MAX_BYTES) {
		say(CMD_FILE ": ", st.st_size <= 0 ? "empty" : "larger than 4 MiB",
		    ": want the command's arguments, each followed by a NUL byte", NULL);
		close(fd);
		return -1;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (buf == NULL) {
		say("reading " CMD_FILE ": out of memory", NULL);
		close(fd);
		return -1;
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say("read " CMD_FILE ": ", strerror(errno), NULL);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0'; /* ends an argument whose NUL is missing */

	for (size_t i = 0; i < got; i++)
		argc += buf[i] == '\0';
	if (got > 0 && buf[got - 1] != '\0')
		argc++;
	if (argc == 0 || buf[0] == '\0') {
		say(CMD_FILE ": the command name (first argument) is empty", NULL);
		return -1;
	}
	argv = malloc((argc + 1) * sizeof(*argv));
	if (argv == NULL) {
		say("reading " CMD_FILE ": out of memory", NULL);
		return -1;
	}
	p = buf;
	for (size_t i = 0; i < argc; i++) {
		argv[i] = p;
		p += strlen(p) + 1;
	}
	argv[argc] = NULL;
	*argvp = argv;
	return 1;
}

/*
 * console_tty writes into out (size n) the device of the console the kernel
 * writes to: the last name in ACTIVE_CONSOLES, such as "/dev/ttyS0", or
 * CONSOLE when that cannot be read.
 */
static void console_tty(char *out, size_t n)
{
	char buf[256];
	int fd = open(ACTIVE_CONSOLES, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	size_t start, end;

	if (fd >= 0)
		close(fd);
	strcpy(out, CONSOLE);
	if (len <= 0)
		return;
	end = (size_t)len;
	while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && buf[start - 1] != ' ' && buf[start - 1] != '\n')
		start--;
	if (start == end || end - start + sizeof("/dev/") > n)
		return;
	for (size_t i = start; i < end; i++) {
		char c = buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return; /* not a plain device name: stay on CONSOLE */
	}
	memcpy(out, "/dev/", 5);
	memcpy(out + 5, buf + start, end - start);
	out[5 + end - start] = '\0';
}

/* What the child of spawn() runs. */
struct job {
	const char *path;  /* program; searched in PATH when search is set */
	char *const *argv;
	int search;
	const char *tty;   /* terminal to open as fds 0-2, or NULL to keep them */
};

/*
 * run_job is the child's side of spawn(): a new session with the console as
 * its controlling terminal, then the program. It runs in a vfork() child, on
 * the parent's memory: it changes no variable and leaves only by exec or
 * _exit.
 */
static void __attribute__((noreturn)) run_job(const struct job *j)
{
	setsid();
	if (j->tty != NULL) {
		int fd = open(j->tty, O_RDWR);

		if (fd < 0) {
			say("open ", j->tty, ": ", strerror(errno), "; keeping " CONSOLE, NULL);
		} else {
			for (int i = 0; i <= STDERR_FILENO; i++)
				if (fd != i)
					dup2(fd, i);
			if (fd > STDERR_FILENO)
				close(fd);
		}
	}
	/* Best effort: a command runs as well without a controlling terminal. */
	ioctl(STDIN_FILENO, TIOCSCTTY, 0);
	if (j->search) {
		execvp(j->path, j->argv);
		/*
		 * The initramfs links only bin/sh to busybox: a bare name found
		 * nowhere on PATH is run as a busybox applet (busybox picks the
		 * applet by argv[0], and says so when it has none of that name).
		 */
		if (errno == ENOENT && !strchr(j->path, '/'))
			execv(BUSYBOX, j->argv);
	} else {
		execv(j->path, j->argv);
	}
	say("exec ", j->path, ": ", strerror(errno), NULL);
	_exit(STATUS_NOT_RUN);
}

/* spawn starts j in a child and returns its pid, or -1 after saying why. */
static pid_t spawn(const struct job *j)
{
	pid_t pid = vfork();

	if (pid == 0)
		run_job(j);
	if (pid < 0)
		say("vfork: ", strerror(errno), NULL);
	return pid;
}

/*
 * Busybox's halt, poweroff and reboot (without -f) ask PID 1 by signal:
 * SIGUSR1, SIGUSR2 and SIGTERM. The handler only records the request.
 */
static volatile sig_atomic_t power_request;

static void on_power_signal(int sig)
{
	power_request = sig;
}

static void catch_power_signals(void)
{
	struct sigaction sa = { .sa_handler = on_power_signal };
	int sigs[] = { SIGUSR1, SIGUSR2, SIGTERM };

	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void __attribute__((noreturn)) power_off(int status);
static void __attribute__((noreturn)) restart(void);

/*
 * wait_for reaps children, orphans included, until pid ends, and returns its
 * status: the exit code, or 128+N when signal N killed it. A power signal
 * ends the wait and acts on it.
 */
static int wait_for(pid_t pid)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (power_request == SIGTERM)
			restart();
		if (power_request)
			power_off(0);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			say("waitpid: ", strerror(errno), NULL);
			return STATUS_NOT_RUN;
		}
		if (p != pid)
			continue;
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
	}
}

/*
 * quiet_console stops kernel messages on the console, so the kernel's own
 * "reboot: System halted" does not trail the command's output.
 */
static void quiet_console(void)
{
	int fd = open("/proc/sys/kernel/printk", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "0\n", 2) < 0)
			say("printk: ", strerror(errno), NULL);
		close(fd);
	}
}

/*
 * power_off flushes file systems, reports status to the VMM and stops the
 * machine; PID 1 never exits.
 */
static void __attribute__((noreturn)) power_off(int status)
{
	sync();
	debug_write(TV_DEBUG_REG_EXIT_STATUS, (uint32_t)status);
	quiet_console();
	reboot(RB_POWER_OFF);
	say("reboot: ", strerror(errno), NULL);
	for (;;)
		pause();
}

/* restart flushes file systems and resets the machine. */
static void __attribute__((noreturn)) restart(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	say("reboot: ", strerror(errno), NULL);
	for (;;)
		pause();
}

int main(void)
{
	const char *debug_what;
	int debug_err;
	uint32_t magic = 0;
	char **argv = NULL;
	char tty[64];
	struct job job;
	pid_t pid;

	catch_power_signals();
	mount_fs("devtmpfs", "/dev", MS_NOSUID, NULL);
	map_debug_page(&debug_what, &debug_err, &magic);
	debug_write(TV_DEBUG_REG_EVENT, TV_DEBUG_EVENT_INIT_START);
	ensure_stdio();
	report_debug_page(debug_what, debug_err, magic);

	mount_fs("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_fs("tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755");
	set_environment();

	switch (read_command(&argv)) {
	case 1:
		job = (struct job){ .path = argv[0], .argv = argv, .search = 1, .tty = NULL };
		debug_write(TV_DEBUG_REG_EVENT, TV_DEBUG_EVENT_CMD_START);
		break;
	case 0: {
		static char *shell_argv[] = { "-sh", NULL }; /* "-": a login shell */

		console_tty(tty, sizeof(tty));
		job = (struct job){ .path = SHELL, .argv = shell_argv, .search = 0, .tty = tty };
		break;
	}
	default:
		power_off(STATUS_NOT_RUN);
	}

	pid = spawn(&job);
	power_off(pid < 0 ? STATUS_NOT_RUN : wait_for(pid));
}
