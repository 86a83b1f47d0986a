/* SIGTERM ends the service within a second, even while it is in the middle of
 * requests: here one that waits for a client which never answers the upcall installing
 * a new file in it, and a 64 MiB map into a mock domain (which took the service of old
 * many seconds). The socket is gone afterwards. Starts a service of its own
 * (IOMMUKIT_TEST_DAEMON) on a private socket. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "raw_wire.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define BIG (64ul << 20)

/* A big map into a mock domain (pins every page), on a thread of its own. */
static void *big_map(void *unused)
{
	(void)unused;
	int f = open("/dev/iommu", O_RDWR);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	if (f < 0 || ioctl(f, IOMMU_IOAS_ALLOC, &a))
		return NULL;
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_MOCK_DOMAIN, t.id = a.out_ioas_id;
	if (ioctl(f, IOMMU_TEST_CMD, &t))
		return NULL;
	char *buf = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 1, BIG);
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, a.out_ioas_id, 0,
				    (uintptr_t)buf, BIG, 0 };
	ioctl(f, IOMMU_IOAS_MAP, &m);
	return NULL;
}

int main(void)
{
	char dir[] = "/tmp/iommukit-sigterm-XXXXXX", sock[128];
	alarm(60);
	CHECK(getenv("IOMMUKIT_TEST_DAEMON") != NULL);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/iommukitd.sock", dir);
	setenv("IOMMUKIT_SOCKET", sock, 1);
	setenv("IOMMUKIT_DAEMON", getenv("IOMMUKIT_TEST_DAEMON") ? getenv("IOMMUKIT_TEST_DAEMON") : "", 1);
	setenv("IOMMUKIT_LOG", "/dev/null", 1);
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct ucred cr = { 0, 0, 0 };
	socklen_t l = sizeof(cr);
	CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l));
	int pidfd = (int)syscall(SYS_pidfd_open, cr.pid, 0);
	CHECK(pidfd >= 0);

	int ready[2];
	CHECK_OK(pipe(ready));
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		int f = open("/dev/iommu", O_RDWR);
		struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
		if (f < 0 || ioctl(f, IOMMU_IOAS_ALLOC, &a))
			_exit(2);
		static struct iommu_test_cmd t;
		t.size = sizeof(t), t.op = IOMMU_TEST_OP_CREATE_ACCESS, t.id = a.out_ioas_id;
		pthread_t big;
		pthread_create(&big, NULL, big_map, NULL);
		usleep(300000);                  /* the map is under way */
		/* The INSTALL upcall comes on a channel of our own that nobody reads. */
		int chan = raw_channel();
		if (chan < 0)
			_exit(4);
		raw_send(chan, IKD_OP_IOCTL, getpid(), gettid(), IOMMU_TEST_CMD, (uintptr_t)&t, 0, f);
		usleep(100000);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		sleep(30);
		_exit(0);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	double t0 = now();
	CHECK_OK(kill(cr.pid, SIGTERM));
	struct pollfd pf = { pidfd, POLLIN, 0 };
	CHECK(poll(&pf, 1, 10000) == 1);
	double dt = now() - t0;
	printf("the service ended %.0f ms after SIGTERM\n", dt * 1e3);
	CHECK(dt < 1.0);
	struct stat st;
	CHECK(stat(sock, &st) != 0 && errno == ENOENT);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	rmdir(dir);
	return ck_summary();
}
