/* Release on close: closing the last reference to a file the service serves (a
 * selftest access, a fault queue, the iommufd itself) has finished its release when
 * close() returns, as the kernel's file release does; dup, dup2, fork and exit keep
 * their meaning. A race here shows up as an EBUSY that depends on timing, so
 * IOMMUKIT_REPEAT=N runs everything N times (ServiceTests runs it many times). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096ul

static int fd;

static uint32_t alloc_ioas(int on)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	return ioctl(on, IOMMU_IOAS_ALLOC, &a) == 0 ? a.out_ioas_id : 0;
}

static int destroy(uint32_t id)
{
	struct iommu_destroy d = { sizeof(d), id };
	return ioctl(fd, IOMMU_DESTROY, &d);
}

static int create_access(uint32_t ioas)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_CREATE_ACCESS, t.id = ioas;
	return ioctl(fd, IOMMU_TEST_CMD, &t) == 0 ? (int)t.create_access.out_access_fd : -1;
}

/* VmPin of this process in kB, as /proc/self/status shows it with the model's pins. */
static long vm_pin_kb(void)
{
	char text[8192] = { 0 };
	int f = open("/proc/self/status", O_RDONLY);
	if (f < 0)
		return -1;
	ssize_t n = read(f, text, sizeof(text) - 1);
	close(f);
	char *p = n > 0 ? strstr(text, "VmPin:") : NULL;
	return p ? strtol(p + 6, NULL, 10) : -1;
}

static void once(void)
{
	/* An access closed, then the IOAS it held destroyed at once. */
	uint32_t ioas = alloc_ioas(fd);
	int a = create_access(ioas);
	CHECK(a >= 0);
	CHECK_OK(close(a));
	CHECK_OK(destroy(ioas));

	/* dup: the file lives until its last fd goes. */
	ioas = alloc_ioas(fd);
	a = create_access(ioas);
	int b = dup(a);
	CHECK(b >= 0);
	CHECK_OK(close(a));
	CHECK_ERRNO(EBUSY, destroy(ioas));
	CHECK_OK(close(b));
	CHECK_OK(destroy(ioas));

	/* dup2 over the last fd of an access closes it. */
	ioas = alloc_ioas(fd);
	a = create_access(ioas);
	int null = open("/dev/null", O_RDONLY);
	CHECK(dup2(null, a) == a);
	CHECK_OK(destroy(ioas));
	close(a);
	close(null);

	/* fork: the child's copy keeps the access until the child exits; the parent's
	 * wait() returns after the release. */
	int go[2];
	CHECK_OK(pipe(go));
	ioas = alloc_ioas(fd);
	a = create_access(ioas);
	pid_t p = fork();
	if (p == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	CHECK_OK(close(a));
	CHECK_ERRNO(EBUSY, destroy(ioas));
	CHECK(write(go[1], "x", 1) == 1);
	close(go[1]);
	int status;
	CHECK(waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_OK(destroy(ioas));

	/* A fault queue: its FAULT object is free to destroy once the fd is closed. */
	struct iommu_fault_alloc fa = { sizeof(fa), 0, 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));
	CHECK_ERRNO(EBUSY, destroy(fa.out_fault_id));
	CHECK_OK(close((int)fa.out_fault_fd));
	CHECK_OK(destroy(fa.out_fault_id));

	/* The iommufd itself: its pins are gone when close returns. */
	int f2 = open("/dev/iommu", O_RDWR);
	CHECK(f2 >= 0);
	uint32_t ioas2 = alloc_ioas(f2);
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_MOCK_DOMAIN, t.id = ioas2;
	CHECK_OK(ioctl(f2, IOMMU_TEST_CMD, &t));
	char *buf = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 1, 16 * PAGE);
	long before = vm_pin_kb();
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas2, 0,
				    (uintptr_t)buf, 16 * PAGE, 0 };
	CHECK_OK(ioctl(f2, IOMMU_IOAS_MAP, &m));
	CHECK(vm_pin_kb() == before + 64);
	CHECK_OK(close(f2));
	CHECK(vm_pin_kb() == before);
	munmap(buf, 16 * PAGE);
}

int main(void)
{
	int rounds = getenv("IOMMUKIT_REPEAT") ? atoi(getenv("IOMMUKIT_REPEAT")) : 1;
	alarm(120);
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	for (int i = 0; i < (rounds > 0 ? rounds : 1); i++)
		once();
	printf("%d rounds\n", rounds > 0 ? rounds : 1);
	return ck_summary();
}
