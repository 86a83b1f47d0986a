/* Huge IOVA pages from MAP_HUGETLB memory, written against <linux/iommufd.h> and the
 * selftest's "iommufd_test.h" as a kernel client would be (the selftest's mock_domain
 * "_hugepage" variants). On a host without hugetlb pages the shim serves the request
 * with normal pages and the service treats each huge page as physically contiguous,
 * so the result must be the kernel's either way:
 *   - a mock domain of a MOCK_FLAGS_DEVICE_HUGE_IOVA device maps the buffer with
 *     MOCK_HUGE_PAGE_SIZE leaves: one dirtied mock page reports its whole huge page
 *     in IOMMU_HWPT_GET_DIRTY_BITMAP (a 4 KiB-backed buffer reports one page);
 *   - IOMMU_TEST_OP_MD_CHECK_MAP finds the buffer's own pages behind every IOVA;
 *   - a device write through the huge mapping lands in the program's real memory. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"
#include "check.h"

#define PAGE 4096ul
#define HUGE (2ul << 20)
#define MOCK_PAGE (PAGE / 2)                  /* MOCK_IO_PAGE_SIZE */
#define MOCK_HUGE (512 * MOCK_PAGE)           /* MOCK_HUGE_PAGE_SIZE */
#define IOVA MOCK_APERTURE_START             /* 16 MiB: huge aligned */

static int fd;

static int test_cmd(struct iommu_test_cmd *t) { return ioctl(fd, IOMMU_TEST_CMD, t); }

/* Copies through a test access: the mock device's DMA. */
static int access_rw(uint32_t ioas, uint64_t iova, void *buf, uint64_t len, int write)
{
	struct iommu_test_cmd t = { .size = sizeof(t), .op = IOMMU_TEST_OP_CREATE_ACCESS, .id = ioas };
	if (test_cmd(&t))
		return -1;
	int afd = (int)t.create_access.out_access_fd;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_ACCESS_RW, t.id = (uint32_t)afd;
	t.access_rw.iova = iova, t.access_rw.length = len, t.access_rw.uptr = (uintptr_t)buf;
	t.access_rw.flags = write ? MOCK_ACCESS_RW_WRITE : 0;
	int rc = test_cmd(&t);
	close(afd);
	return rc;
}

/* Dirties the first mock page at `iova`, then returns how many 4 KiB pages of
 * [iova, iova + HUGE) the dirty bitmap reports (-1 on error): the leaf size in pages. */
static int dirty_pages_after_one_write(uint32_t hwpt, uint64_t iova)
{
	uint8_t mark[HUGE / MOCK_PAGE / 8] = { 1 };
	struct iommu_test_cmd t = { .size = sizeof(t), .op = IOMMU_TEST_OP_DIRTY, .id = hwpt };
	t.dirty.iova = iova, t.dirty.length = HUGE, t.dirty.page_size = MOCK_PAGE;
	t.dirty.uptr = (uintptr_t)mark;
	if (test_cmd(&t) || t.dirty.out_nr_dirty != 1)
		return -1;
	uint64_t bits[HUGE / PAGE / 64] = { 0 };
	struct iommu_hwpt_get_dirty_bitmap g = {
		.size = sizeof(g), .hwpt_id = hwpt, .iova = iova, .length = HUGE, .page_size = PAGE,
		.data = (uintptr_t)bits,
	};
	if (ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g))
		return -1;
	int n = 0;
	for (unsigned i = 0; i < HUGE / PAGE; i++)
		n += (bits[i / 64] >> (i % 64)) & 1;
	/* The dirty pages must be the first ones: the leaf that holds the marked page. */
	return n > 0 && (bits[(n - 1) / 64] >> ((n - 1) % 64) & 1) ? n : -1;
}

