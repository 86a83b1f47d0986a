/* The main errno paths of each ioctl, and user memory as the kernel sees it: a mock
 * domain maps the program's own buffer, the mock page table points at the pages behind
 * it, and an emulated access reads and writes the program's real memory. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define PAGE 4096ul
#define BUFSZ (16 * PAGE)

static int fd;

static int test_cmd(struct iommu_test_cmd *c, uint32_t op, uint32_t id)
{
	c->size = sizeof(*c);
	c->op = op;
	c->id = id;
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

int main(void)
{
	uint8_t *buffer = mmap(NULL, BUFSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buffer, 0xA5, BUFSZ);
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);

	/* mmap of the iommufd: no vIOMMU region exists yet, so after the shared/exec checks
	 * of iommufd_fops_mmap every request finds nothing (ENXIO); viommu_mmap.c maps one. */
	CHECK_ERRNO(EINVAL, (long)mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0));
	CHECK_ERRNO(EPERM, (long)mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0));
	CHECK_ERRNO(ENXIO, (long)mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));

	/* DESTROY */
	struct iommu_destroy d = { sizeof(d), 0 };
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_DESTROY, &d));
	/* IOAS_ALLOC */
	struct iommu_ioas_alloc a = { sizeof(a), 1, 0 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	a.flags = 0;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	uint32_t ioas = a.out_ioas_id;
	CHECK(ioas == 1);
	/* IOAS_IOVA_RANGES: too small an array reports the count, EMSGSIZE. */
	struct iommu_iova_range ranges[4];
	struct iommu_ioas_iova_ranges r = { sizeof(r), ioas, 0, 0, (uintptr_t)ranges, 0 };
	CHECK_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	CHECK(r.num_iovas == 1);
	r.num_iovas = 4;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	CHECK(r.num_iovas == 1 && ranges[0].start == 0 && ranges[0].last == UINT64_MAX);
	r.ioas_id = 99;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	r.ioas_id = ioas;
	r.allowed_iovas = 8; /* unreadable array pointer, non-zero count: copy_to_user fails */
	CHECK_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	/* IOAS_ALLOW_IOVAS */
	struct iommu_iova_range allow = { MOCK_APERTURE_START, (1ull << 31) - 1 };
	struct iommu_ioas_allow_iovas al = { sizeof(al), ioas, 1, 1, (uintptr_t)&allow };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &al));
	al.__reserved = 0;
	allow.last = 0;
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &al));
	allow.last = (1ull << 31) - 1;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &al));

	/* A mock device with its domain attached to the IOAS (IOMMU_TEST_OP_MOCK_DOMAIN). */
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MOCK_DOMAIN, ioas));
	uint32_t stdev = t.mock_domain.out_stdev_id, hwpt = t.mock_domain.out_hwpt_id,
		 idev = t.mock_domain.out_idev_id;
	CHECK(stdev && hwpt && idev);

	/* IOAS_MAP */
	uint64_t iova = MOCK_APERTURE_START;
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, ioas, 0,
				 (uintptr_t)buffer, BUFSZ, iova };
	m.__reserved = 1;
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_MAP, &m));
	m.__reserved = 0;
	m.length = 0;
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP, &m));
	m.length = BUFSZ;
	m.ioas_id = 77;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_MAP, &m));
	m.ioas_id = ioas;
	m.user_va = 0x1000; /* nothing mapped there: pinning for the domain fails */
	CHECK_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_MAP, &m));
	m.user_va = (uintptr_t)ro; /* writable map of a read-only page: FOLL_WRITE fails */
	m.length = PAGE;
	CHECK_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_MAP, &m));
	m.user_va = (uintptr_t)buffer;
	m.length = BUFSZ;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	CHECK_ERRNO(EEXIST, ioctl(fd, IOMMU_IOAS_MAP, &m));

	/* The mock page table points at the pages behind the buffer, pinned once each. */
	memset(&t, 0, sizeof(t));
	t.check_map.iova = iova, t.check_map.length = BUFSZ, t.check_map.uptr = (uintptr_t)buffer;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MD_CHECK_MAP, hwpt));
	memset(&t, 0, sizeof(t));
	t.check_refs.length = BUFSZ, t.check_refs.uptr = (uintptr_t)buffer, t.check_refs.refs = 1;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MD_CHECK_REFS, 0));

	/* An access reads what the program wrote after the map, and its writes land in the
	 * program's memory (the pinned page is the program's page). */
	memset(&t, 0, sizeof(t));
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_CREATE_ACCESS, ioas));
	int access_fd = (int)t.create_access.out_access_fd;
	CHECK(access_fd > 2);
	memcpy(buffer + 100, "written by the CPU", 18);
	char got[32] = { 0 };
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = iova + 100, t.access_rw.length = 18, t.access_rw.uptr = (uintptr_t)got;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)access_fd));
	CHECK(memcmp(got, "written by the CPU", 18) == 0);
	const char *dev = "written by a device";
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = iova + PAGE + 7, t.access_rw.length = 19, t.access_rw.uptr = (uintptr_t)dev;
	t.access_rw.flags = MOCK_ACCESS_RW_WRITE;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)access_fd));
	CHECK(memcmp(buffer + PAGE + 7, dev, 19) == 0);
	memset(&t, 0, sizeof(t));
	t.access_rw.iova = 0x10, t.access_rw.length = 4, t.access_rw.uptr = (uintptr_t)got;
	CHECK_ERRNO(ENOENT, test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, (uint32_t)access_fd));
	CHECK_ERRNO(EBADFD, test_cmd(&t, IOMMU_TEST_OP_ACCESS_RW, 1234));
	CHECK_OK(close(access_fd));

	/* IOAS_COPY into a second IOAS. */
	struct iommu_ioas_alloc a2 = { sizeof(a2), 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a2));
	struct iommu_ioas_copy cp = { sizeof(cp), IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, a2.out_ioas_id, ioas, PAGE,
				   0x200000, iova };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_COPY, &cp));
	cp.src_iova = 0x9000000;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_COPY, &cp));

	/* OPTION */
	struct iommu_option o = { sizeof(o), IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 0, 7 };
	CHECK_OK(ioctl(fd, IOMMU_OPTION, &o));
	CHECK(o.val64 == 0);
	o.option_id = 42;
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_OPTION, &o));
	o.option_id = IOMMU_OPTION_HUGE_PAGES, o.op = IOMMU_OPTION_OP_GET, o.object_id = ioas;
	CHECK_OK(ioctl(fd, IOMMU_OPTION, &o));
	CHECK(o.val64 == 1);
	o.op = 9;
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_OPTION, &o));

	/* VFIO_IOAS */
	struct iommu_vfio_ioas v = { sizeof(v), 0, IOMMU_VFIO_IOAS_GET, 0 };
	CHECK_ERRNO(ENODEV, ioctl(fd, IOMMU_VFIO_IOAS, &v));
	v.op = IOMMU_VFIO_IOAS_SET, v.ioas_id = ioas;
	CHECK_OK(ioctl(fd, IOMMU_VFIO_IOAS, &v));
	v.op = IOMMU_VFIO_IOAS_GET, v.ioas_id = 0;
	CHECK_OK(ioctl(fd, IOMMU_VFIO_IOAS, &v));
	CHECK(v.ioas_id == ioas);

	/* HWPT_ALLOC, GET_HW_INFO, dirty tracking, INVALIDATE */
	struct iommu_hwpt_alloc h = { sizeof(h), 0, idev, ioas };
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	uint32_t hwpt2 = h.out_hwpt_id;
	h.dev_id = 555;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	h.dev_id = idev, h.__reserved = 1;
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	struct iommu_hw_info hi = { sizeof(hi), 0, idev, 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_GET_HW_INFO, &hi));
	hi.dev_id = 555;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_GET_HW_INFO, &hi));
	struct iommu_hwpt_set_dirty_tracking sd = { sizeof(sd), 0x80, hwpt2, 0 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd));
	struct iommu_hwpt_invalidate inv = { sizeof(inv), hwpt2, 0, 0, 0, 0, 0 };
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_HWPT_INVALIDATE, &inv));

	/* IOAS_CHANGE_PROCESS: only file-backed areas can change owner. */
	struct iommu_ioas_change_process chp = { sizeof(chp), 1 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &chp));
	chp.__reserved = 0;
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &chp));

	/* FAULT_QUEUE_ALLOC flags */
	struct iommu_fault_alloc fa = { sizeof(fa), 1, 0, 0 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));

	/* DESTROY of a referenced IOAS is EBUSY; UNMAP; then everything unpinned. */
	d.id = ioas;
	CHECK_ERRNO(EBUSY, ioctl(fd, IOMMU_DESTROY, &d));
	struct iommu_ioas_unmap u = { sizeof(u), ioas, iova + BUFSZ, PAGE };
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	u.iova = iova, u.length = BUFSZ;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	CHECK(u.length == BUFSZ);
	memset(&t, 0, sizeof(t));
	t.check_refs.length = BUFSZ, t.check_refs.uptr = (uintptr_t)buffer, t.check_refs.refs = 0;
	CHECK_OK(test_cmd(&t, IOMMU_TEST_OP_MD_CHECK_REFS, 0));
	d.id = hwpt2;
	CHECK_OK(ioctl(fd, IOMMU_DESTROY, &d));
	d.id = stdev;
	CHECK_OK(ioctl(fd, IOMMU_DESTROY, &d));
	CHECK_OK(close(fd));
	return ck_summary();
}
