/*
 * The wire protocol between libIOMMUFDPreload.so and iommukitd (Swift side:
 * Sources/iommukitd/Wire.swift). One AF_UNIX SOCK_SEQPACKET connection is one open
 * file; one packet is one message; little-endian, natural alignment.
 *
 *   shim -> service   struct ikd_request: OPEN (first packet of a connection the shim
 *                     made), then IOCTL / READ / WRITE / POLL / MMAP / MUNMAP;
 *                     FD_INSTALLED answers an INSTALL upcall.
 *   service -> shim   struct ikd_reply: exactly one REPLY per request; before it, zero
 *                     or more INSTALL upcalls, each carrying one fd (SCM_RIGHTS).
 *
 * Reply channels. One connection may be shared by many processes (fork) and threads
 * (dup, threads), and the kernel gives each ioctl its own result; replies read from the
 * shared connection could reach the wrong caller. So replies and INSTALL upcalls (and
 * the FD_INSTALLED answers) travel on the calling thread's reply channel instead: a
 * socketpair end the thread sends with its first request (SCM_RIGHTS on that request
 * packet). The service keeps it under (pid, tid) for every later request of that
 * thread, on any connection. Requests are single packets, so they never interleave;
 * only the requesting thread reads its channel, so replies never cross. Chosen over
 * request ids (which would need a reply demultiplexer shared by unrelated processes)
 * and over a per-request socketpair (two more syscalls per ioctl). A request with no
 * known channel (a client that never sent one) is answered on the connection, as is
 * every request after the shim finds its channel's peer gone (a restarted service).
 *
 * Arguments never travel in packets: `arg` is the caller's pointer, and the service
 * reads and writes the caller's memory with process_vm_readv/writev, as the kernel's
 * copy_from_user/copy_to_user do. Written for IOMMUKit; not a kernel header.
 */
#ifndef IOMMUKIT_WIRE_H
#define IOMMUKIT_WIRE_H

#include <stdint.h>

enum ikd_op {
	IKD_OP_OPEN = 1,         /* cmd = enum ikd_open_kind */
	IKD_OP_IOCTL = 2,        /* cmd, arg = the ioctl's arguments */
	IKD_OP_READ = 3,         /* arg = buffer, len = count */
	IKD_OP_WRITE = 4,        /* arg = buffer, len = count */
	IKD_OP_POLL = 5,         /* reply ret = the poll mask */
	IKD_OP_FD_INSTALLED = 6, /* arg = the new fd number, or -errno */
	IKD_OP_MMAP = 7,         /* arg = struct ikd_mmap *, len = its size */
	IKD_OP_MUNMAP = 8,       /* arg, len = a range of an iommufd mapping the caller just
	                          * unmapped; ret = 1 once nothing of that mapping is left */
};

enum ikd_open_kind {
	IKD_OPEN_IOMMU = 1,         /* /dev/iommu */
	IKD_OPEN_VFIO = 2,          /* /dev/vfio/vfio served by iommufd */
	IKD_OPEN_FAIL_NTH = 3,      /* /proc/.../task/<tid>/fail-nth; len = tid */
	IKD_OPEN_DEBUGFS_KNOB = 4,  /* arg/len = the attribute's path */
	IKD_OPEN_VM_STATUS = 5,     /* a query: len = pid; ret = VmPin | VmLck << 32, in pages */
};

enum ikd_msg { IKD_MSG_REPLY = 1, IKD_MSG_INSTALL = 2 };

/* Kinds of files an INSTALL carries (ret field), as IOMMUFDFileKind. */
enum ikd_file { IKD_FILE_FAULT = 1, IKD_FILE_ACCESS = 2, IKD_FILE_VEVENTQ = 3 };

struct ikd_request {
	uint32_t op;
	int32_t pid;   /* the calling process (getpid) */
	int32_t tid;   /* the calling task (gettid): fail-nth is per task */
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
