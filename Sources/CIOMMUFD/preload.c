/*
 * libIOMMUFDPreload.so: run an unmodified C program against IOMMUKit.
 *
 *   LD_PRELOAD=libIOMMUFDPreload.so IOMMUKIT_SOCKET=/tmp/iommukitd.sock ./prog
 *
 * open("/dev/iommu") returns a real fd: one end of an AF_UNIX SOCK_SEQPACKET
 * connection to iommukitd, which plays the kernel. The kernel's own reference counting
 * of that socket gives dup/fork/close/exit their usual meaning: the service sees the
 * hang-up when the last reference goes, as a file's release runs. ioctl, read, write
 * and poll on such fds are forwarded as (cmd, pointer); the service reads and writes
 * the caller's memory itself. Every other fd passes through untouched.
 *
 * This file holds no iommufd semantics: errno values, sizes and records all come from
 * the service. What it does emulate is the host side: fail-nth and debugfs fault
 * injection files (forwarded to the service's knobs) and MAP_HUGETLB on a host without
 * huge pages (served with normal, huge-aligned pages the service mirrors as huge).
 *
 * Environment: IOMMUKIT_SOCKET (default /tmp/iommukitd-<uid>.sock); IOMMUKIT_DAEMON
 * (path of iommukitd, started on first open when nothing listens); IOMMUKIT_IDLE_EXIT
 * (seconds, default 30) and IOMMUKIT_LOG for a service the shim starts;
 * IOMMUKIT_VFIO_CONTAINER=1 to serve /dev/vfio/vfio too; IOMMUKIT_HUGETLB_FALLBACK=0
 * to keep MAP_HUGETLB failures.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iommukit_wire.h"

/* What a tracked fd is. */
enum { K_NONE, K_IOMMUFD, K_FAULT, K_ACCESS, K_FAILNTH, K_KNOB, K_VEVENTQ };

#define MAX_FD 4096
/* Tracked fds; st_ino guards against numbers reused behind our back (close_range…). */
static struct { unsigned char kind; ino_t ino; } tab[MAX_FD];

#define REAL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static ino_t ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void track(int fd, int kind)
{
	if (fd >= 0 && fd < MAX_FD) {
		tab[fd].ino = ino_of(fd);
		tab[fd].kind = (unsigned char)kind;
	}
}

static void untrack(int fd)
{
	if (fd >= 0 && fd < MAX_FD)
		tab[fd].kind = K_NONE;
}

/* The kind of a tracked fd, K_NONE for every other fd (one array read for those). */
static int kind_of(int fd)
{
	if (fd < 0 || fd >= MAX_FD || tab[fd].kind == K_NONE)
		return K_NONE;
	if (ino_of(fd) != tab[fd].ino) {
		untrack(fd);
		return K_NONE;
	}
	return tab[fd].kind;
}

static const char *socket_path(void)
{
	static char def[64];
	const char *p = getenv("IOMMUKIT_SOCKET");
	if (p && *p)
		return p;
	snprintf(def, sizeof(def), "/tmp/iommukitd-%u.sock", (unsigned)getuid());
	return def;
}

static int try_connect(const char *path, int cloexec)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -1;
	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	REAL(int, close, int);
	real_close(fd);
	return -1;
}

/* Starts iommukitd in its own session (setsid, double fork: not our child, not in our
 * process group), with no fd of ours and without this shim preloaded. */
