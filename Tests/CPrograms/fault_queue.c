/* A fault queue fd: IOMMU_FAULT_QUEUE_ALLOC returns a real fd; a page request from the
 * mock device (IOMMU_TEST_OP_TRIGGER_IOPF) on a fault-capable HWPT is read as an
 * iommu_hwpt_pgfault record, answered by writing an iommu_hwpt_page_response, and
 * poll() shows POLLIN only while a record waits. */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

static int fd;

static int test_cmd(struct iommu_test_cmd *c, uint32_t op, uint32_t id)
{
	c->size = sizeof(*c), c->op = op, c->id = id;
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

static int trigger(uint32_t idev, uint32_t grpid, uint64_t addr)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.trigger_iopf.dev_id = idev, t.trigger_iopf.grpid = grpid, t.trigger_iopf.perm = 1;
	t.trigger_iopf.addr = addr;
	return test_cmd(&t, IOMMU_TEST_OP_TRIGGER_IOPF, 0);
}

int main(void)
{
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	struct iommu_test_cmd t;
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	memset(&t, 0, sizeof(t));
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN, a.out_ioas_id));
	uint32_t stdev = t.mock_domain.out_stdev_id, idev = t.mock_domain.out_idev_id;

	struct iommu_fault_alloc fa = { sizeof(fa), 0, 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));
	int ffd = (int)fa.out_fault_fd;
	CHECK(ffd > 2 && fa.out_fault_id > 0);
	CHECK((fcntl(ffd, F_GETFD) & FD_CLOEXEC) != 0);

	/* A paging HWPT that reports faults to the queue, and the device moved onto it. */
	struct iommu_hwpt_alloc h = { sizeof(h), IOMMU_HWPT_FAULT_ID_VALID, idev, a.out_ioas_id };
	h.fault_id = fa.out_fault_id;
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	memset(&t, 0, sizeof(t));
	t.mock_domain_replace.pt_id = h.out_hwpt_id;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev));

	struct pollfd p = { ffd, POLLIN | POLLOUT, 0 };
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT);
	struct iommu_hwpt_pgfault rec[2];
	CHECK(read(ffd, rec, sizeof(rec[0])) == 0);

	CHECK_OK(trigger(idev, 7, 0x123000));
	CHECK(poll(&p, 1, 100) == 1 && p.revents == (POLLIN | POLLOUT));
	CHECK_ERRNO(ESPIPE, read(ffd, rec, sizeof(rec[0]) - 1));
	CHECK_ERRNO(ESPIPE, pread(ffd, rec, sizeof(rec[0]), 40));
	CHECK(read(ffd, rec, sizeof(rec)) == sizeof(rec[0]));
	CHECK(rec[0].dev_id == idev && rec[0].grpid == 7 && rec[0].addr == 0x123000 && rec[0].perm == 1);
	CHECK(rec[0].flags == 2 /* LAST_PAGE, no PASID */ && rec[0].cookie == 1);
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT);

	/* DESTROY of the fault object while its fd is open: EBUSY. */
	struct iommu_destroy d = { sizeof(d), fa.out_fault_id };
	CHECK_ERRNO(EBUSY, ioctl(fd, IOMMU_DESTROY, &d));

	struct iommu_hwpt_page_response resp = { 99, 0 };
	CHECK_ERRNO(ESPIPE, write(ffd, &resp, 7));
	CHECK_ERRNO(EINVAL, write(ffd, &resp, sizeof(resp)));   /* unknown cookie */
	resp.cookie = rec[0].cookie, resp.code = 5;
	CHECK_ERRNO(EINVAL, write(ffd, &resp, sizeof(resp)));   /* bad code */
	resp.code = 0;
	CHECK(write(ffd, &resp, sizeof(resp)) == sizeof(resp));
	CHECK_ERRNO(EINVAL, write(ffd, &resp, sizeof(resp)));   /* answered once */

	/* Two groups, read one at a time. */
	CHECK_OK(trigger(idev, 8, 0x1000));
	CHECK_OK(trigger(idev, 9, 0x2000));
	CHECK(read(ffd, rec, sizeof(rec[0])) == sizeof(rec[0]) && rec[0].grpid == 8);
	CHECK(read(ffd, rec, sizeof(rec)) == sizeof(rec[0]) && rec[0].grpid == 9);

	/* A dup of the fault fd is the same file. */
	int ffd2 = dup(ffd);
	CHECK_OK(trigger(idev, 10, 0x3000));
	CHECK(read(ffd2, rec, sizeof(rec[0])) == sizeof(rec[0]) && rec[0].grpid == 10);
	CHECK_OK(close(ffd2));
	CHECK_OK(close(ffd));
	CHECK_OK(close(fd));
	return ck_summary();
}
