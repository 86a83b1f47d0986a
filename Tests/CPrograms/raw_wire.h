/* Speaking the service's wire protocol (iommukit_wire.h) directly, for programs that
 * play a hostile or broken client next to the shim: raw connections, a reply channel
 * of one's own, hand-made requests, replies read with a time limit. */
#ifndef IOMMUKIT_RAW_WIRE_H
#define IOMMUKIT_RAW_WIRE_H

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "iommukit_wire.h"

/* A raw connection to the service the shim uses (IOMMUKIT_SOCKET); -1 with errno. */
static inline int raw_connect(void)
{
	const char *path = getenv("IOMMUKIT_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || !path)
		return -1;
	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Sends one request on sock, with `pass` attached (SCM_RIGHTS) when >= 0. */
static inline int raw_send(int sock, uint32_t op, int32_t pid, int32_t tid, uint32_t cmd, uint64_t arg, uint64_t len,
		    int pass)
{
	struct ikd_request rq = { op, pid, tid, cmd, arg, len };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
	struct iovec iov = { &rq, sizeof(rq) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (pass >= 0) {
		memset(&c, 0, sizeof(c));
		m.msg_control = c.buf, m.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pass, sizeof(int));
	}
	return sendmsg(sock, &m, MSG_NOSIGNAL) == sizeof(rq) ? 0 : -1;
}

/* A reply channel for the calling thread, registered as the shim registers one (CHANNEL
 * with its own end attached, then a blocking receive of the answer, where the service
 * sees the thread waiting); -1 when refused. */
static inline int raw_channel(void)
{
	struct ikd_reply rp;
	int c = raw_connect();
	if (c < 0 || raw_send(c, IKD_OP_CHANNEL, getpid(), gettid(), 0, 0, 0, c) != 0)
		return -1;
	if (recv(c, &rp, sizeof(rp), 0) != sizeof(rp) || rp.err) {
		close(c);
		return -1;
	}
	return c;
}

/* Waits up to ms for one reply on sock: 1 with *out filled, 0 time-out, -1 hang-up. */
static inline int raw_reply(int sock, struct ikd_reply *out, int ms)
{
	struct pollfd p = { sock, POLLIN, 0 };
	if (poll(&p, 1, ms) != 1)
		return 0;
	ssize_t n = recv(sock, out, sizeof(*out), MSG_DONTWAIT);
	if (n == sizeof(*out))
		return 1;
	return n == 0 ? -1 : 0;
}

#endif
