/* Maps of any size, and memory given back.
 *  - A map of more than 1 GiB (1 GiB + 8 KiB of memory the program never touched but at
 *    its end) into an IOAS with no domain works, as in the kernel (nothing is pinned
 *    until a domain or an access needs the pages); an access then reads and writes its
 *    last page, past the first GiB; and the unmap works.
 *  - 64 MiB pinned through a mock domain, then unmapped and the iommufd closed: the
 *    service's resident memory comes back to where it was (within 16 MiB). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define BIG ((1ul << 30) + 8192)
#define PINNED (64ul << 20)

/* VmRSS of process `pid` in kB. */
static long rss_kb(pid_t pid)
{
	char path[64], text[8192] = { 0 };
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	int f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	ssize_t n = read(f, text, sizeof(text) - 1);
	close(f);
	char *p = n > 0 ? strstr(text, "VmRSS:") : NULL;
	return p ? strtol(p + 6, NULL, 10) : -1;
}

int main(void)
{
	alarm(120);
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct ucred svc = { 0, 0, 0 };
	socklen_t l = sizeof(svc);
	CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &svc, &l));

	/* More than 1 GiB, no domain: recorded, nothing pinned. */
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(big != MAP_FAILED);
	struct iommu_ioas_map m = { sizeof(m), IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, a.out_ioas_id, 0,
				    (uintptr_t)big, BIG, 0 };
	strcpy(big + BIG - 100, "far end");
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	struct iommu_test_cmd ca;
	memset(&ca, 0, sizeof(ca));
	ca.size = sizeof(ca), ca.op = IOMMU_TEST_OP_CREATE_ACCESS, ca.id = a.out_ioas_id;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &ca));
	char got[16] = { 0 };
	struct iommu_test_cmd rw;
	memset(&rw, 0, sizeof(rw));
	rw.size = sizeof(rw), rw.op = IOMMU_TEST_OP_ACCESS_RW, rw.id = ca.create_access.out_access_fd;
	rw.access_rw.iova = m.iova + BIG - 100, rw.access_rw.length = 8, rw.access_rw.uptr = (uintptr_t)got;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &rw));
	CHECK(!strcmp(got, "far end"));
	rw.access_rw.iova = m.iova + BIG - 50, rw.access_rw.uptr = (uintptr_t)"written", rw.access_rw.flags = MOCK_ACCESS_RW_WRITE;
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &rw));
	CHECK(!strcmp(big + BIG - 50, "written"));
	close((int)ca.create_access.out_access_fd);
	struct iommu_ioas_unmap u = { sizeof(u), a.out_ioas_id, m.iova, BIG };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	CHECK(u.length == BIG);
	munmap(big, BIG);

	/* 64 MiB pinned, then let go: the service's memory comes back. */
	long before = rss_kb(svc.pid);
	int f2 = open("/dev/iommu", O_RDWR);
	CHECK_OK(ioctl(f2, IOMMU_IOAS_ALLOC, &a));
	struct iommu_test_cmd t;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_MOCK_DOMAIN, t.id = a.out_ioas_id;
	CHECK_OK(ioctl(f2, IOMMU_TEST_CMD, &t));
	char *buf = mmap(NULL, PINNED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 0x33, PINNED);
	struct iommu_ioas_map m2 = { sizeof(m2), IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, a.out_ioas_id, 0,
				     (uintptr_t)buf, PINNED, 0 };
	CHECK_OK(ioctl(f2, IOMMU_IOAS_MAP, &m2));
	long pinned = rss_kb(svc.pid);
	CHECK(pinned - before >= (long)(PINNED / 1024) - 1024);
	struct iommu_ioas_unmap u2 = { sizeof(u2), a.out_ioas_id, m2.iova, PINNED };
	CHECK_OK(ioctl(f2, IOMMU_IOAS_UNMAP, &u2));
	CHECK_OK(close(f2));
	long after = rss_kb(svc.pid);
	printf("service VmRSS: %ld kB before, %ld kB with 64 MiB pinned, %ld kB after unmap and close\n", before,
	       pinned, after);
	CHECK(after - before < 16 * 1024);
	munmap(buf, PINNED);
	return ck_summary();
}
