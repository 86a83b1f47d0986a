/*
 * The wire protocol between libIOMMUFDPreload.so and iommukitd (Swift side:
 * Sources/iommukitd/Wire.swift). Every connection is an AF_UNIX SOCK_SEQPACKET
 * connection to the service's listening socket; one packet is one message;
 * little-endian, natural alignment. Written for IOMMUKit; not a kernel header.
 *
 * Two kinds of connection.
 *
 *   File connections. One open file (/dev/iommu, a file a context handed out, an
 *   emulated fault-injection knob) is one connection, and the program's fd is the
 *   connection's socket: the kernel's own reference counting of that socket gives dup,
 *   fork, close and exit their meaning. Nothing travels on it: it stands for the file.
 *   The shim's end is autobound (the kernel gives it a unique abstract name, which the
 *   service's end sees as its peer's name); the ends of files the service hands out are
 *   known to it by inode.
 *
 *   Reply channels. Each thread of each process that talks to the service has one
 *   connection of its own, its channel, whose first packet is CHANNEL. Every request of
 *   the thread travels on its channel: OPEN, IOCTL, READ, WRITE, POLL, MMAP and MUNMAP with the file
 *   they are about attached (SCM_RIGHTS; the kernel vouches that the caller holds it,
 *   and its name or inode tells the service which connection it is), RELEASE and
 *   VM_STATUS without. Each gets exactly one REPLY there; INSTALL upcalls and the
 *   shim's FD_INSTALLED answers travel there too. No other thread reads it, so
 *   concurrent callers sharing one file (threads, fork) never see each other's results,
 *   and the thread's service thread reads its requests directly.
 *
 * Identity comes from the kernel, never from a packet. The service sets SO_PASSCRED on
 * every connection, so the kernel attaches the sending process's pid (its thread-group
 * id), uid and gid to every packet. The pid and tid fields below are claims: a request
 * whose pid (or, on a channel, tid) is not the channel's is refused with EPERM and
 * logged, as is any packet from a uid other than the service's own. A packet on a file
 * connection is refused the same way. The shim checks, with SO_PEERCRED, that the
 * listener belongs to the caller's uid before it sends anything.
 *
 * How the kernel vouches for a thread. SCM_CREDENTIALS and SO_PEERCRED name processes,
 * not threads, so a channel is bound to its thread when it is registered, from facts
 * the kernel reports:
 *   1. the CHANNEL packet's credentials name process P, and the thread's claimed tid T
 *      is a task of P (/proc/P/task/T);
 *   2. the CHANNEL packet carries (SCM_RIGHTS) the shim's own end of the channel; a
 *      probe sent through that end arrives on the service's end, so it is this very
 *      connection;
 *   3. after sending CHANNEL the thread waits for the answer in a blocking recvmsg on
 *      its end, and the service waits (bounded) until /proc/P/task/T/syscall, which the
 *      kernel writes for task T itself, shows T blocked in a receive call on an fd
 *      that (pidfd_getfd through P's pidfd) is that same file.
 * Only then is the channel registered for (P, T), and answered. So a reply channel is
 * registered only for the thread that reads it; another process cannot register one
 * for P at all (its packets carry its own pid). Within one process the kernel isolates
 * nothing between threads (they share memory and fds), so a thread that writes into a
 * sibling's channel only confuses its own process.
 * A process is held by a pidfd taken from the channel's SO_PEERPIDFD (pid reuse cannot
 * redirect it); its exit is seen on that pidfd before the next request is served.
 *
 * Release on close. When the shim closes the last fd it holds of a file the service
 * serves, it sends RELEASE on its channel after close() itself returned; the service
 * finishes every release the kernel has made due (connections whose last reference is
 * gone, processes that exited) before answering, so close() returns after the release,
 * as the kernel's file release does. Every other request also finishes due releases
 * before it is served, which gives exit its meaning (a parent that waited for its
 * child sees the child's files released).
 *
 * Arguments never travel in packets: `arg` is the caller's pointer, and the service
 * reads and writes the caller's memory with process_vm_readv/writev, as the kernel's
 * copy_from_user/copy_to_user do.
 */
#ifndef IOMMUKIT_WIRE_H
#define IOMMUKIT_WIRE_H

#include <stdint.h>

enum ikd_op {
	IKD_OP_OPEN = 1,         /* the new file's first request: cmd = enum ikd_open_kind */
	IKD_OP_IOCTL = 2,        /* cmd, arg = the ioctl's arguments */
	IKD_OP_READ = 3,         /* arg = buffer, len = count */
	IKD_OP_WRITE = 4,        /* arg = buffer, len = count */
	IKD_OP_POLL = 5,         /* reply ret = the poll mask */
	IKD_OP_FD_INSTALLED = 6, /* channel: arg = the new fd number, or -errno */
	IKD_OP_CHANNEL = 7,      /* channel, first packet; SCM_RIGHTS: the shim's end */
	IKD_OP_RELEASE = 8,      /* channel: finish due releases, then reply */
	IKD_OP_VM_STATUS = 9,    /* channel: len = pid; ret = VmPin | VmLck << 32, in pages */
	IKD_OP_MMAP = 10,        /* channel, iommufd attached: arg = struct ikd_mmap *,
	                          * len = its size */
	IKD_OP_MUNMAP = 11,      /* channel, iommufd attached: arg, len = a range of an
	                          * iommufd mapping the caller just unmapped; ret = 1 once
	                          * nothing of that mapping is left */
};

enum ikd_open_kind {
	IKD_OPEN_IOMMU = 1,         /* /dev/iommu */
	IKD_OPEN_VFIO = 2,          /* /dev/vfio/vfio served by iommufd */
	IKD_OPEN_FAIL_NTH = 3,      /* /proc/.../task/<tid>/fail-nth; len = tid */
	IKD_OPEN_DEBUGFS_KNOB = 4,  /* arg/len = the attribute's path, under /sys/kernel/debug/ */
};

enum ikd_msg { IKD_MSG_REPLY = 1, IKD_MSG_INSTALL = 2 };

/* Kinds of files an INSTALL carries (ret field), as IOMMUFDFileKind. */
enum ikd_file { IKD_FILE_FAULT = 1, IKD_FILE_ACCESS = 2, IKD_FILE_VEVENTQ = 3 };

struct ikd_request {
	uint32_t op;
	int32_t pid;   /* the calling process (getpid): a claim the kernel's credentials check */
	int32_t tid;   /* the calling task (gettid): selects its reply channel and fail-nth */
	uint32_t cmd;
	uint64_t arg;
	uint64_t len;
};

/* mmap of an iommufd: the shim has mapped its own memfd, shared, at addr; the service
 * maps the vIOMMU region there in the model and copies its bytes into that memfd. */
struct ikd_mmap {
	uint64_t addr;
	uint64_t length;
	uint64_t offset;
	int32_t memfd;  /* the caller's descriptor of that memfd */
	uint32_t prot;  /* PROT_* */
	uint32_t flags; /* MAP_* */
	uint32_t reserved;
};

struct ikd_reply {
	uint32_t kind;         /* enum ikd_msg */
	int32_t err;           /* errno, 0 on success */
	int64_t ret;           /* the call's return value when err == 0 */
	uint32_t nclose;       /* fds installed by a request that then failed: close them */
	int32_t close_fds[4];
};

#endif
