/* mmap of an iommufd: a vIOMMU of the selftest type allocated with driver data offers a
 * region at out_mmap_offset / out_mmap_length holding in_data. Only that exact offset
 * and length map (ENXIO otherwise); the mapping holds the vIOMMU (IOMMU_DESTROY is
 * EBUSY) until every piece of it is unmapped, and it outlives close() of the fd. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096UL

static int fd;

static int destroy(uint32_t id)
{
	struct iommu_destroy d = { sizeof(d), id };
	return ioctl(fd, IOMMU_DESTROY, &d);
}

static uint32_t *map(size_t len, int prot, int flags, uint64_t off)
{
	return mmap(NULL, len, prot, flags, fd, (off_t)off);
}

int main(void)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	struct iommu_test_cmd t;
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_MOCK_DOMAIN, t.id = a.out_ioas_id;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &t));
	uint32_t idev = t.mock_domain.out_idev_id;
	struct iommu_hwpt_alloc parent = { sizeof(parent), IOMMU_HWPT_ALLOC_NEST_PARENT, idev, a.out_ioas_id };
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &parent));

	struct iommu_viommu_selftest data = { .in_data = 0xbeef };
	struct iommu_viommu_alloc v = { sizeof(v), 0, IOMMU_VIOMMU_TYPE_SELFTEST, idev, parent.out_hwpt_id };
	v.data_len = sizeof(data), v.data_uptr = (uintptr_t)&data;
	CHECK_OK(ioctl(fd, IOMMU_VIOMMU_ALLOC, &v));
	CHECK(data.out_data == 0xbeef);
	CHECK(data.out_mmap_length == 2 * PAGE && data.out_mmap_offset % PAGE == 0 && data.out_mmap_offset != 0);
	uint64_t off = data.out_mmap_offset, len = data.out_mmap_length;

	/* iommufd_fops_mmap's checks, then the region must be the offset and length given. */
	CHECK_ERRNO(EINVAL, (long)map(len, PROT_READ, MAP_PRIVATE, off));
	CHECK_ERRNO(EPERM, (long)map(len, PROT_READ | PROT_EXEC, MAP_SHARED, off));
	CHECK_ERRNO(ENXIO, (long)map(len, PROT_READ | PROT_WRITE, MAP_SHARED, off + PAGE));
	CHECK_ERRNO(ENXIO, (long)map(len, PROT_READ | PROT_WRITE, MAP_SHARED, off + 2 * PAGE));
	CHECK_ERRNO(ENXIO, (long)map(len / 2, PROT_READ | PROT_WRITE, MAP_SHARED, off));
	CHECK_ERRNO(ENXIO, (long)map(len * 2, PROT_READ | PROT_WRITE, MAP_SHARED, off));
	CHECK_ERRNO(EINVAL, (long)map(len, PROT_READ | PROT_WRITE, MAP_SHARED, off + 1));

	/* The loopback: the region holds in_data, and the mapping holds the vIOMMU. */
	uint32_t *p = map(len, PROT_READ | PROT_WRITE, MAP_SHARED, off);
	CHECK(p != MAP_FAILED);
	if (p == MAP_FAILED)
		return ck_summary();
	CHECK(p[0] == 0xbeef);
	CHECK_ERRNO(EBUSY, destroy(v.out_viommu_id));
	uint32_t *q = map(len, PROT_READ, MAP_SHARED, off);
	CHECK(q != MAP_FAILED && q[0] == 0xbeef);
	CHECK_OK(munmap(q, len));
	CHECK_ERRNO(EBUSY, destroy(v.out_viommu_id));

	/* A forked child reads it and unmaps its own copy only. */
	pid_t child = fork();
	if (child == 0)
		_exit(p[0] == 0xbeef && munmap(p, len) == 0 ? 0 : 1);
	int status = -1;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(p[0] == 0xbeef);
	CHECK_ERRNO(EBUSY, destroy(v.out_viommu_id));

	/* Every piece holds it: with the first page unmapped the second still does. */
	CHECK_OK(munmap(p, PAGE));
	CHECK_ERRNO(EBUSY, destroy(v.out_viommu_id));
	CHECK_OK(munmap((char *)p + PAGE, PAGE));
	CHECK_OK(destroy(v.out_viommu_id));

	/* A mapping outlives close() of the fd, as the VMA holds the file. */
	data.in_data = 0x1234;
	CHECK_OK(ioctl(fd, IOMMU_VIOMMU_ALLOC, &v));
	p = map(data.out_mmap_length, PROT_READ, MAP_SHARED, data.out_mmap_offset);
	CHECK(p != MAP_FAILED);
	CHECK_OK(close(fd));
	if (p != MAP_FAILED) {
		CHECK(p[0] == 0x1234);
		CHECK_OK(munmap(p, data.out_mmap_length));
	}
	return ck_summary();
}
