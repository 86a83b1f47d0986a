/* Concurrent callers on one shared iommufd: after fork, parent and child each run two
 * threads, and all four hammer the same fd at once. Each thread owns an IOAS with its
 * own allowed range and alternates a query that must return exactly that range with one
 * that must fail with ENOENT, so a reply that reached the wrong caller (another
 * thread's range, or an errno meant for someone else) is caught by the next check. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define ROUNDS 1500

static int fd;

struct worker { int index; uint32_t ioas; int bad; };

static void *hammer(void *p)
{
	struct worker *w = p;
	uint64_t start = ((uint64_t)w->index + 1) << 20, last = UINT64_MAX;
	for (int i = 0; i < ROUNDS; i++) {
		struct iommu_iova_range got = { 0, 0 };
		struct iommu_ioas_iova_ranges r = { sizeof(r), w->ioas, 1, 0, (uintptr_t)&got, 0 };
		if (ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r) != 0 || r.num_iovas != 1 || got.start != start ||
		    got.last != last)
			w->bad++;
		/* An IOAS id nobody has: ENOENT for us, whatever the others are doing. */
		struct iommu_destroy d = { sizeof(d), 0x7fff0000u + (uint32_t)w->index };
		errno = 0;
		if (ioctl(fd, IOMMU_DESTROY, &d) != -1 || errno != ENOENT)
			w->bad++;
	}
	return NULL;
}

/* Two threads of this process, each with its own IOAS; returns the failed rounds. */
static int run_pair(int first)
{
	struct worker w[2];
	pthread_t t[2];
	for (int k = 0; k < 2; k++) {
		struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
		w[k].index = first + k, w[k].bad = 0;
		CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
		w[k].ioas = a.out_ioas_id;
		/* Reserve [0, (index + 1) MiB): the only hole then starts there. */
		struct iommu_test_cmd t;
		memset(&t, 0, sizeof(t));
		t.size = sizeof(t), t.op = IOMMU_TEST_OP_ADD_RESERVED, t.id = w[k].ioas;
		t.add_reserved.start = 0, t.add_reserved.length = ((uint64_t)w[k].index + 1) << 20;
		CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &t));
	}
	for (int k = 0; k < 2; k++)
		CHECK(pthread_create(&t[k], NULL, hammer, &w[k]) == 0);
	for (int k = 0; k < 2; k++)
		CHECK(pthread_join(t[k], NULL) == 0);
	for (int k = 0; k < 2; k++) {
		if (w[k].bad)
			printf("thread %d of pid %d: %d of %d calls got a wrong result\n", w[k].index, getpid(),
			       w[k].bad, 2 * ROUNDS);
		CHECK(w[k].bad == 0);
	}
	return w[0].bad + w[1].bad;
}

int main(void)
{
	int go[2];
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK_OK(pipe(go));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		/* Start together with the parent. */
		if (read(go[0], &c, 1) != 1)
			_exit(101);
		ck_passed = 0; /* the child reports only its own checks */
		run_pair(2);
		_exit(ck_failed ? 100 + ck_failed : ck_passed);
	}
	CHECK(write(go[1], "g", 1) == 1);
	run_pair(0);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) > 0 && WEXITSTATUS(status) < 100);
	if (WIFEXITED(status) && WEXITSTATUS(status) < 100)
		ck_passed += WEXITSTATUS(status);
	/* Still one context: the child's objects are visible to the parent. */
	struct iommu_destroy d = { sizeof(d), 0 };
	for (uint32_t id = 1; id < 64; id++) {
		d.id = id;
		ioctl(fd, IOMMU_DESTROY, &d);
	}
	CHECK_OK(close(fd));
	return ck_summary();
}
