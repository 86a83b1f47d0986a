/* Size and dispatch rules of every modelled iommufd ioctl (`iommufd_fops_ioctl`): a NULL
 * argument is EFAULT, a size below min_size is EINVAL, non-zero bytes past the kernel's
 * sizeof are E2BIG, and numbers outside the table are ENOTTY. */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include "iommufd_test.h"

static const struct { unsigned long cmd; uint32_t size, min_size; const char *name; } table[] = {
	{ IOMMU_DESTROY, 8, 8, "DESTROY" },
	{ IOMMU_IOAS_ALLOC, 12, 12, "IOAS_ALLOC" },
	{ IOMMU_IOAS_ALLOW_IOVAS, 24, 24, "IOAS_ALLOW_IOVAS" },
	{ IOMMU_IOAS_COPY, 40, 40, "IOAS_COPY" },
	{ IOMMU_IOAS_IOVA_RANGES, 32, 32, "IOAS_IOVA_RANGES" },
	{ IOMMU_IOAS_MAP, 40, 40, "IOAS_MAP" },
	{ IOMMU_IOAS_UNMAP, 24, 24, "IOAS_UNMAP" },
	{ IOMMU_OPTION, 24, 24, "OPTION" },
	{ IOMMU_VFIO_IOAS, 12, 12, "VFIO_IOAS" },
	{ IOMMU_HWPT_ALLOC, 48, 24, "HWPT_ALLOC" },
	{ IOMMU_GET_HW_INFO, 40, 32, "GET_HW_INFO" },
	{ IOMMU_HWPT_SET_DIRTY_TRACKING, 16, 16, "HWPT_SET_DIRTY_TRACKING" },
	{ IOMMU_HWPT_GET_DIRTY_BITMAP, 48, 48, "HWPT_GET_DIRTY_BITMAP" },
	{ IOMMU_HWPT_INVALIDATE, 32, 32, "HWPT_INVALIDATE" },
	{ IOMMU_FAULT_QUEUE_ALLOC, 16, 16, "FAULT_QUEUE_ALLOC" },
	{ IOMMU_IOAS_CHANGE_PROCESS, 8, 8, "IOAS_CHANGE_PROCESS" },
	{ IOMMU_TEST_CMD, 72, 68, "TEST_CMD" },
};

int main(void)
{
	uint64_t buf[32];
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);

	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		/* 1. The leading u32 cannot be read. */
		CHECK_ERRNO(EFAULT, ioctl(fd, table[i].cmd, NULL));
		/* 2. Shorter than offsetofend(struct, last). */
		memset(buf, 0, sizeof(buf));
		*(uint32_t *)buf = table[i].min_size - 1;
		CHECK_ERRNO(EINVAL, ioctl(fd, table[i].cmd, buf));
		/* 3. Longer than the kernel's struct, with a non-zero byte past it. */
		memset(buf, 0, sizeof(buf));
		*(uint32_t *)buf = table[i].size + 8;
		((uint8_t *)buf)[table[i].size + 3] = 1;
		CHECK_ERRNO(E2BIG, ioctl(fd, table[i].cmd, buf));
	}

	/* A longer struct whose tail is zero behaves as the kernel's size. */
	memset(buf, 0, sizeof(buf));
	*(uint32_t *)buf = sizeof(struct iommu_ioas_alloc) + 16;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, buf));
	CHECK(((struct iommu_ioas_alloc *)buf)->out_ioas_id == 1);

	/* Out of the table, an empty slot, and a number with size/direction bits. */
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x7F), &a));
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x95), &a));
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x9F), &a));
	CHECK_ERRNO(ENOTTY, ioctl(fd, IOMMU_IOAS_ALLOC | (12u << 16) | (1u << 30), &a));
	/* An unknown VFIO-compat number, and the compat version query (a value, not a pointer). */
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x60), NULL));
	CHECK(ioctl(fd, VFIO_GET_API_VERSION, NULL) == 0);

	/* A short struct is zero-extended: HWPT_ALLOC at min_size reaches the handler. */
	struct iommu_hwpt_alloc h = { 24, 0, 0, 0 };
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_HWPT_ALLOC, &h));

	close(fd);
	/* ioctl on a closed fd is the host's EBADF: nothing is forwarded. */
	CHECK_ERRNO(EBADF, ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	return ck_summary();
}