static void start_daemon(const char *path)
{
	const char *bin = getenv("IOMMUKIT_DAEMON");
	if (!bin || !*bin)
		return;
	pid_t p = fork();
	if (p == 0) {
		char logbuf[256];
		const char *log = getenv("IOMMUKIT_LOG");
		const char *idle = getenv("IOMMUKIT_IDLE_EXIT");
		setsid();
		if (fork() != 0)
			_exit(0);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
		if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
			for (int i = 3; i < 65536; i++)
				close(i);
		unsetenv("LD_PRELOAD");
		if (!log || !*log) {
			snprintf(logbuf, sizeof(logbuf), "%s.log", path);
			log = logbuf;
		}
		execl(bin, bin, "--socket", path, "--idle-exit", idle && *idle ? idle : "30", "--log", log,
		      (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

/* A new connection to the service, starting it if allowed; -1 with ENOENT (as for a
 * missing /dev/iommu) when it cannot be reached. */
static int connect_service(int cloexec)
{
	const char *path = socket_path();
	int fd = try_connect(path, cloexec);
	if (fd < 0 && getenv("IOMMUKIT_DAEMON")) {
		start_daemon(path);
		for (int i = 0; i < 1000 && fd < 0; i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			fd = try_connect(path, cloexec);
		}
	}
	if (fd < 0) {
		errno = ENOENT;
		return -1;
	}
	/* With Yama ptrace_scope=1 the service needs our leave to reach our memory. */
	struct ucred cr;
	socklen_t l = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0)
		prctl(PR_SET_PTRACER, (unsigned long)cr.pid, 0, 0, 0);
	return fd;
}

/*
 * Replies never cross (see iommukit_wire.h, "Reply channels"). Each thread of each
 * process has its own reply channel: one end of a socketpair whose other end went to
 * the service with the thread's first request. Requests still travel on the shared
 * connection (it is the open file: its identity and its lifetime), but every reply and
 * INSTALL upcall for them comes back on the requesting thread's channel, which no other
 * thread or process can read. After fork the child sees a pid that is not the channel's
 * and makes its own; a thread's channel is closed when the thread exits.
 */
static pthread_key_t chan_key;
static __thread struct { pid_t pid; int fd; ino_t ino; } chan = { 0, -1, 0 };

static void chan_drop(void)
{
	REAL(int, close, int);
	/* In a forked child this is the child's own copy of the parent's channel. */
	if (chan.fd >= 0 && ino_of(chan.fd) == chan.ino)
		real_close(chan.fd);
	chan.fd = -1, chan.pid = 0;
}

static void chan_thread_exit(void *unused)
{
	(void)unused;
	chan_drop();
}

/* Sends rq on the connection, with a new reply channel attached (SCM_RIGHTS) when this
 * thread has no live one. Returns the fd to read the reply from: the channel. */
static int send_request(int fd, struct ikd_request *rq)
{
	pid_t me = rq->pid;
	int pair[2] = { -1, -1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
	struct iovec iov = { rq, sizeof(*rq) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	REAL(int, close, int);

	if (chan.fd < 0 || chan.pid != me || ino_of(chan.fd) != chan.ino) {
		chan_drop();
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
			return -1;
		memset(&c, 0, sizeof(c));
		m.msg_control = c.buf, m.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pair[1], sizeof(int));
	}
	ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
	if (pair[1] >= 0) {
		real_close(pair[1]);
		if (n != sizeof(*rq)) {
			real_close(pair[0]);
			return -1;
		}
		chan.fd = pair[0], chan.pid = me, chan.ino = ino_of(pair[0]);
		pthread_setspecific(chan_key, (void *)1); /* arms chan_thread_exit */
	}
	return n == sizeof(*rq) ? chan.fd : -1;
}

/* How long a caller polls for its reply before sleeping in recvmsg. A reply usually
 * comes back in a few microseconds, but a thread that sleeps waits for a wake-up that
 * costs ~50 µs on these machines when the other core has gone idle (measured: the
 * IOVA_RANGES round trip is 70 µs idle, 19 µs with the service's core kept awake).
 * Polling briefly keeps back-to-back ioctls in the fast case; a slow request (a big
 * map) still ends up sleeping, so an idle program costs nothing. */
#define IKD_REPLY_SPIN_NS 50000

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* recvmsg on the reply channel: a short non-blocking poll first (see above). */
static ssize_t recv_reply(int rx, struct msghdr *m)
{
	uint64_t deadline = mono_ns() + IKD_REPLY_SPIN_NS;
	ssize_t n;

	do {
		n = recvmsg(rx, m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return n;
	} while (mono_ns() < deadline);
	do
		n = recvmsg(rx, m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	return n;
}

/* One request and its reply; answers INSTALL upcalls on the way. Returns the reply's
 * ret, or -1 with errno. */
static long ikd_call(int fd, uint32_t op, uint32_t cmd, uint64_t arg, uint64_t len)
{
	struct ikd_request rq = { op, getpid(), (int32_t)gettid(), cmd, arg, len };
	struct ikd_reply rp;
	int rx = send_request(fd, &rq);

	if (rx < 0) {
		errno = EIO;
		return -1;
	}
	for (;;) {
		union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
		struct iovec iov = { &rp, sizeof(rp) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
				    .msg_controllen = sizeof(c.buf) };
		ssize_t n = recv_reply(rx, &m);
		if (n == 0 && rx != fd) {
			/* The channel's peer is gone (a service that restarted never got it):
			 * that service answers on the connection itself. Make a new one next time. */
			chan_drop();
			rx = fd;
			continue;
		}
		if (n != sizeof(rp)) {
			errno = EIO;
			return -1;
		}
		if (rp.kind == IKD_MSG_INSTALL) {
			/* fd_install in our table; the number goes back into the out-field. */
			struct cmsghdr *h = CMSG_FIRSTHDR(&m);
			int nfd = -EMFILE;
			if (h && h->cmsg_type == SCM_RIGHTS) {
				memcpy(&nfd, CMSG_DATA(h), sizeof(int));
				track(nfd, rp.ret == IKD_FILE_FAULT ? K_FAULT : rp.ret == IKD_FILE_VEVENTQ ? K_VEVENTQ : K_ACCESS);
			}
			struct ikd_request ans = { IKD_OP_FD_INSTALLED, rq.pid, rq.tid, 0, (uint64_t)(int64_t)nfd, 0 };
			if (send(rx, &ans, sizeof(ans), MSG_NOSIGNAL) != sizeof(ans)) {
				errno = EIO;
				return -1;
			}
			continue;
		}
		for (uint32_t i = 0; i < rp.nclose && i < 4; i++) {
			REAL(int, close, int);
			untrack(rp.close_fds[i]);
			real_close(rp.close_fds[i]);
		}
		if (rp.err) {
			errno = rp.err;
			return -1;
		}
		return (long)rp.ret;
	}
}

__attribute__((constructor)) static void init(void)
{
	pthread_key_create(&chan_key, chan_thread_exit);
}

/* The pid whose /proc/<pid>/status `path` is (self included), 0 for any other path. */
static pid_t status_pid(const char *path)
{
	if (!strcmp(path, "/proc/self/status"))
		return getpid();
	if (strncmp(path, "/proc/", 6) != 0)
		return 0;
	char *end;
	long pid = strtol(path + 6, &end, 10);
	return end != path + 6 && pid > 0 && !strcmp(end, "/status") ? (pid_t)pid : 0;
}

/* Rewrites the "Name:<tab>N kB" line of `text` to N + add_kb (the kernel's "%8lu kB"). */
static void add_kb(char *text, size_t cap, const char *name, unsigned long add)
{
	char *line = strstr(text, name);
	if (!line || !add)
		return;
	char *eol = strchr(line, '\n');
	char *rest = eol ? strdup(eol) : strdup("");
	unsigned long kb = strtoul(line + strlen(name), NULL, 10);
	if (!rest)
		return;
	snprintf(line, cap - (size_t)(line - text), "%s\t%8lu kB%s", name, kb + add, rest);
	free(rest);
}

/*
 * /proc/<pid>/status as the kernel shows it with the model's pins: the real file, with
 * the model's VmPin (mm->pinned_vm) and VmLck (mm->locked_vm) of that mm added, in a
 * memfd the caller reads like the real file. -2 when the service is not running or does
 * not know the pid (the real file is opened then). Never starts the service.
 */
static int open_status(const char *path, pid_t pid, int flags)
{
	REAL(int, open, const char *, int, ...);
	REAL(int, close, int);
	REAL(ssize_t, read, int, void *, size_t);
	REAL(ssize_t, write, int, const void *, size_t);
	static char text[16384];
	static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
	int conn = try_connect(socket_path(), 1);
	if (conn < 0)
		return -2;
	long v = ikd_call(conn, IKD_OP_OPEN, IKD_OPEN_VM_STATUS, 0, (uint64_t)pid);
	real_close(conn);
	if (v < 0 || (flags & O_ACCMODE) != O_RDONLY)
		return -2;
	int src = real_open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -1;
	pthread_mutex_lock(&text_lock);
	ssize_t n, len = 0;
	while (len < (ssize_t)sizeof(text) - 256 && (n = real_read(src, text + len, sizeof(text) - 256 - (size_t)len)) > 0)
		len += n;
	real_close(src);
	text[len] = 0;
	add_kb(text, sizeof(text), "VmLck:", ((unsigned long)v >> 32) * 4);
	add_kb(text, sizeof(text), "VmPin:", ((unsigned long)v & 0xffffffffu) * 4);
	int fd = memfd_create("status", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd >= 0 && (real_write(fd, text, strlen(text)) != (ssize_t)strlen(text) || lseek(fd, 0, SEEK_SET) != 0)) {
		real_close(fd);
		fd = -1;
	}
	pthread_mutex_unlock(&text_lock);
	return fd;
}

/* The fd for a path the service plays, -2 for any other path. */
static int open_special(const char *path, int flags)
{
	int kind, cloexec = !!(flags & O_CLOEXEC), tid = 0, fd;
	uint32_t what;
	uint64_t arg = 0, len = 0;

	if (!path || path[0] != '/')
		return -2;
	pid_t spid = status_pid(path);
	if (spid)
		return open_status(path, spid, flags);
	if (!strcmp(path, "/dev/iommu")) {
		kind = K_IOMMUFD, what = IKD_OPEN_IOMMU;
	} else if (!strcmp(path, "/dev/vfio/vfio") && getenv("IOMMUKIT_VFIO_CONTAINER") &&
		   !strcmp(getenv("IOMMUKIT_VFIO_CONTAINER"), "1")) {
		kind = K_IOMMUFD, what = IKD_OPEN_VFIO;
	} else if (!strcmp(path, "/proc/thread-self/fail-nth")) {
		kind = K_FAILNTH, what = IKD_OPEN_FAIL_NTH, tid = gettid();
	} else if (!strncmp(path, "/proc/", 6) && strstr(path, "/task/") &&
		   strlen(path) > 9 && !strcmp(path + strlen(path) - 9, "/fail-nth")) {
		kind = K_FAILNTH, what = IKD_OPEN_FAIL_NTH, tid = atoi(strstr(path, "/task/") + 6);
	} else if (!strncmp(path, "/sys/kernel/debug/fail", 22)) {
		kind = K_KNOB, what = IKD_OPEN_DEBUGFS_KNOB, arg = (uintptr_t)path, len = strlen(path);
	} else {
		return -2;
	}
	if (what == IKD_OPEN_FAIL_NTH)
		len = (uint64_t)tid;
	fd = connect_service(cloexec);
	if (fd < 0)
		return -1;
	if (ikd_call(fd, IKD_OP_OPEN, what, arg, len) < 0) {
		int e = errno;
		REAL(int, close, int);
		real_close(fd);
		errno = e;
		return -1;
	}
	track(fd, kind);
	return fd;
}

#define OPEN_WRAPPER(name, ...) \
	int name(__VA_ARGS__ const char *path, int flags, ...) \
	{ \
		mode_t mode = 0; \
		if (flags & (O_CREAT | O_TMPFILE)) { \
			va_list ap; \
			va_start(ap, flags); \
			mode = va_arg(ap, mode_t); \
			va_end(ap); \
		}
OPEN_WRAPPER(open)
	int fd = open_special(path, flags);
	REAL(int, open, const char *, int, ...);
	return fd != -2 ? fd : real_open(path, flags, mode);
}
OPEN_WRAPPER(open64)
	int fd = open_special(path, flags);
	REAL(int, open64, const char *, int, ...);
	return fd != -2 ? fd : real_open64(path, flags, mode);
}
OPEN_WRAPPER(openat, int dirfd,)
	int fd = open_special(path, flags);
	REAL(int, openat, int, const char *, int, ...);
	return fd != -2 ? fd : real_openat(dirfd, path, flags, mode);
}
OPEN_WRAPPER(openat64, int dirfd,)
	int fd = open_special(path, flags);
	REAL(int, openat64, int, const char *, int, ...);
	return fd != -2 ? fd : real_openat64(dirfd, path, flags, mode);
}

/* fopen of /proc/<pid>/status (the selftest reads VmPin this way). Only that: stdio
 * reads with glibc's internal read, which never reaches the shim's read. */
static FILE *fopen_special(const char *path, const char *mode, FILE *(*real)(const char *, const char *))
{
	if (!path || !mode || mode[0] != 'r' || strchr(mode, '+') || !status_pid(path))
		return real(path, mode);
	int fd = open_status(path, status_pid(path), O_RDONLY | (strchr(mode, 'e') ? O_CLOEXEC : 0));
	if (fd == -2)
		return real(path, mode);
	return fd < 0 ? NULL : fdopen(fd, mode);
}

FILE *fopen(const char *path, const char *mode)
{
	REAL(FILE *, fopen, const char *, const char *);
	return fopen_special(path, mode, real_fopen);
}

FILE *fopen64(const char *path, const char *mode)
{
	REAL(FILE *, fopen64, const char *, const char *);
	return fopen_special(path, mode, real_fopen64);
}

/* _FORTIFY_SOURCE builds call these for open without O_CREAT. */
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }

/* An fd inherited across exec: ours if it is a socket connected to the service. */
static int adopt(int fd)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(fd, (struct sockaddr *)&a, &l) != 0 || a.sun_family != AF_UNIX ||
	    strcmp(a.sun_path, socket_path()) != 0)
		return 0;
	track(fd, K_IOMMUFD);
	return 1;
}

int ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int k = kind_of(fd);
	if (k == K_IOMMUFD || (k == K_NONE && ((cmd >> 8) & 0xff) == ';' && adopt(fd)))
		return (int)ikd_call(fd, IKD_OP_IOCTL, (uint32_t)cmd, (uintptr_t)arg, 0);
	REAL(int, ioctl, int, unsigned long, ...);
	return real_ioctl(fd, cmd, arg);
}

static int forwards_rw(int k)
{
	return k == K_FAULT || k == K_ACCESS || k == K_VEVENTQ || k == K_FAILNTH || k == K_KNOB;
}

ssize_t read(int fd, void *buf, size_t count)
{
	if (forwards_rw(kind_of(fd)))
		return ikd_call(fd, IKD_OP_READ, 0, (uintptr_t)buf, count);
	REAL(ssize_t, read, int, void *, size_t);
	return real_read(fd, buf, count);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	if (forwards_rw(kind_of(fd)))
		return ikd_call(fd, IKD_OP_WRITE, 0, (uintptr_t)buf, count);
	REAL(ssize_t, write, int, const void *, size_t);
	return real_write(fd, buf, count);
}

/* Positional I/O: these files have no position; a non-zero offset is ESPIPE. */
static ssize_t prw(int fd, void *buf, size_t count, off_t off, int op)
{
	if (off != 0) {
		errno = ESPIPE;
		return -1;
	}
	return ikd_call(fd, op, 0, (uintptr_t)buf, count);
}

