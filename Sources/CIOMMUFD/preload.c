/*
 * libIOMMUFDPreload.so: run an unmodified C program against IOMMUKit.
 *
 *   LD_PRELOAD=libIOMMUFDPreload.so IOMMUKIT_DAEMON=/path/to/iommukitd ./prog
 *
 * open("/dev/iommu") returns a real fd: one end of an AF_UNIX SOCK_SEQPACKET
 * connection to iommukitd, which plays the kernel. The kernel's own reference counting
 * of that socket gives dup/fork/close/exit their usual meaning. ioctl, read, write and
 * poll on such fds are forwarded as (cmd, pointer); the service reads and writes the
 * caller's memory itself. Every other fd passes through untouched. The protocol, and
 * who the service believes about what, is in iommukit_wire.h.
 *
 * This file holds no iommufd semantics: errno values, sizes and records all come from
 * the service. What it does emulate is the host side: fail-nth and debugfs fault
 * injection files (forwarded to the service's knobs, also when reached with openat
 * relative to a directory fd) and MAP_HUGETLB on a host without huge pages (served with
 * normal, huge-aligned pages the service mirrors as huge).
 *
 * It is C only: no Swift runtime is loaded into the program (see Package.swift).
 *
 * Environment: IOMMUKIT_SOCKET (default iommukitd.sock in the per-user directory,
 * $XDG_RUNTIME_DIR/iommukit or /tmp/iommukit-<uid>, mode 0700); IOMMUKIT_DAEMON (path
 * of iommukitd, started on first open when nothing listens); IOMMUKIT_IDLE_EXIT
 * (seconds, default 30) and IOMMUKIT_LOG for a service the shim starts;
 * IOMMUKIT_VFIO_CONTAINER=1 to serve /dev/vfio/vfio too; IOMMUKIT_HUGETLB_FALLBACK=0
 * to keep MAP_HUGETLB failures.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
enum { K_NONE, K_IOMMUFD, K_FAULT, K_ACCESS, K_FAILNTH, K_KNOB, K_VEVENTQ, K_DEBUGFS_DIR };

#define MAX_FD 4096
/* Tracked fds; st_ino guards against numbers reused behind our back (close_range…);
 * svc is the pid of the service the file belongs to (its listener's). */
static struct { unsigned char kind; ino_t ino; pid_t svc; } tab[MAX_FD];

#define REAL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static ino_t ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void track(int fd, int kind, pid_t svc)
{
	if (fd >= 0 && fd < MAX_FD) {
		tab[fd].ino = ino_of(fd);
		tab[fd].kind = (unsigned char)kind;
		tab[fd].svc = svc;
	}
}

/* The service a tracked fd belongs to (0: unknown). */
static pid_t svc_of(int fd) { return fd >= 0 && fd < MAX_FD ? tab[fd].svc : 0; }

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

/* Kinds whose last close is a release the service must finish before close() returns. */
static int released_on_close(int kind)
{
	return kind == K_IOMMUFD || kind == K_FAULT || kind == K_ACCESS || kind == K_VEVENTQ;
}

/*
 * The per-user directory of the socket and the log (Sources/iommukitd/SocketDirectory.swift
 * applies the same rule): $XDG_RUNTIME_DIR/iommukit when XDG_RUNTIME_DIR is a private
 * directory of ours, else /tmp/iommukit-<uid>. Either must be a real directory (not a
 * symlink) of our euid with no access for group or others.
 */
static int private_dir(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077);
}

static const char *default_dir(void)
{
	static char dir[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/' && private_dir(xdg) && strlen(xdg) + 10 < sizeof(dir))
		snprintf(dir, sizeof(dir), "%s/iommukit", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/iommukit-%u", (unsigned)geteuid());
	return dir;
}

static const char *socket_path(void)
{
	static char def[PATH_MAX];
	const char *p = getenv("IOMMUKIT_SOCKET");
	if (p && *p)
		return p;
	snprintf(def, sizeof(def), "%s/iommukitd.sock", default_dir());
	return def;
}

/* The default socket is used only inside a private directory; an explicit one anywhere
 * (its listener is checked either way). */
static int socket_dir_ok(void)
{
	const char *p = getenv("IOMMUKIT_SOCKET");
	return (p && *p) || private_dir(default_dir());
}

/*
 * The listener must be the caller's own user (SO_PEERCRED, which the kernel records
 * when the service called listen): another user who took the socket path first
 * (squatting a shared directory, or the path after the service's idle exit) gets
 * nothing, not even the first packet. Only then, and only where Yama restricts ptrace
 * to descendants, is that service given leave to reach our memory (PR_SET_PTRACER).
 */
static pid_t check_listener(int fd)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) != 0 || cr.uid != geteuid() || cr.pid <= 0)
		return -1;
	static int yama = -1;
	if (yama < 0) {
		REAL(int, open, const char *, int, ...);
		REAL(ssize_t, read, int, void *, size_t);
		REAL(int, close, int);
		char c = '0';
		int y = real_open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
		if (y >= 0) {
			if (real_read(y, &c, 1) != 1)
				c = '0';
			real_close(y);
		}
		yama = c - '0';
	}
	if (yama == 1 && cr.uid != 0)
		prctl(PR_SET_PTRACER, (unsigned long)cr.pid, 0, 0, 0);
	return cr.pid;
}