int main(void)
{
	/* MAP_HUGETLB: real huge pages, or the shim's fallback on a host with none. */
	char *huge = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	CHECK(huge != MAP_FAILED);
	if (huge == MAP_FAILED)
		return ck_summary();
	CHECK(((uintptr_t)huge & (HUGE - 1)) == 0);
	for (unsigned long i = 0; i < HUGE; i += PAGE)
		huge[i] = (char)(i / PAGE);
	/* A normal buffer, huge aligned too, for contrast. */
	char *raw = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(raw != MAP_FAILED);
	char *small = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	memset(small, 0x5a, HUGE);

	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	uint32_t ioas = a.out_ioas_id;

	/* A device whose domains offer MOCK_HUGE_PAGE_SIZE, then a dirty-tracking domain. */
	struct iommu_test_cmd md = { .size = sizeof(md), .op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, .id = ioas };
	md.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_HUGE_IOVA;
	CHECK_OK(test_cmd(&md));
	struct iommu_hwpt_alloc ha = {
		.size = sizeof(ha), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		.dev_id = md.mock_domain_flags.out_idev_id, .pt_id = ioas,
	};
	CHECK_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &ha));
	uint32_t hwpt = ha.out_hwpt_id;
	struct iommu_test_cmd rep = { .size = sizeof(rep), .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				      .id = md.mock_domain_flags.out_stdev_id };
	rep.mock_domain_replace.pt_id = hwpt;
	CHECK_OK(test_cmd(&rep));

	const uint32_t rw = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
	struct iommu_ioas_map m = { .size = sizeof(m), .flags = rw, .ioas_id = ioas,
				    .user_va = (uintptr_t)huge, .length = HUGE, .iova = IOVA };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	struct iommu_ioas_map ms = { .size = sizeof(ms), .flags = rw, .ioas_id = ioas,
				     .user_va = (uintptr_t)small, .length = HUGE, .iova = IOVA + HUGE };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &ms));

	/* Every IOVA of both maps is backed by the buffer's own pages. */
	struct iommu_test_cmd cm = { .size = sizeof(cm), .op = IOMMU_TEST_OP_MD_CHECK_MAP, .id = hwpt };
	cm.check_map.iova = IOVA, cm.check_map.length = HUGE, cm.check_map.uptr = (uintptr_t)huge;
	CHECK_OK(test_cmd(&cm));
	cm.check_map.iova = IOVA + HUGE, cm.check_map.uptr = (uintptr_t)small;
	CHECK_OK(test_cmd(&cm));
	cm.check_map.iova = IOVA, cm.check_map.uptr = (uintptr_t)small;   /* the other buffer */
	CHECK_ERRNO(EINVAL, test_cmd(&cm));

	/* Leaf sizes: a huge leaf is dirtied whole, a 4 KiB-backed map one mock page. */
	struct iommu_hwpt_set_dirty_tracking dt = { .size = sizeof(dt), .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
						    .hwpt_id = hwpt };
	CHECK_OK(ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &dt));
	CHECK(dirty_pages_after_one_write(hwpt, IOVA) == (int)(MOCK_HUGE / PAGE));
	CHECK(dirty_pages_after_one_write(hwpt, IOVA + MOCK_HUGE) == (int)(MOCK_HUGE / PAGE));
	CHECK(dirty_pages_after_one_write(hwpt, IOVA + HUGE) == 1);

	/* The device reads what the CPU stored and its writes land in our memory, in both
	 * huge leaves. */
	char got[8] = { 0 };
	CHECK_OK(access_rw(ioas, IOVA + 3 * PAGE, got, 1, 0));
	CHECK(got[0] == 3);
	CHECK_OK(access_rw(ioas, IOVA + 100, "huge", 5, 1));
	CHECK(!memcmp(huge + 100, "huge", 5));
	CHECK_OK(access_rw(ioas, IOVA + HUGE - 8, "tail", 5, 1));
	CHECK(!memcmp(huge + HUGE - 8, "tail", 5));
	huge[HUGE / 2 + 7] = 'x';
	CHECK_OK(access_rw(ioas, IOVA + HUGE / 2 + 7, got, 1, 0));
	CHECK(got[0] == 'x');

	/* Unmapped and mapped again (IOVA chosen by the kernel: huge aligned), still huge. */
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = IOVA, .length = HUGE };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	CHECK(u.length == HUGE);
	m.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, m.iova = 0;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	CHECK((m.iova & (HUGE - 1)) == 0);
	CHECK(dirty_pages_after_one_write(hwpt, m.iova) == (int)(MOCK_HUGE / PAGE));
	cm.check_map.iova = m.iova, cm.check_map.uptr = (uintptr_t)huge;
	CHECK_OK(test_cmd(&cm));

	/* MAP_HUGETLB | MAP_FIXED over a huge-aligned buffer of ours (the selftest's dirty
	 * tracking fixture does this): at that very address, and huge in the domain too. An
	 * unaligned address is EINVAL, as for hugetlb. */
	char *fixed = small;
	CHECK(mmap(fixed, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED, -1, 0) ==
	      fixed);
	CHECK_ERRNO(EINVAL, (long)mmap(fixed + PAGE, HUGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED, -1, 0));
	memset(fixed, 7, HUGE);
	struct iommu_ioas_map mf = { .size = sizeof(mf), .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
				     .ioas_id = ioas, .user_va = (uintptr_t)fixed, .length = HUGE };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &mf));
	CHECK(dirty_pages_after_one_write(hwpt, mf.iova) == (int)(MOCK_HUGE / PAGE));

	close(fd);
	CHECK_OK(munmap(huge, HUGE));
	CHECK_OK(munmap(raw, 2 * HUGE));
	return ck_summary();
}
