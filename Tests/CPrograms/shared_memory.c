/* One page, one frame: memory a program shares through an object is one object in the
 * service, however it is reached.
 *  - A memfd handed to IOAS_MAP_FILE and the program's own MAP_SHARED mapping of it: the
 *    mock domain points at the very pages of that mapping (MD_CHECK_MAP), and an access
 *    pins those same pages (ACCESS_PAGES checks each against uptr).
 *  - Shared anonymous memory inherited across fork: pages a child mapped and pinned are
 *    the parent's pages too; after the child exits they still show what the parent
 *    stores, and device writes still reach the parent.
 *  - A pin from the mm of a child that has exited fails with EFAULT, even right after
 *    the exit (the parent attaches a domain to an IOAS the child mapped into).
 * IOMMUKIT_REPEAT=N runs the fork cases N times. */
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
#define SIZE (16 * PAGE)
#define IOVA ((uint64_t)MOCK_APERTURE_START)

static int fd;

static int test_cmd(struct iommu_test_cmd *c, uint32_t op, uint32_t id)
{
	c->size = sizeof(*c), c->op = op, c->id = id;
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

static uint32_t alloc_ioas(void)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	return ioctl(fd, IOMMU_IOAS_ALLOC, &a) == 0 ? a.out_ioas_id : 0;
}

static uint32_t mock_domain(uint32_t ioas)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	return test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN, ioas) == 0 ? t.mock_domain.out_hwpt_id : 0;
}

static int check_map(uint32_t hwpt, uint64_t iova, void *uptr, uint64_t len)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.check_map.iova = iova, t.check_map.length = len, t.check_map.uptr = (uintptr_t)uptr;
	return test_cmd(&t, IOMMU_TEST_OP_MD_CHECK_MAP, hwpt);
}

static int access_rw(int access, uint64_t iova, void *buf, uint64_t len, int write)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = iova, t.access_rw.length = len, t.access_rw.uptr = (uintptr_t)buf;
	t.access_rw.flags = write ? MOCK_ACCESS_RW_WRITE : 0;
	return test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)access);
}

static int create_access(uint32_t ioas, uint32_t flags)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.create_access.flags = flags;
	return test_cmd(&t, IOMMU_TEST_OP_CREATE_ACCESS, ioas) == 0 ? (int)t.create_access.out_access_fd : -1;
}

static void memfd_and_map_file(void)
{
	int mfd = memfd_create("shared", 0);
	CHECK(mfd >= 0 && ftruncate(mfd, SIZE) == 0);
	char *mine = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(mine != MAP_FAILED);
	memset(mine, 0x11, SIZE);
	uint32_t ioas = alloc_ioas();
	uint32_t hwpt = mock_domain(ioas);
	struct iommu_ioas_map_file mf = { sizeof(mf), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
					  IOMMU_IOAS_MAP_WRITEABLE, ioas, mfd, 0, SIZE, IOVA };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	/* The domain's pages are the pages of our own mapping of the memfd. */
	CHECK_OK(check_map(hwpt, IOVA, mine, SIZE));
	CHECK_OK(check_map(hwpt, IOVA + 3 * PAGE, mine + 3 * PAGE, PAGE));
	/* An access pins those very pages (the kernel checks each against uptr). */
	int a = create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
	CHECK(a >= 0);
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.access_pages.iova = IOVA + PAGE, t.access_pages.length = 4 * PAGE, t.access_pages.uptr = (uintptr_t)(mine + PAGE);
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_ACCESS_PAGES, (uint32_t)a));
	uint32_t pages_id = t.access_pages.out_access_pages_id;
	memset(&t, 0, sizeof(t));
	t.destroy_access_pages.access_pages_id = pages_id;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, (uint32_t)a));
	/* A device write through the MAP_FILE IOVA shows in our mapping, and back. */
	CHECK_OK(access_rw(a, IOVA + 5 * PAGE + 9, "frame", 6, 1));
	CHECK(!memcmp(mine + 5 * PAGE + 9, "frame", 6));
	strcpy(mine + 7 * PAGE, "cpu store");
	char got[16] = { 0 };
	CHECK_OK(access_rw(a, IOVA + 7 * PAGE, got, 10, 0));
	CHECK(!strcmp(got, "cpu store"));
	close(a);
	struct iommu_destroy d = { sizeof(d), ioas };
	struct iommu_ioas_unmap u = { sizeof(u), ioas, 0, UINT64_MAX };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	(void)d;
	munmap(mine, SIZE);
	close(mfd);
}

/* The child maps `buf` (shared anonymous, inherited) into `ioas` and exits at once. */
static void child_maps_and_exits(uint32_t ioas, char *buf)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
					    IOMMU_IOAS_MAP_WRITEABLE, ioas, 0, (uintptr_t)buf, SIZE, IOVA };
		_exit(ioctl(fd, IOMMU_IOAS_MAP, &m) == 0 ? 0 : 1);
	}
	int status = 0;
	CHECK(waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void fork_shared_anonymous(void)
{
	char *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED);
	memset(buf, 0x22, SIZE);

	/* With a domain: the child's map pins; the pages are ours too, and stay so. */
	uint32_t ioas = alloc_ioas();
	uint32_t hwpt = mock_domain(ioas);
	int a = create_access(ioas, 0);
	child_maps_and_exits(ioas, buf);
	CHECK_OK(check_map(hwpt, IOVA, buf, SIZE));
	for (int round = 0; round < 3; round++) {
		char want[32], got[32] = { 0 };
		snprintf(want, sizeof(want), "parent wrote %d", round);
		strcpy(buf + 2 * PAGE + 100, want);
		CHECK_OK(access_rw(a, IOVA + 2 * PAGE + 100, got, strlen(want) + 1, 0));
		CHECK(!strcmp(got, want));
	}
	CHECK_OK(access_rw(a, IOVA + 9 * PAGE, "device", 7, 1));
	CHECK(!memcmp(buf + 9 * PAGE, "device", 7));
	close(a);

	/* Without a domain nothing was pinned; pinning now, from the dead child's mm: EFAULT. */
	uint32_t ioas2 = alloc_ioas();
	child_maps_and_exits(ioas2, buf);
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	CHECK_ERRNO(EFAULT, test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN, ioas2));
	munmap(buf, SIZE);
}

int main(void)
{
	int rounds = getenv("IOMMUKIT_REPEAT") ? atoi(getenv("IOMMUKIT_REPEAT")) : 1;
	alarm(120);
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	memfd_and_map_file();
	for (int i = 0; i < (rounds > 0 ? rounds : 1); i++)
		fork_shared_anonymous();
	return ck_summary();
}
