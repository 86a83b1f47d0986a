/* A fail-nth sweep in the style of the kernel's iommufd_fail_nth: the debugfs
 * fault-injection knobs are set, then a scenario runs with /proc/self/task/<tid>/fail-nth
 * armed with N = 1, 2, 3… until the read-back shows the Nth point was never reached.
 * Every run must leave nothing pinned once its iommufd is closed, and the last run (no
 * injection) must succeed. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096ul
#define BUFSZ (64 * PAGE)

static int fd, nth_fd;
static uint8_t *buffer;

static int test_cmd(struct iommu_test_cmd *c, uint32_t op, uint32_t id)
{
	c->size = sizeof(*c), c->op = op, c->id = id;
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

static int write_knob(const char *path, const char *value)
{
	int k = open(path, O_WRONLY);
	if (k < 0)
		return -1;
	int ok = write(k, value, strlen(value)) == (ssize_t)strlen(value);
	close(k);
	return ok ? 0 : -1;
}

static void fail_nth_set(unsigned n)
{
	char b[16];
	int l = snprintf(b, sizeof(b), "%u", n);
	if (pwrite(nth_fd, b, (size_t)l, 0) != l)
		printf("fail-nth write failed\n");
}

static unsigned fail_nth_left(void)
{
	char b[16] = { 0 };
	if (pread(nth_fd, b, sizeof(b) - 1, 0) <= 0)
		return 999;
	return (unsigned)strtoul(b, NULL, 0);
}

/* The scenario: returns 0, or the errno of the first step that failed. */
static int scenario(void)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 }, a2 = { sizeof(a2), 0, 0 };
	struct iommu_iova_range ranges[10];
	struct iommu_test_cmd t;
#define STEP(x) do { if ((x) < 0) return errno; } while (0)
	STEP(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	struct iommu_ioas_iova_ranges r = { sizeof(r), a.out_ioas_id, 10, 0, (uintptr_t)ranges, 0 };
	STEP(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	memset(&t, 0, sizeof(t));
	t.memory_limit.limit = 32;
	STEP(test_cmd(&t, IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0));
	memset(&t, 0, sizeof(t));
	STEP(test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN, a.out_ioas_id));
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
				 a.out_ioas_id, 0, (uintptr_t)buffer, BUFSZ, MOCK_APERTURE_START };
	STEP(ioctl(fd, IOMMU_IOAS_MAP, &m));
	STEP(ioctl(fd, IOMMU_IOAS_ALLOC, &a2));
	struct iommu_ioas_copy cp = { sizeof(cp), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, a2.out_ioas_id,
				   a.out_ioas_id, 16 * PAGE, MOCK_APERTURE_START, MOCK_APERTURE_START };
	STEP(ioctl(fd, IOMMU_IOAS_COPY, &cp));
	memset(&t, 0, sizeof(t));
	STEP(test_cmd(&t, IOMMU_TEST_OP_CREATE_ACCESS, a2.out_ioas_id));
	int afd = (int)t.create_access.out_access_fd;
	char got[64];
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = MOCK_APERTURE_START + 5, t.access_rw.length = 64, t.access_rw.uptr = (uintptr_t)got;
	int rc = test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)afd);
	close(afd);
	STEP(rc);
	struct iommu_ioas_unmap u = { sizeof(u), a.out_ioas_id, MOCK_APERTURE_START, BUFSZ };
	STEP(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	return 0;
#undef STEP
}

/* Closing the context released every pin: a fresh context sees pin count 0. */
static int no_pins_left(void)
{
	struct iommu_test_cmd t;
	int saved = fd, rc;
	fd = open("/dev/iommu", O_RDWR);
	memset(&t, 0, sizeof(t));
	t.check_refs.length = BUFSZ, t.check_refs.uptr = (uintptr_t)buffer, t.check_refs.refs = 0;
	rc = test_cmd(&t, IOMMU_TEST_OP_MD_CHECK_REFS, 0);
	close(fd);
	fd = saved;
	return rc == 0;
}

int main(void)
{
	char path[64];
	buffer = mmap(NULL, BUFSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buffer, 0x5a, BUFSZ);

	/* The debugfs knobs the kernel's test sets (emulated by the shim). */
	CHECK_OK(write_knob("/sys/kernel/debug/failslab/ignore-gfp-wait", "N"));
	CHECK_OK(write_knob("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N"));
	CHECK_OK(write_knob("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N"));
	CHECK_OK(write_knob("/sys/kernel/debug/fail_iommufd/verbose", "0"));
	char v[8] = { 0 };
	int k = open("/sys/kernel/debug/fail_iommufd/verbose", O_RDONLY);
	CHECK(k >= 0 && read(k, v, sizeof(v) - 1) > 0 && v[0] == '0');
	close(k);

	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	nth_fd = open(path, O_RDWR);
	CHECK(nth_fd >= 0);
	CHECK_ERRNO(EINVAL, write(nth_fd, "x", 1));

	/* The scenario passes without injection. */
	fd = open("/dev/iommu", O_RDWR);
	CHECK(scenario() == 0);
	close(fd);

	unsigned n, fired = 0, failed_runs = 0, leaks = 0;
	int last_rc = -1;
	for (n = 1; n < 400; n++) {
		fd = open("/dev/iommu", O_RDWR);
		fail_nth_set(n);
		last_rc = scenario();
		unsigned left = fail_nth_left();
		fail_nth_set(0);
		close(fd);
		leaks += !no_pins_left();
		if (left != 0)
			break;
		fired++;
		failed_runs += last_rc != 0;
	}
	printf("fail-nth: %u injection points, %u runs failed, last run rc %d\n", fired, failed_runs, last_rc);
	CHECK(n < 400);
	CHECK(fired >= 10);
	CHECK(failed_runs >= fired / 2);
	CHECK(last_rc == 0);
	CHECK(leaks == 0);
	CHECK(fail_nth_left() == 0);
	close(nth_fd);
	return ck_summary();
}
