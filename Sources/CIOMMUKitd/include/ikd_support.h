/*
 * The few host calls iommukitd makes that Swift cannot spell safely: socket control
 * messages (credentials, pidfds, fds), raw syscalls glibc 2.36 does not wrap for Swift
 * (pidfd_getfd through syscall()), and the trap containment of request threads, whose
 * signal handler must be async-signal-safe C. Written for IOMMUKit.
 */
#ifndef IKD_SUPPORT_H
#define IKD_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Credentials the kernel attached to a message (SCM_CREDENTIALS) or recorded for a
 * socket's peer (SO_PEERCRED). pid is the sending process (thread-group id). */
struct ikd_cred {
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
	int32_t present; /* 0: the message carried no credentials */
};

/* SO_PASSCRED on `sock`: the kernel attaches the sender's credentials to every message
 * received on it (inherited by sockets accepted from a listener). 0 or -1 with errno. */
int ikd_set_passcred(int sock);

/* accept4(sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK). */
int ikd_accept(int sock);

/* SO_PEERCRED. 0 or -1 with errno. */
int ikd_peer_cred(int sock, struct ikd_cred *out);

/* SO_PEERPIDFD (Linux 6.5+): a pidfd for the peer's process as recorded when the socket
 * was connected or created, immune to pid reuse. -1 with errno (ENOPROTOOPT: older kernel). */
int ikd_peer_pidfd(int sock);

/* recvmsg without blocking: one packet into buf, the sender's credentials into *cred,
 * up to max_fds passed fds (SCM_RIGHTS, received close-on-exec) into fds, their count
 * into *nfds; fds beyond max_fds are closed. Returns the byte count, 0 on hang-up,
 * -1 with errno (EAGAIN: nothing queued). */
ssize_t ikd_recv(int sock, void *buf, size_t len, struct ikd_cred *cred, int *fds, int max_fds, int *nfds);

/* send of one packet, with one fd attached when fd >= 0 (SCM_RIGHTS), MSG_NOSIGNAL |
 * MSG_DONTWAIT. Returns the byte count or -1 with errno (EAGAIN: the peer's queue is full). */
ssize_t ikd_send(int sock, const void *buf, size_t len, int fd);

/* The address of a unix socket (peer != 0: of its peer) into buf: returns the length of
 * the name (for an autobound socket, the abstract name with its leading NUL), 0 for an
 * unnamed socket, -1 with errno. */
int ikd_socket_name(int sock, int peer, char *buf, int cap);

/* pidfd_open(pid, 0) and pidfd_getfd(pidfd, fd, 0). -1 with errno. */
int ikd_pidfd_open(pid_t pid);
int ikd_pidfd_getfd(int pidfd, int fd);

/* Whether the process behind `pidfd` has exited (its pidfd polls readable): 1 exited,
 * 0 running, -1 with errno. */
int ikd_pidfd_exited(int pidfd);

/* capget(2) of thread `tid`: its effective capability set (both 32-bit words) into *eff.
 * One syscall, where /proc/<pid>/task/<tid>/status costs an open, a read and a parse;
 * any process may ask about any thread. 0 or -1 with errno (ESRCH: no such thread). */
int ikd_capget_effective(pid_t tid, uint64_t *eff);

/* prlimit(pid, RLIMIT_MEMLOCK) read only: the soft limit in bytes into *bytes
 * (RLIM_INFINITY as UINT64_MAX). 0 or -1 with errno (EPERM: the caller may not ask about
 * that process; read /proc/<pid>/limits instead). */
int ikd_memlock_limit(pid_t pid, uint64_t *bytes);

/* The pid a pidfd names now, from /proc/self/fdinfo ("Pid:"); -1 when it is gone. */
pid_t ikd_pidfd_pid(int pidfd);

/* gettid(). */
pid_t ikd_gettid(void);

/* Whether thread `tid` of process `pid` is blocked right now in a receive call on its
 * fd number *fd_out (recvmsg or recvfrom, read from /proc/<pid>/task/<tid>/syscall,
 * which the kernel writes for the task itself). 1 yes (*fd_out set), 0 not (running, or
 * in another call), -1 with errno (no such task, no access). */
int ikd_task_in_receive(pid_t pid, pid_t tid, int *fd_out);

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread (threads created after it
 * inherit the mask) and returns a signalfd for SIGTERM and SIGINT; -1 with errno. */
int ikd_block_signals(void);

/* A mapping of a process, as /proc/<pid>/maps shows it. */
struct ikd_vma {
	uint64_t start, end;  /* [start, end) */
	uint64_t offset;      /* file offset of start */
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t flags;       /* IKD_VMA_* */
	char name[128];       /* the path column, truncated; "" for anonymous memory */
};
enum { IKD_VMA_READ = 1, IKD_VMA_WRITE = 2, IKD_VMA_EXEC = 4, IKD_VMA_SHARED = 8 };

/* The mapping covering `addr`, or the next one above it, of the process whose
 * /proc/<pid>/maps is open as `maps_fd` (the PROCMAP_QUERY ioctl, Linux 6.11+; the open
 * file stays bound to that process's mm). 1 found, 0 none, -1 with errno (ENOTTY: the
 * kernel has no PROCMAP_QUERY; the caller parses the text instead). */
int ikd_vma_query(int maps_fd, uint64_t addr, struct ikd_vma *out);

/*
 * Trap containment. A Swift runtime trap (overflow, bounds, a failed precondition)
 * raises SIGILL or SIGTRAP in the thread that hit it; memory errors raise SIGSEGV or
 * SIGBUS. ikd_containment_install() handles these for the whole process: in a thread
 * that called ikd_worker_enter(slot), the handler writes `slot` (an int32) to
 * notify_fd and then parks the thread for good, with every signal blocked, so that its
 * stack and whatever it held stay untouched while the rest of the service carries on.
 * In any other thread it restores the default action, and the process dies as it
 * would have without containment.
 */
int ikd_containment_install(int notify_fd);
/* Marks the calling thread as a contained worker (slot >= 0) with its own signal stack. */
int ikd_worker_enter(int32_t slot);
/* The calling thread's slot, -1 outside a contained worker. */
int32_t ikd_worker_slot(void);
/* Undoes ikd_worker_enter before the thread exits. */
void ikd_worker_leave(void);

#endif
