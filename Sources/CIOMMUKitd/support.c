/* Host calls for iommukitd; see include/ikd_support.h. */
#include "ikd_support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

int ikd_set_passcred(int sock)
{
	int one = 1;
	return setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
}

int ikd_accept(int sock)
{
	return accept4(sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int ikd_peer_cred(int sock, struct ikd_cred *out)
{
	struct ucred u;
	socklen_t l = sizeof(u);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &u, &l) != 0)
		return -1;
	out->pid = u.pid, out->uid = u.uid, out->gid = u.gid, out->present = 1;
	return 0;
}

int ikd_peer_pidfd(int sock)
{
	int fd = -1;
	socklen_t l = sizeof(fd);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &l) != 0)
		return -1;
	return fd;
}

ssize_t ikd_recv(int sock, void *buf, size_t len, struct ikd_cred *cred, int *fds, int max_fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
	ssize_t n;

	memset(cred, 0, sizeof(*cred));
	*nfds = 0;
	do
		n = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET)
			continue;
		if (h->cmsg_type == SCM_CREDENTIALS && h->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred u;
			memcpy(&u, CMSG_DATA(h), sizeof(u));
			cred->pid = u.pid, cred->uid = u.uid, cred->gid = u.gid, cred->present = 1;
		} else if (h->cmsg_type == SCM_RIGHTS) {
			size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < count; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
				if (*nfds < max_fds)
					fds[(*nfds)++] = fd;
				else
					close(fd);
			}
		}
	}
	/* A truncated control buffer may have dropped fds the kernel already installed:
	 * nothing to close then, they never reached us. */
	return n;
}

ssize_t ikd_send(int sock, const void *buf, size_t len, int fd)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		memset(&c, 0, sizeof(c));
		m.msg_control = c.buf, m.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

int ikd_socket_name(int sock, int peer, char *buf, int cap)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if ((peer ? getpeername(sock, (struct sockaddr *)&a, &l) : getsockname(sock, (struct sockaddr *)&a, &l)) != 0)
		return -1;
	if (a.sun_family != AF_UNIX || l <= sizeof(sa_family_t))
		return 0;
	int n = (int)(l - sizeof(sa_family_t));
	if (n > cap)
		n = cap;
	memcpy(buf, a.sun_path, (size_t)n);
	return n;
}

int ikd_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int ikd_pidfd_getfd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

int ikd_pidfd_exited(int pidfd)
{
	struct pollfd p = { pidfd, POLLIN, 0 };
	int n = poll(&p, 1, 0);
	if (n < 0)
		return -1;
	return n == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

int ikd_capget_effective(pid_t tid, uint64_t *eff)
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, tid };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &header, data) != 0)
		return -1;
	*eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	return 0;
}

int ikd_memlock_limit(pid_t pid, uint64_t *bytes)
{
	struct rlimit old;
	if (prlimit(pid, RLIMIT_MEMLOCK, NULL, &old) != 0)
		return -1;
	*bytes = old.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)old.rlim_cur;
	return 0;
}

/* Reads a small procfs file whole into buf (NUL-terminated); -1 with errno. */
static ssize_t read_proc(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, len = 0;
	if (fd < 0)
		return -1;
	while (len < (ssize_t)cap - 1 && (n = read(fd, buf + len, cap - 1 - (size_t)len)) > 0)
		len += n;
	int e = errno;
	close(fd);
	if (len == 0 && n < 0) {
		errno = e;
		return -1;
	}
	buf[len] = 0;
	return len;
}

pid_t ikd_pidfd_pid(int pidfd)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (read_proc(path, text, sizeof(text)) < 0)
		return -1;
	char *p = strstr(text, "\nPid:");
	if (!p)
		return -1;
	long pid = strtol(p + 5, NULL, 10);
	return pid > 0 ? (pid_t)pid : -1;
}

pid_t ikd_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

