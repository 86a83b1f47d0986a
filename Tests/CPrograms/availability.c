/* One client must never hang the service, or take it down, for the others. Five
 * misbehaving clients run next to a well-behaved one:
 *  - one that floods requests and never reads its replies;
 *  - one that sends garbage;
 *  - one that claims a foreign pid;
 *  - one that hits an old trap in the model (IOAS_MAP at IOVA 2^64-4096, then
 *    unmap: an overflow that once killed the service);
 *  - one that never answers the upcall installing a new file in it.
 * The well-behaved client's every result stays right and no call of it waits long;
 * the service is still there at the end. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "raw_wire.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096ul
#define MISBEHAVE_SECONDS 3

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void never_reads(void)
{
	int fd = open("/dev/iommu", O_RDWR);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	if (fd < 0 || ioctl(fd, IOMMU_IOAS_ALLOC, &a))
		_exit(2);
	/* Requests the shim would have waited for, one after the other, replies unread. */
	int chan = raw_channel();
	if (chan < 0)
		_exit(3);
	for (int i = 0; i < 4000; i++)
		if (raw_send(chan, IKD_OP_IOCTL, getpid(), gettid(), IOMMU_IOAS_ALLOC, (uintptr_t)&a, 0, fd))
			break;       /* the service hung up on us: what it does to a client that never reads */
	sleep(MISBEHAVE_SECONDS);
}

static void garbage(void)
{
	double end = now() + MISBEHAVE_SECONDS;
	while (now() < end) {
		int c = raw_connect();
		char junk[13] = "not a packet";
		if (c >= 0) {
			send(c, junk, sizeof(junk), MSG_NOSIGNAL);
			close(c);
		}
		usleep(2000);
	}
}

static void foreign_pid(void)
{
	double end = now() + MISBEHAVE_SECONDS;
	while (now() < end) {
		int c = raw_connect();
		if (c >= 0) {
			raw_send(c, IKD_OP_OPEN, 1, 1, IKD_OPEN_IOMMU, 0, 0, -1);
			close(c);
		}
		usleep(2000);
	}
}

static void old_trap(void)
{
	int fd = open("/dev/iommu", O_RDWR);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	if (fd < 0 || ioctl(fd, IOMMU_IOAS_ALLOC, &a))
		_exit(2);
	char *buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	buf[0] = 1;
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, a.out_ioas_id, 0,
				    (uintptr_t)buf, PAGE, 0xFFFFFFFFFFFFF000ull };
	struct iommu_ioas_unmap u = { sizeof(u), a.out_ioas_id, 0, UINT64_MAX };
	if (ioctl(fd, IOMMU_IOAS_MAP, &m) == 0)
		ioctl(fd, IOMMU_IOAS_UNMAP, &u);     /* whatever it answers, the service lives */
	close(fd);
}

static void never_answers_upcall(void)
{
	int fd = open("/dev/iommu", O_RDWR);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	if (fd < 0 || ioctl(fd, IOMMU_IOAS_ALLOC, &a))
		_exit(2);
	static struct iommu_test_cmd t;
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_CREATE_ACCESS, t.id = a.out_ioas_id;
	/* The INSTALL upcall comes on this channel, which nobody reads. */
	int chan = raw_channel();
	if (chan < 0)
		_exit(3);
	raw_send(chan, IKD_OP_IOCTL, getpid(), gettid(), IOMMU_TEST_CMD, (uintptr_t)&t, 0, fd);
	sleep(MISBEHAVE_SECONDS);
}

int main(void)
{
	void (*bad[])(void) = { never_reads, garbage, foreign_pid, old_trap, never_answers_upcall };
	enum { NBAD = sizeof(bad) / sizeof(bad[0]) };
	pid_t kids[NBAD];
	alarm(60);

	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	/* Reserve [0, 5 MiB): the only allowed range then starts there. */
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_ADD_RESERVED, t.id = a.out_ioas_id;
	t.add_reserved.start = 0, t.add_reserved.length = 5ul << 20;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &t));

	fflush(stdout);
	for (int k = 0; k < NBAD; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			close(fd);
			bad[k]();
			_exit(0);
		}
	}
	/* The well-behaved client, while the others misbehave. */
	double worst = 0, start = now();
	int calls = 0, wrong = 0;
	while (now() - start < MISBEHAVE_SECONDS + 1.0) {
		struct iommu_iova_range got = { 0, 0 };
		struct iommu_ioas_iova_ranges r = { sizeof(r), a.out_ioas_id, 1, 0, (uintptr_t)&got, 0 };
		double t0 = now();
		int rc = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r);
		double dt = now() - t0;
		if (dt > worst)
			worst = dt;
		if (rc != 0 || r.num_iovas != 1 || got.start != (5ul << 20) || got.last != UINT64_MAX)
			wrong++;
		calls++;
		usleep(500);
	}
	CHECK(wrong == 0);
	CHECK(calls > 100);
	printf("well-behaved client: %d calls, %d wrong, slowest %.1f ms\n", calls, wrong, worst * 1e3);
	CHECK(worst < 1.0);
	for (int k = 0; k < NBAD; k++) {
		int status;
		kill(kids[k], SIGKILL);
		CHECK(waitpid(kids[k], &status, 0) == kids[k]);
	}
	/* The service is still there, for old and new clients. */
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	int f2 = open("/dev/iommu", O_RDWR);
	CHECK(f2 >= 0);
	CHECK_OK(ioctl(f2, IOMMU_IOAS_ALLOC, &a));
	return ck_summary();
}
