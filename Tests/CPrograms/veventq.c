/* A vEVENTQ fd: a vIOMMU over a nesting parent, a vDEVICE for the mock device, and the
 * device on a nested HWPT of the vIOMMU; IOMMU_TEST_OP_TRIGGER_VEVENT events are read
 * as an iommufd_vevent_header followed by an iommu_viommu_event_selftest, poll() shows
 * POLLIN only while one waits, a full queue ends in a LOST_EVENTS header, and the queue
 * is free to destroy as soon as close() of its last fd returns. */
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

static int trigger(uint32_t idev)
{
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.trigger_vevent.dev_id = idev;
	return test_cmd(&t, IOMMU_TEST_OP_TRIGGER_VEVENT, 0);
}

struct record {
	struct iommufd_vevent_header hdr;
	struct iommu_viommu_event_selftest event;
};

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

	struct iommu_hwpt_alloc parent = { sizeof(parent), IOMMU_HWPT_ALLOC_NEST_PARENT, idev, a.out_ioas_id };
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &parent));
	struct iommu_viommu_alloc v = { sizeof(v), 0, IOMMU_VIOMMU_TYPE_SELFTEST, idev, parent.out_hwpt_id };
	CHECK_OK(ioctl(fd, IOMMU_VIOMMU_ALLOC, &v));
	CHECK(v.out_viommu_id > 0);
	struct iommu_vdevice_alloc vd = { sizeof(vd), v.out_viommu_id, idev, 0, 0x99 };
	CHECK_OK(ioctl(fd, IOMMU_VDEVICE_ALLOC, &vd));
	struct iommu_hwpt_selftest data = { 0 };
	struct iommu_hwpt_alloc nested = { sizeof(nested), 0, idev, v.out_viommu_id };
	nested.data_type = IOMMU_HWPT_DATA_SELFTEST, nested.data_len = sizeof(data);
	nested.data_uptr = (uintptr_t)&data;
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &nested));
	memset(&t, 0, sizeof(t));
	t.mock_domain_replace.pt_id = nested.out_hwpt_id;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev));

	/* No queue of the type yet: the report has nowhere to go. */
	CHECK_ERRNO(EOPNOTSUPP, trigger(idev));

	struct iommu_veventq_alloc q = { sizeof(q), 0, v.out_viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 2 };
	CHECK_OK(ioctl(fd, IOMMU_VEVENTQ_ALLOC, &q));
	int qfd = (int)q.out_veventq_fd;
	CHECK(qfd > 2 && q.out_veventq_id > 0);
	CHECK((fcntl(qfd, F_GETFD) & FD_CLOEXEC) != 0);
	struct iommu_veventq_alloc q2 = q;
	CHECK_ERRNO(EEXIST, ioctl(fd, IOMMU_VEVENTQ_ALLOC, &q2));   /* one queue per type */

	struct pollfd p = { qfd, POLLIN | POLLOUT, 0 };
	CHECK(poll(&p, 1, 0) == 0);
	struct record rec[3];
	CHECK(read(qfd, rec, sizeof(rec)) == 0);

	CHECK_OK(trigger(idev));
	CHECK(poll(&p, 1, 100) == 1 && p.revents == POLLIN);
	CHECK_ERRNO(ESPIPE, pread(qfd, rec, sizeof(rec), 12));
	CHECK(read(qfd, rec, sizeof(rec[0]) - 1) == 0);              /* not the whole record */
	CHECK(read(qfd, rec, sizeof(rec)) == sizeof(rec[0]));
	CHECK(rec[0].hdr.flags == 0 && rec[0].hdr.sequence == 0 && rec[0].event.virt_id == 0x99);
	CHECK(poll(&p, 1, 0) == 0);

	/* Three events into a queue of two: two records, then a LOST_EVENTS header. */
	CHECK_OK(trigger(idev));
	CHECK_OK(trigger(idev));
	CHECK_OK(trigger(idev));
	CHECK(read(qfd, rec, sizeof(rec)) == 2 * sizeof(rec[0]) + sizeof(rec[0].hdr));
	CHECK(rec[0].hdr.sequence == 1 && rec[1].hdr.sequence == 2);
	CHECK(rec[2].hdr.flags == IOMMU_VEVENTQ_FLAG_LOST_EVENTS && rec[2].hdr.sequence == 3);
	CHECK(poll(&p, 1, 0) == 0);

	/* DESTROY of the queue while its fd is open: EBUSY; the vIOMMU is held by it. */
	struct iommu_destroy d = { sizeof(d), q.out_veventq_id };
	CHECK_ERRNO(EBUSY, ioctl(fd, IOMMU_DESTROY, &d));
	d.id = v.out_viommu_id;
	CHECK_ERRNO(EBUSY, ioctl(fd, IOMMU_DESTROY, &d));

	/* A dup of the queue fd is the same file. */
	int qfd2 = dup(qfd);
	CHECK_OK(trigger(idev));
	CHECK(read(qfd2, rec, sizeof(rec)) == sizeof(rec[0]) && rec[0].hdr.sequence == 4);
	CHECK_OK(close(qfd2));
	CHECK_OK(close(qfd));
	/* The last close has released the file when close() returns: the queue is free to
	 * destroy at once. */
	d.id = q.out_veventq_id;
	CHECK_OK(ioctl(fd, IOMMU_DESTROY, &d));
	CHECK_OK(close(fd));
	return ck_summary();
}