int ikd_task_in_receive(pid_t pid, pid_t tid, int *fd_out)
{
#if defined(__x86_64__)
	const long nr_recvfrom = 45, nr_recvmsg = 47;
#elif defined(__aarch64__)
	const long nr_recvfrom = 207, nr_recvmsg = 212;
#else
#error "ikd_task_in_receive: add this architecture's recvfrom and recvmsg numbers"
#endif
	char path[80], text[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	if (read_proc(path, text, sizeof(text)) < 0)
		return -1;
	/* "<nr> 0x<arg0> 0x<arg1> ... <sp> <pc>", or "running", or "-1 <sp> <pc>". */
	char *end;
	long nr = strtol(text, &end, 10);
	if (end == text || (nr != nr_recvfrom && nr != nr_recvmsg))
		return 0;
	unsigned long fd = strtoul(end, NULL, 16);
	if (fd > 0x7fffffff)
		return 0;
	*fd_out = (int)fd;
	return 1;
}

/* include/uapi/linux/fs.h (6.11): the host's headers may predate it. */
struct ikd_procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start;
	uint64_t vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t vma_name_size;
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};
#define IKD_PROCMAP_QUERY _IOWR('f', 17, struct ikd_procmap_query)
#define IKD_PROCMAP_QUERY_COVERING_OR_NEXT_VMA 0x10

int ikd_vma_query(int maps_fd, uint64_t addr, struct ikd_vma *out)
{
	struct ikd_procmap_query q;
	memset(&q, 0, sizeof(q));
	memset(out, 0, sizeof(*out));
	q.size = sizeof(q);
	q.query_flags = IKD_PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
	q.query_addr = addr;
	q.vma_name_size = sizeof(out->name);
	q.vma_name_addr = (uintptr_t)out->name;
	if (ioctl(maps_fd, IKD_PROCMAP_QUERY, &q) != 0)
		return errno == ENOENT ? 0 : -1;
	out->start = q.vma_start, out->end = q.vma_end, out->offset = q.vma_offset, out->inode = q.inode;
	out->dev_major = q.dev_major, out->dev_minor = q.dev_minor;
	out->flags = (uint32_t)(q.vma_flags & 0xf); /* READABLE 1, WRITABLE 2, EXECUTABLE 4, SHARED 8 */
	out->name[sizeof(out->name) - 1] = 0;
	return 1;
}

int ikd_block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	sigdelset(&set, SIGPIPE);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Trap containment (see the header). */
static int contain_fd = -1;
static __thread int32_t worker_slot = -1;
static __thread void *worker_stack;
#define IKD_ALTSTACK (256 * 1024)

static void contain(int sig, siginfo_t *info, void *context)
{
	(void)info, (void)context;
	int32_t slot = worker_slot;
	if (slot < 0 || contain_fd < 0) {
		/* Not a worker: the default action, when the instruction runs again. */
		struct sigaction d;
		memset(&d, 0, sizeof(d));
		d.sa_handler = SIG_DFL;
		sigaction(sig, &d, NULL);
		return;
	}
	int32_t msg[2] = { slot, sig };
	ssize_t unused = write(contain_fd, msg, sizeof(msg));
	(void)unused;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (;;)
		pause();
}

int ikd_containment_install(int notify_fd)
{
	static const int sigs[] = { SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE };
	struct sigaction a;
	memset(&a, 0, sizeof(a));
	a.sa_sigaction = contain;
	a.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&a.sa_mask);
	contain_fd = notify_fd;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &a, NULL) != 0)
			return -1;
	return 0;
}

int ikd_worker_enter(int32_t slot)
{
	void *stack = mmap(NULL, IKD_ALTSTACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	stack_t ss = { .ss_sp = stack, .ss_size = IKD_ALTSTACK, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		munmap(stack, IKD_ALTSTACK);
		return -1;
	}
	worker_stack = stack;
	worker_slot = slot;
	return 0;
}

int32_t ikd_worker_slot(void)
{
	return worker_slot;
}

void ikd_worker_leave(void)
{
	worker_slot = -1;
	if (worker_stack) {
		stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
		sigaltstack(&ss, NULL);
		munmap(worker_stack, IKD_ALTSTACK);
		worker_stack = NULL;
	}
}