ssize_t pread(int fd, void *buf, size_t count, off_t off)
{
	if (forwards_rw(kind_of(fd)))
		return prw(fd, buf, count, off, IKD_OP_READ);
	REAL(ssize_t, pread, int, void *, size_t, off_t);
	return real_pread(fd, buf, count, off);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	if (forwards_rw(kind_of(fd)))
		return prw(fd, (void *)buf, count, off, IKD_OP_WRITE);
	REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
	return real_pwrite(fd, buf, count, off);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t off) { return pread(fd, buf, count, off); }
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) { return pwrite(fd, buf, count, off); }

off_t lseek(int fd, off_t off, int whence)
{
	int k = kind_of(fd);
	if (k == K_FAILNTH || k == K_KNOB)
		return 0; /* single-value attributes: every read returns the whole value */
	REAL(off_t, lseek, int, off_t, int);
	return real_lseek(fd, off, whence);
}
off_t lseek64(int fd, off_t off, int whence) { return lseek(fd, off, whence); }

/* Event queues (fault queues, vEVENTQs) are polled by the service. */
static int polled_by_service(int fd) { return kind_of(fd) == K_FAULT || kind_of(fd) == K_VEVENTQ; }

/* poll: event-queue fds report the service's mask (iommufd_fault_fops_poll, the
 * vEVENTQ's alike); other fds are polled for real. While nothing is ready, both are
 * re-checked every millisecond. */
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	REAL(int, poll, struct pollfd *, nfds_t, int);
	nfds_t i;
	for (i = 0; i < n && !polled_by_service(fds[i].fd); i++)
		;
	if (i == n)
		return real_poll(fds, n, timeout);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int ready = 0;
		for (i = 0; i < n; i++) {
			if (!polled_by_service(fds[i].fd)) {
				short ev = fds[i].events;
				int fd = fds[i].fd;
				struct pollfd one = { fd, ev, 0 };
				if (fd >= 0 && real_poll(&one, 1, 0) < 0)
					return -1;
				fds[i].revents = fd >= 0 ? one.revents : 0;
			} else {
				long m = ikd_call(fds[i].fd, IKD_OP_POLL, 0, 0, 0);
				fds[i].revents = m < 0 ? POLLERR : (short)(m & (fds[i].events | POLLERR | POLLHUP));
			}
			ready += fds[i].revents != 0;
		}
		if (ready || timeout == 0)
			return ready;
		struct timespec now, ms = { 0, 1000 * 1000 };
		clock_gettime(CLOCK_MONOTONIC, &now);
		long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (timeout > 0 && el >= timeout)
			return 0;
		nanosleep(&ms, NULL);
	}
}

