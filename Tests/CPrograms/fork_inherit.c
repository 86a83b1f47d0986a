/* fork(): the child inherits the iommufd and uses it (the same context: objects made
 * by either are visible to both), its own memory is what it maps, pages it mapped stay
 * pinned and readable after it exits (a mock domain pinned them), and the context lives
 * until the last copy of the fd is closed. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096ul

static int fd;

static int test_cmd(struct iommu_test_cmd *c, uint32_t op, uint32_t id)
{
	c->size = sizeof(*c), c->op = op, c->id = id;
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

/* Reads `len` bytes at `iova` through a fresh access on `ioas`. */
static int access_read(uint32_t ioas, uint64_t iova, void *out, uint64_t len)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	if (test_cmd(&t, IOMMU_TEST_OP_CREATE_ACCESS, ioas))
		return -1;
	int afd = (int)t.create_access.out_access_fd;
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = iova, t.access_rw.length = len, t.access_rw.uptr = (uintptr_t)out;
	int rc = test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)afd);
	close(afd);
	return rc;
}

/* The child's checks; its counts go back to the parent through the exit status. */
static int child(uint32_t ioas, char *buffer, int pipe_w)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	char got[16] = { 0 };

	/* The parent's mapping is readable: those pages were pinned from the parent. */
	CHECK_OK(access_read(ioas, (MOCK_APERTURE_START + 0x100000), got, 12));
	CHECK(memcmp(got, "parent page", 12) == 0);
	/* The child's copy of the buffer is its own memory now. */
	strcpy(buffer, "child page!");
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas, 0,
				 (uintptr_t)buffer, PAGE, (MOCK_APERTURE_START + 0x200000) };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	CHECK_OK(access_read(ioas, (MOCK_APERTURE_START + 0x200000), got, 12));
	CHECK(memcmp(got, "child page!", 12) == 0);
	/* A new object in the shared context. */
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	CHECK(a.out_ioas_id > ioas);
	CHECK(write(pipe_w, &a.out_ioas_id, sizeof(a.out_ioas_id)) == sizeof(a.out_ioas_id));
	/* The child's close drops one reference; the parent's fd keeps the context. */
	CHECK_OK(close(fd));
	return ck_failed ? 100 + ck_failed : ck_passed;
}

int main(void)
{
	char *buffer = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	uint32_t ioas = a.out_ioas_id;
	/* A mock domain on the IOAS: every map is pinned at once. */
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_MOCK_DOMAIN, t.id = ioas;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &t));
	strcpy(buffer, "parent page");
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas, 0,
				 (uintptr_t)buffer, PAGE, (MOCK_APERTURE_START + 0x100000) };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	/* Pin it now (an access reads it), so the child finds the parent's pages. */
	char got[16] = { 0 };
	CHECK_OK(access_read(ioas, (MOCK_APERTURE_START + 0x100000), got, 12));

	int pfd[2];
	CHECK_OK(pipe(pfd));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child(ioas, buffer, pfd[1]));
	uint32_t child_ioas = 0;
	CHECK(read(pfd[0], &child_ioas, sizeof(child_ioas)) == sizeof(child_ioas));
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) > 0 && WEXITSTATUS(status) < 100);
	if (WIFEXITED(status) && WEXITSTATUS(status) < 100)
		ck_passed += WEXITSTATUS(status);

	/* The parent still has the context, the child's IOAS and both mappings: the child's
	 * page stays pinned after its exit and keeps what the child wrote. */
	struct iommu_destroy d = { sizeof(d), child_ioas };
	CHECK_OK(ioctl(fd, IOMMU_DESTROY, &d));
	CHECK_OK(access_read(ioas, (MOCK_APERTURE_START + 0x200000), got, 12));
	CHECK(memcmp(got, "child page!", 12) == 0);
	/* The parent's buffer was never the child's. */
	CHECK(strcmp(buffer, "parent page") == 0);
	struct iommu_ioas_unmap u = { sizeof(u), ioas, 0, UINT64_MAX };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	CHECK(u.length == 2 * PAGE);

	/* dup: one more reference to the same open file. */
	int fd2 = dup(fd);
	CHECK(fd2 >= 0);
	CHECK_OK(close(fd));
	fd = fd2;
	struct iommu_ioas_iova_ranges r = { sizeof(r), ioas, 0, 0, 0, 0 };
	CHECK_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	CHECK_OK(close(fd));
	return ck_summary();
}