/* A connection to a listener of our own user, whose pid goes to *svc; -1 with errno
 * (ENOENT: nothing listens, EACCES: the directory or the listener is not ours). */
static int try_connect(const char *path, int cloexec, pid_t *svc)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	REAL(int, close, int);
	if (!socket_dir_ok()) {
		errno = EACCES;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -1;
	/* Autobind: the kernel names this end uniquely, and the service's end sees the name
	 * as its peer's, which is how the service knows the connection when the fd is
	 * passed to it with a request (iommukit_wire.h). */
	if (bind(fd, (struct sockaddr *)&a, sizeof(sa_family_t)) != 0) {
		real_close(fd);
		return -1;
	}
	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		if ((*svc = check_listener(fd)) > 0)
			return fd;
		real_close(fd);
		errno = EACCES;
		return -1;
	}
	int e = errno;
	real_close(fd);
	errno = (e == EACCES || e == EPERM) ? EACCES : ENOENT;
	return -1;
}

/* Starts iommukitd in its own session (setsid, double fork: not our child, not in our
 * process group), with no fd of ours and without this shim preloaded. The default
 * directory is created private first. */
static void start_daemon(const char *path)
{
	const char *bin = getenv("IOMMUKIT_DAEMON");
	const char *explicit_socket = getenv("IOMMUKIT_SOCKET");
	if (!bin || !*bin)
		return;
	if (!(explicit_socket && *explicit_socket)) {
		mkdir(default_dir(), 0700);
		if (!private_dir(default_dir()))
			return;
	}
	pid_t p = fork();
	if (p == 0) {
		char logbuf[PATH_MAX];
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
			if (explicit_socket && *explicit_socket)
				snprintf(logbuf, sizeof(logbuf), "%s.log", path);
			else
				snprintf(logbuf, sizeof(logbuf), "%s/iommukitd.log", default_dir());
			log = logbuf;
		}
		execl(bin, bin, "--socket", path, "--idle-exit", idle && *idle ? idle : "30", "--log", log,
		      (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

/* A new file connection to the service, starting it if allowed; -1 with errno (ENOENT,
 * as for a missing /dev/iommu, when it cannot be reached). */
static int connect_service(int cloexec, pid_t *svc)
{
	const char *path = socket_path();
	int fd = try_connect(path, cloexec, svc);
	if (fd < 0 && errno == ENOENT && getenv("IOMMUKIT_DAEMON")) {
		start_daemon(path);
		for (int i = 0; i < 1000 && fd < 0; i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			fd = try_connect(path, cloexec, svc);
			if (fd < 0 && errno == EACCES)
				break;
		}
	}
	return fd;
}

/*
 * Reply channels (iommukit_wire.h, "Reply channels" and "How the kernel vouches for a
 * thread"). Each thread of each process has its own connection to the service, made on
 * its first request: it sends CHANNEL with its own end attached, then waits for the
 * answer in a blocking recvmsg, which is where the service sees it. Replies and INSTALL
 * upcalls for its requests on any file connection come back on it, and no other thread
 * or process reads it. After fork the child sees a pid that is not the channel's and
 * makes its own; a thread's channel is closed when the thread exits.
 */
static pthread_key_t chan_key;
static __thread struct { pid_t pid; int fd; ino_t ino; pid_t svc; } chan = { 0, -1, 0, 0 };

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

/* The calling thread's channel to service `svc` (0: whichever it has), registered now
 * if it has none (or one to another service); -1 with errno. */
static int thread_channel(pid_t svc)
{
	pid_t me = getpid(), listener = 0;
	REAL(int, close, int);
	if (chan.fd >= 0 && chan.pid == me && ino_of(chan.fd) == chan.ino && (!svc || svc == chan.svc))
		return chan.fd;
	chan_drop();
	int c = try_connect(socket_path(), 1, &listener);
	if (c < 0)
		return -1;
	if (svc && listener != svc) {
		/* The file's service is not the one listening now (it was restarted). */
		real_close(c);
		errno = EIO;
		return -1;
	}
	struct ikd_request rq = { IKD_OP_CHANNEL, me, (int32_t)gettid(), 0, 0, 0 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cm;
	struct iovec iov = { &rq, sizeof(rq) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	memset(&cm, 0, sizeof(cm));
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &c, sizeof(int));
	struct ikd_reply rp;
	ssize_t n = sendmsg(c, &m, MSG_NOSIGNAL);
	if (n == sizeof(rq)) {
		/* The blocking receive the service looks for (no polling here). */
		do
			n = recv(c, &rp, sizeof(rp), 0);
		while (n < 0 && errno == EINTR);
	}
	if (n != sizeof(rp) || rp.kind != IKD_MSG_REPLY || rp.err) {
		real_close(c);
		errno = n == sizeof(rp) && rp.err ? rp.err : EIO;
		return -1;
	}
	chan.fd = c, chan.pid = me, chan.ino = ino_of(c), chan.svc = listener;
	pthread_setspecific(chan_key, (void *)1); /* arms chan_thread_exit */
	return c;
}

/* How long a caller polls for its reply before sleeping in recvmsg. A reply usually
 * comes back in a few microseconds, but a thread that sleeps waits for a wake-up that
 * costs ~50 µs on these machines when the other core has gone idle (measured: the
 * IOVA_RANGES round trip is 70 µs idle, 19 µs with the service's core kept awake).
 * Polling briefly keeps back-to-back ioctls in the fast case; a slow request (a big
 * map) still ends up sleeping, so an idle program costs nothing.
 *
 * Polling only pays while the service runs on another core. On a loaded machine it
 * does not: the poll burns the time slice the service needs (a round trip measured
 * 385 µs polling, 25-60 µs sleeping, at a load of 13 on 2 cores). So each empty poll
 * yields the CPU, and a thread stops polling after IKD_SPIN_MISSES polls in a row that
 * ended without the reply, then tries again once every IKD_SPIN_PROBE waits; one poll
 * that catches its reply resumes polling. The service's thread follows the same rule
 * for the next request (TaskChannel.swift). */
#define IKD_REPLY_SPIN_NS 50000
#define IKD_SPIN_MISSES 2
#define IKD_SPIN_PROBE 8

static __thread unsigned spin_misses, spin_skipped;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* recvmsg on the reply channel: a short non-blocking poll first while polling pays
 * (see above). */
static ssize_t recv_reply(int rx, struct msghdr *m)
{
	ssize_t n;

	if (spin_misses < IKD_SPIN_MISSES || ++spin_skipped >= IKD_SPIN_PROBE) {
		uint64_t deadline = mono_ns() + IKD_REPLY_SPIN_NS;
		spin_skipped = 0;
		do {
			n = recvmsg(rx, m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
			if (n >= 0) {
				spin_misses = 0;
				return n;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return n;
			sched_yield();
		} while (mono_ns() < deadline);
		if (spin_misses < IKD_SPIN_MISSES)
			spin_misses++;
	}
	do
		n = recvmsg(rx, m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Reads the reply to the request just sent, on the channel; answers INSTALL upcalls on
 * the way. Returns the reply's ret, or -1 with errno. */
static long await_reply(int rx, pid_t pid, pid_t tid)
{
	struct ikd_reply rp;
	for (;;) {
		union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
		struct iovec iov = { &rp, sizeof(rp) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
				    .msg_controllen = sizeof(c.buf) };
		ssize_t n = recv_reply(rx, &m);
		if (n != sizeof(rp)) {
			/* The service is gone (or disconnected this thread): a new channel next time. */
			chan_drop();
			errno = EIO;
			return -1;
		}
		if (rp.kind == IKD_MSG_INSTALL) {
			/* fd_install in our table; the number goes back into the out-field. */
			struct cmsghdr *h = CMSG_FIRSTHDR(&m);
			int nfd = -EMFILE;
			if (h && h->cmsg_type == SCM_RIGHTS) {
				memcpy(&nfd, CMSG_DATA(h), sizeof(int));
				track(nfd, rp.ret == IKD_FILE_FAULT ? K_FAULT : rp.ret == IKD_FILE_VEVENTQ ? K_VEVENTQ : K_ACCESS,
				      chan.svc);
			}
			struct ikd_request ans = { IKD_OP_FD_INSTALLED, pid, tid, 0, (uint64_t)(int64_t)nfd, 0 };
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

/* One request on file connection fd and its reply. Returns the reply's ret, or -1 with
 * errno. */
static long ikd_call(int fd, uint32_t op, uint32_t cmd, uint64_t arg, uint64_t len)
{
	struct ikd_request rq = { op, getpid(), (int32_t)gettid(), cmd, arg, len };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
	struct iovec iov = { &rq, sizeof(rq) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
	int rx = thread_channel(svc_of(fd));
	if (rx < 0) {
		errno = EIO;
		return -1;
	}
	/* The request goes on the thread's channel with the file itself attached: the
	 * kernel vouches that the caller holds it. */
	memset(&c, 0, sizeof(c));
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	if (sendmsg(rx, &m, MSG_NOSIGNAL) != sizeof(rq)) {
		chan_drop();
		errno = EIO;
		return -1;
	}
	return await_reply(rx, rq.pid, rq.tid);
}

/* A request about the calling thread itself, on its channel to service `svc` (0: any;
 * RELEASE, VM_STATUS). */
static long ikd_chan_call(uint32_t op, uint64_t len, pid_t svc)
{
	struct ikd_request rq = { op, getpid(), (int32_t)gettid(), 0, 0, len };
	int rx = thread_channel(svc);
	if (rx < 0)
		return -1;
	if (send(rx, &rq, sizeof(rq), MSG_NOSIGNAL) != sizeof(rq)) {
		chan_drop();
		errno = EIO;
		return -1;
	}
	return await_reply(rx, rq.pid, rq.tid);
}

/* After the calling thread closed an fd of a file service `svc` serves: if that was the
 * last reference, the service finishes the release before this returns (RELEASE). */
static void finish_release(pid_t svc)
{
	int e = errno;
	ikd_chan_call(IKD_OP_RELEASE, 0, svc);
	errno = e;
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
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -2;
	long v = ikd_chan_call(IKD_OP_VM_STATUS, (uint64_t)pid, 0);
	if (v < 0)
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
	pid_t svc = 0;
	fd = connect_service(cloexec, &svc);
	if (fd < 0)
		return -1;
	track(fd, kind, svc);
	if (ikd_call(fd, IKD_OP_OPEN, what, arg, len) < 0) {
		int e = errno;
		REAL(int, close, int);
		untrack(fd);
		real_close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * debugfs when it is not mounted. The kernel's fault-injection attributes live in
 * /sys/kernel/debug/, which a program lists with opendir and then opens relative to
 * the directory fd (openat(dirfd(d), "failslab/ignore-gfp-wait")). opendir of that
 * directory, where it does not exist, gives a private empty stand-in directory
 * (<per-user directory>/debugfs), so the program goes on to openat, which lands here.
 */
static const char *debugfs_standin(void)
{
	static char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/debugfs", default_dir());
	return dir;
}

static int is_debugfs_dir(const char *p)
{
	return !strcmp(p, "/sys/kernel/debug") || !strcmp(p, "/sys/kernel/debug/");
}

/* The absolute path openat(dirfd, path) names, for the paths the service plays (under
 * /sys/kernel/debug/, /proc/ or /dev/); 0 when it is none of those. */
static int resolve_at(int dirfd, const char *path, char *out, size_t cap)
{
	char dir[PATH_MAX];
	if (!path || path[0] == '/' || !path[0])
		return 0;
	if (dirfd == AT_FDCWD) {
		if (!getcwd(dir, sizeof(dir)))
			return 0;
	} else {
		char link[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		ssize_t n = readlink(link, dir, sizeof(dir) - 1);
		if (n <= 0)
			return 0;
		dir[n] = 0;
		if (!strcmp(dir, debugfs_standin()))
			strcpy(dir, "/sys/kernel/debug");
	}
	if (strncmp(dir, "/sys/kernel/debug", 17) && strncmp(dir, "/proc", 5) && strncmp(dir, "/dev", 4))
		return 0;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dir[--dl] = 0;
	if ((size_t)snprintf(out, cap, "%s/%s", dir, path) >= cap)
		return 0;
	return 1;
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

static int openat_special(int dirfd, const char *path, int flags)
{
	char abs[PATH_MAX];
	if (path && path[0] == '/')
		return open_special(path, flags);
	return resolve_at(dirfd, path, abs, sizeof(abs)) ? open_special(abs, flags) : -2;
}

OPEN_WRAPPER(openat, int dirfd,)
	int fd = openat_special(dirfd, path, flags);
	REAL(int, openat, int, const char *, int, ...);
	return fd != -2 ? fd : real_openat(dirfd, path, flags, mode);
}
OPEN_WRAPPER(openat64, int dirfd,)
	int fd = openat_special(dirfd, path, flags);
	REAL(int, openat64, int, const char *, int, ...);
	return fd != -2 ? fd : real_openat64(dirfd, path, flags, mode);
}

DIR *opendir(const char *name)
{
	REAL(DIR *, opendir, const char *);
	DIR *d = real_opendir(name);
	if (d || errno != ENOENT || !is_debugfs_dir(name))
		return d;
	mkdir(default_dir(), 0700);
	if (!private_dir(default_dir()))
		return errno = ENOENT, NULL;
	mkdir(debugfs_standin(), 0700);
	d = real_opendir(debugfs_standin());
	if (!d)
		errno = ENOENT;
	return d;
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

/* An fd inherited across exec: ours if it is a socket connected to the service (of our
 * own user). */
static int adopt(int fd)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(fd, (struct sockaddr *)&a, &l) != 0 || a.sun_family != AF_UNIX ||
	    strcmp(a.sun_path, socket_path()) != 0)
		return 0;
	pid_t svc = check_listener(fd);
	if (svc <= 0)
		return 0;
	track(fd, K_IOMMUFD, svc);
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

/* close: when this was the last reference to a file the service serves, its release
 * has finished when close returns, as in the kernel (see finish_release). */
int close(int fd)
{
	REAL(int, close, int);
	int k = kind_of(fd);
	pid_t svc = svc_of(fd);
	untrack(fd);
	int r = real_close(fd);
	if (r == 0 && released_on_close(k))
		finish_release(svc);
	return r;
}

/* dup family: the copy is the same open file, so it stays ours. A file that `new`
 * held before is closed by the call, with close's meaning (`replaced`, the kind `new`
 * had before the call). */
static int dup_result(int old, int new, int replaced, pid_t replaced_svc)
{
	if (new >= 0 && old != new) {
		int k = kind_of(old);
		untrack(new);
		if (k != K_NONE)
			track(new, k, svc_of(old));
		if (released_on_close(replaced))
			finish_release(replaced_svc);
	}
	return new;
}

int dup(int old)
{
	REAL(int, dup, int);
	return dup_result(old, real_dup(old), K_NONE, 0);
}

int dup2(int old, int new)
{
	REAL(int, dup2, int, int);
	int replaced = old != new ? kind_of(new) : K_NONE;
	pid_t svc = svc_of(new);
	return dup_result(old, real_dup2(old, new), replaced, svc);
}

int dup3(int old, int new, int flags)
{
	REAL(int, dup3, int, int, int);
	int replaced = old != new ? kind_of(new) : K_NONE;
	pid_t svc = svc_of(new);
	return dup_result(old, real_dup3(old, new, flags), replaced, svc);
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	REAL(int, fcntl, int, int, ...);
	int r = real_fcntl(fd, cmd, arg);
	return (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) ? dup_result(fd, r, K_NONE, 0) : r;
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
 * mapped private or shared as asked, at a huge-aligned address of its choice or, with
 * MAP_FIXED, at the caller's (which must be huge aligned, as hugetlb wants). The kernel,
 * too, backs anonymous hugetlb memory with an unlinked hugetlbfs file. The name is how
 * the service learns, from /proc/<pid>/maps, that these pages stand for huge pages and
 * must be physically contiguous in the model (Sources/iommukitd/Client.swift, "Huge pages"); the kernel
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
			/* Nothing of it is left (or the service is gone): drop the file, with
			 * close's meaning (the release, if it was the file's last reference). */
			close(m->conn);
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
	if (p != MAP_FAILED || !(flags & MAP_HUGETLB) || (fb && !strcmp(fb, "0")))
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
	/* MAP_FIXED: at the caller's address, which hugetlb wants huge aligned. */
	if (flags & MAP_FIXED) {
		if ((uintptr_t)addr & (huge - 1)) {
			if (mfd >= 0)
				close(mfd);
			return errno = EINVAL, MAP_FAILED;
		}
		p = real_mmap(addr, size, prot, flags, fd, off);
		if (mfd >= 0)
			close(mfd);
		return p == MAP_FAILED ? (errno = err, MAP_FAILED) : p;
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