int close(int fd)
{
	REAL(int, close, int);
	untrack(fd);
	return real_close(fd);
}

/* dup family: the copy is the same open file, so it stays ours. */
static int dup_result(int old, int new)
{
	if (new >= 0 && old != new) {
		int k = kind_of(old);
		untrack(new);
		if (k != K_NONE)
			track(new, k);
	}
	return new;
}

int dup(int old)
{
	REAL(int, dup, int);
	return dup_result(old, real_dup(old));
}

int dup2(int old, int new)
{
	REAL(int, dup2, int, int);
	return dup_result(old, real_dup2(old, new));
}

int dup3(int old, int new, int flags)
{
	REAL(int, dup3, int, int, int);
	return dup_result(old, real_dup3(old, new, flags));
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	REAL(int, fcntl, int, int, ...);
	int r = real_fcntl(fd, cmd, arg);
	return (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) ? dup_result(fd, r) : r;
}
int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}

/* mmap of an iommufd (iommufd_fops_mmap): the regions a vIOMMU offers. The shim maps a
 * memfd of its own ("iommukit-iommufd-mmap"), shared, where the mapping goes; the
 * service maps the region at that address in the model, which gives every errno, and
 * copies the region's bytes into the memfd (Sources/iommukitd/ContextMappings.swift:
 * later writes on either side are not carried over). The mapping keeps a descriptor of
 * the iommufd's connection, as a VMA holds its file: munmap of any part of it is told to
 * the service on it, which unmaps the model's piece (dropping its references on the
 * vIOMMU and the context) and says when nothing is left; then the descriptor goes.
 *
 * MAP_HUGETLB on a host with no huge pages: normal pages, aligned to the huge size.
 * An anonymous request is served from a memfd named "iommukit-hugetlb-<log2 size>",
 * mapped private or shared as asked (the kernel, too, backs anonymous hugetlb memory
 * with an unlinked hugetlbfs file). The name is how the service learns, from
 * /proc/<pid>/maps, that these pages stand for huge pages and must be physically
 * contiguous in the model (Sources/iommukitd/Client.swift, "Huge pages"); the kernel
 * keeps it right across munmap, mremap and fork, so the shim tracks nothing. */
