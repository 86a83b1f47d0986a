/* Who a request comes from is the kernel's word, not the packet's. Three attacks from
 * the service's own history, each of which must now fail:
 *  - a process that names another process's pid (the service would read and write the
 *    victim's memory and take its fds as if the victim had asked);
 *  - a process that registers a reply channel for another process's thread (the
 *    victim would hang and the attacker would receive its replies and fds);
 *  - a process of another user (uid 65534 against this root program) that reaches the
 *    service, by its socket or through an fd it was handed.
 * Each refusal is EPERM (EACCES for a connect the socket's permissions refuse), the
 * victim's own calls carry on, and the service logs the attempt (ServiceTests checks). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "raw_wire.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

static int fd;
static pid_t victim;
static char secret[64] = "the victim's secret";

static uint32_t alloc_ioas(void)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	return ioctl(fd, IOMMU_IOAS_ALLOC, &a) == 0 ? a.out_ioas_id : 0;
}

/* Runs body in a child; the child's failed checks fail the parent's one check. */
static void in_child(const char *what, void (*body)(void))
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		alarm(20);
		body();
		fflush(stdout);
		_exit(ck_failed ? 1 : 0);
	}
	int status = 0;
	CHECK(waitpid(p, &status, 0) == p);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		printf("FAIL: %s (child status 0x%x)\n", what, status);
		ck_failed++;
	} else {
		ck_passed++;
	}
}

/* An OPEN and an IOCTL that name the victim's pid: refused on the connection they came
 * on, nothing done in the victim's name. */
static void claim_foreign_pid(void)
{
	struct ikd_reply rp;
	int c = raw_connect();
	CHECK(c >= 0);
	CHECK_OK(raw_send(c, IKD_OP_OPEN, victim, victim, IKD_OPEN_IOMMU, 0, 0, -1));
	CHECK(raw_reply(c, &rp, 3000) == 1 && rp.err == EPERM);
	/* On the inherited iommufd, pointing at the victim's memory. */
	CHECK_OK(raw_send(fd, IKD_OP_IOCTL, victim, victim, IOMMU_IOAS_ALLOC, (uintptr_t)secret, 0, -1));
	CHECK(raw_reply(fd, &rp, 3000) == 1 && rp.err == EPERM);
	/* The fail-nth knob "as" the victim. */
	int k = raw_connect();
	CHECK_OK(raw_send(k, IKD_OP_OPEN, victim, victim, IKD_OPEN_FAIL_NTH, 0, (uint64_t)victim, -1));
	CHECK(raw_reply(k, &rp, 3000) == 1 && rp.err == EPERM);
	close(k);
	close(c);
}

/* A reply channel for the victim's thread: refused, however it is attempted; the
 * attacker's socket receives nothing meant for the victim. */
static void hijack_channel(void)
{
	struct ikd_reply rp;
	int sp[2];
	CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp));
	/* The old way: any request with an fd attached, naming the victim. */
	CHECK_OK(raw_send(fd, IKD_OP_IOCTL, victim, victim, IOMMU_IOAS_ALLOC, 0, 0, sp[1]));
	CHECK(raw_reply(fd, &rp, 3000) == 1 && rp.err == EPERM);
	/* A CHANNEL naming the victim's pid and tid. */
	int c = raw_connect();
	CHECK_OK(raw_send(c, IKD_OP_CHANNEL, victim, victim, 0, 0, 0, c));
	CHECK(raw_reply(c, &rp, 3000) == 1 && rp.err == EPERM);
	close(c);
	/* Our own pid with the victim's tid: not a thread of ours. */
	c = raw_connect();
	CHECK_OK(raw_send(c, IKD_OP_CHANNEL, getpid(), victim, 0, 0, 0, c));
	CHECK(raw_reply(c, &rp, 5000) == 1 && rp.err == EPERM);
	close(c);
	/* Tell the victim to make its calls now; whatever comes must not reach us. */
	char go = 1;
	CHECK(write(100, &go, 1) == 1);
	struct pollfd p = { sp[0], POLLIN, 0 };
	CHECK(poll(&p, 1, 1000) == 0);
}

/* uid 65534: the socket refuses the connection, the shim's open fails, and a request
 * on an fd the root victim handed over is refused. */
static void other_user(void)
{
	struct ikd_reply rp;
	if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
		printf("FAIL: cannot become uid 65534 (%s)\n", strerror(errno));
		ck_failed++;
		return;
	}
	errno = 0;
	CHECK(raw_connect() == -1 && errno == EACCES);
	CHECK_ERRNO(EACCES, open("/dev/iommu", O_RDWR));
	CHECK_OK(raw_send(fd, IKD_OP_IOCTL, getpid(), getpid(), IOMMU_IOAS_ALLOC, (uintptr_t)secret, 0, -1));
	CHECK(raw_reply(fd, &rp, 3000) == 1 && rp.err == EPERM);
}

int main(void)
{
	alarm(60);
	victim = getpid();
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK(alloc_ioas() != 0);

	in_child("a request naming another process's pid", claim_foreign_pid);
	CHECK(alloc_ioas() != 0);

	/* The hijacker signals on fd 100 when the victim should call. */
	int go[2];
	CHECK_OK(pipe(go));
	CHECK(dup2(go[1], 100) == 100);
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		alarm(20);
		hijack_channel();
		fflush(stdout);
		_exit(ck_failed ? 1 : 0);
	}
	char b;
	CHECK(read(go[0], &b, 1) == 1);
	for (int i = 0; i < 20; i++)
		CHECK(alloc_ioas() != 0);
	int status = 0;
	CHECK(waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(100);

	if (geteuid() == 0)
		in_child("another user", other_user);
	else
		printf("not root: the uid 65534 case needs root to switch users; it ran as uid %u\n", geteuid());
	CHECK(alloc_ioas() != 0);
	printf("victim pid %d\n", victim);
	return ck_summary();
}