#define MAX_IOMMUFD_MAPS 64
static struct iommufd_map { uintptr_t start, end; int conn; } iommufd_maps[MAX_IOMMUFD_MAPS];
static int n_iommufd_maps;
static pthread_mutex_t iommufd_maps_lock = PTHREAD_MUTEX_INITIALIZER;

static void *iommufd_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(void *, mmap, void *, size_t, int, int, int, off_t);
	REAL(int, munmap, void *, size_t);
	REAL(int, close, int);
	int mfd = memfd_create("iommukit-iommufd-mmap", MFD_CLOEXEC);
	if (mfd < 0)
		return MAP_FAILED;
	/* The kernel's own checks of the call (length, alignment) come first, here too. */
	void *p = MAP_FAILED;
	if (ftruncate(mfd, (off_t)len) == 0)
		p = real_mmap(addr, len, prot, (flags & ~(MAP_ANONYMOUS | MAP_PRIVATE)) | MAP_SHARED, mfd, 0);
	else
		errno = ENOMEM; /* a length no mmap could map */
	if (p == MAP_FAILED) {
		int err = errno;
		real_close(mfd);
		return errno = err, MAP_FAILED;
	}
	struct ikd_mmap m = { (uintptr_t)p, len, (uint64_t)off, mfd, (uint32_t)prot, (uint32_t)flags, 0 };
	long r = ikd_call(fd, IKD_OP_MMAP, 0, (uintptr_t)&m, sizeof(m));
	int err = errno;
	real_close(mfd);
	/* Out of the way of the numbers the program expects open() to give. */
	int conn = r < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 512);
	if (r >= 0 && conn < 0)
		conn = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_lock(&iommufd_maps_lock);
	if (conn >= 0 && n_iommufd_maps < MAX_IOMMUFD_MAPS) {
		iommufd_maps[n_iommufd_maps] = (struct iommufd_map){ (uintptr_t)p, (uintptr_t)p + len, conn };
		__atomic_store_n(&n_iommufd_maps, n_iommufd_maps + 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&iommufd_maps_lock);
		return p;
	}
	pthread_mutex_unlock(&iommufd_maps_lock);
	/* Failed, or no room to remember it: as if never mapped. */
	if (r >= 0) {
		ikd_call(fd, IKD_OP_MUNMAP, 0, (uintptr_t)p, len);
		err = ENOMEM;
	}
	if (conn >= 0)
		real_close(conn);
	real_munmap(p, len);
	return errno = err, MAP_FAILED;
}

int munmap(void *addr, size_t len)
{
	REAL(int, munmap, void *, size_t);
	REAL(int, close, int);
	int rc = real_munmap(addr, len);
	if (rc != 0 || !__atomic_load_n(&n_iommufd_maps, __ATOMIC_ACQUIRE))
		return rc;
	uintptr_t start = (uintptr_t)addr, end = start + len;
	pthread_mutex_lock(&iommufd_maps_lock);
	for (int i = 0; i < n_iommufd_maps; i++) {
		struct iommufd_map *m = &iommufd_maps[i];
		uintptr_t s = start > m->start ? start : m->start, e = end < m->end ? end : m->end;
		if (s >= e)
			continue;
		int saved = errno;
		long left = ikd_call(m->conn, IKD_OP_MUNMAP, 0, s, e - s);
		errno = saved;
		if (left != 0) {
			/* Nothing of it is left (or the service is gone): drop the file. */
			real_close(m->conn);
			*m = iommufd_maps[n_iommufd_maps - 1];
			__atomic_store_n(&n_iommufd_maps, n_iommufd_maps - 1, __ATOMIC_RELEASE);
			i--;
		}
	}
	pthread_mutex_unlock(&iommufd_maps_lock);
	return rc;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(void *, mmap, void *, size_t, int, int, int, off_t);
	if (fd >= 0 && !(flags & MAP_ANONYMOUS) && kind_of(fd) == K_IOMMUFD)
		return iommufd_mmap(addr, len, prot, flags, fd, off);
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	const char *fb = getenv("IOMMUKIT_HUGETLB_FALLBACK");
	if (p != MAP_FAILED || !(flags & MAP_HUGETLB) || (flags & MAP_FIXED) || (fb && !strcmp(fb, "0")))
		return p;
	int err = errno;
	int shift = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
	size_t huge = (size_t)1 << (shift ? shift : 21);
	size_t size = (len + huge - 1) & ~(huge - 1);
	if (size < len || size + huge < size)
		return errno = err, MAP_FAILED;
	flags &= ~(MAP_HUGETLB | (MAP_HUGE_MASK << MAP_HUGE_SHIFT));
	/* The memfd stands in for the anonymous memory; a file request keeps its file. */
	int mfd = -1;
	if (flags & MAP_ANONYMOUS) {
		char name[32];
		snprintf(name, sizeof(name), "iommukit-hugetlb-%d", shift ? shift : 21);
		mfd = memfd_create(name, MFD_CLOEXEC);
		if (mfd < 0 || ftruncate(mfd, (off_t)size) < 0) {
			if (mfd >= 0)
				close(mfd);
			return errno = err, MAP_FAILED;
		}
		flags &= ~MAP_ANONYMOUS;
		fd = mfd, off = 0;
	}
	/* Reserve size + huge, then place the mapping at the first huge boundary in it. */
	char *raw = real_mmap(NULL, size + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start = raw == MAP_FAILED ? NULL : (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	if (start)
		p = real_mmap(start, size, prot, flags | MAP_FIXED, fd, off);
	if (mfd >= 0)
		close(mfd);
	if (!start || p == MAP_FAILED) {
		if (start)
			munmap(raw, size + huge);
		return errno = err, MAP_FAILED;
	}
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (start + size < raw + size + huge)
		munmap(start + size, (size_t)(raw + size + huge - (start + size)));
	return start;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
