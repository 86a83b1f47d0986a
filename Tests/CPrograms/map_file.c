/* IOMMU_IOAS_MAP_FILE and IOMMU_IOAS_CHANGE_PROCESS from a real process, written against
 * <linux/iommufd.h> and the selftest's "iommufd_test.h" as a kernel client would be:
 * the errno order of MAP_FILE, a device (the mock test access) reading and writing the
 * memfd that the program itself maps, and VmPin in /proc/<pid>/status following
 * CHANGE_PROCESS from parent to child (the selftest's change_process fixture). */
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"
#include "check.h"

#define PAGE 4096ul
#define IOVA (MOCK_APERTURE_START + 0x100000ul)

static int fd;

/* VmPin of `pid` in kB, -1 when the line is missing. */
static long vm_pin(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmPin:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* Copies through a test access: the mock device's DMA. */
static int access_rw(uint32_t ioas, uint64_t iova, void *buf, uint64_t len, int write)
{
	struct iommu_test_cmd t = { .size = sizeof(t), .op = IOMMU_TEST_OP_CREATE_ACCESS, .id = ioas };
	if (ioctl(fd, IOMMU_TEST_CMD, &t))
		return -1;
	int afd = (int)t.create_access.out_access_fd;
	memset(&t, 0, sizeof(t));
	t.size = sizeof(t), t.op = IOMMU_TEST_OP_ACCESS_RW, t.id = (uint32_t)afd;
	t.access_rw.iova = iova, t.access_rw.length = len, t.access_rw.uptr = (uintptr_t)buf;
	t.access_rw.flags = write ? MOCK_ACCESS_RW_WRITE : 0;
	int rc = ioctl(fd, IOMMU_TEST_CMD, &t);
	close(afd);
	return rc;
}

/* Without CAP_IPC_LOCK pins are charged (not IOPT_PAGES_ACCOUNT_NONE), as for a user.
 * Dropped after opening /dev/iommu, as the selftest's change_process fixture does: the
 * kernel asks capable() when the pages are made, not at open. */
static void drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1u << CAP_IPC_LOCK);
		syscall(SYS_capset, &h, d);
	}
}

int main(void)
{
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	drop_ipc_lock();
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	uint32_t ioas = a.out_ioas_id;
	struct iommu_test_cmd md = { .size = sizeof(md), .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };
	CHECK_OK(ioctl(fd, IOMMU_TEST_CMD, &md));

	int mfd = memfd_create("dma", 0);
	CHECK(mfd >= 0 && ftruncate(mfd, 2 * PAGE) == 0);
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(p != MAP_FAILED);
	strcpy(p, "from the cpu");
	int pipefd[2];
	CHECK_OK(pipe(pipefd));

	/* The kernel's order: flags, overflow, R/W, IOAS, fget, file kind, length, range. */
	const uint32_t rw = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
	struct iommu_ioas_map_file mf = { sizeof(mf), rw | (1u << 3), 9999, -1, 0, 2 * PAGE, IOVA };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.flags = rw, mf.iova = UINT64_MAX;
	CHECK_ERRNO(EOVERFLOW, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.iova = IOVA, mf.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.flags = rw;
	CHECK_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.ioas_id = ioas;
	CHECK_ERRNO(EBADF, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.fd = 999;
	CHECK_ERRNO(EBADF, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.fd = pipefd[0];                        /* not shmem or hugetlbfs */
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.fd = mfd, mf.length = 0;
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.start = PAGE, mf.length = 2 * PAGE;    /* past the end of the file */
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	mf.start = 0;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP_FILE, &mf));
	CHECK(mf.iova == IOVA);

	/* The device reads what the CPU stored, and its writes land in our mapping. */
	char got[32] = { 0 };
	CHECK_OK(access_rw(ioas, IOVA, got, 13, 0));
	CHECK(!strcmp(got, "from the cpu"));
	CHECK_OK(access_rw(ioas, IOVA + PAGE, "from the device", 16, 1));
	CHECK(!strcmp(p + PAGE, "from the device"));
	CHECK(pread(mfd, got, 16, PAGE) == 16 && !strcmp(got, "from the device"));
	strcpy(p, "cpu again");
	CHECK_OK(access_rw(ioas, IOVA, got, 10, 0));
	CHECK(!strcmp(got, "cpu again"));

	/* Two pages pinned by the mock domain, charged to us. */
	CHECK(vm_pin(getpid()) == 8);
	CHECK(vm_pin(0x7ffffff0) == -1 || vm_pin(0x7ffffff0) >= 0); /* an unknown pid reads the real file */

	/* CHANGE_PROCESS: reserved field, same process, a non-file area refuses. */
	struct iommu_ioas_change_process cp = { sizeof(cp), 1 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cp));
	cp.__reserved = 0;
	CHECK_OK(ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cp));
	CHECK(vm_pin(getpid()) == 8);
	char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iommu_ioas_map m = { sizeof(m), rw, ioas, 0, (uintptr_t)anon, PAGE, IOVA + 0x100000 };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_MAP, &m));
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cp));
	struct iommu_ioas_unmap u = { sizeof(u), ioas, IOVA + 0x100000, PAGE };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &u));
	CHECK(vm_pin(getpid()) == 8);

	/* The child takes over: VmPin moves from parent to child. */
	int go[2], done[2];
	CHECK_OK(pipe(go));
	CHECK_OK(pipe(done));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		ck_passed = 0; /* the child reports only its own checks */
		CHECK(vm_pin(getppid()) == 8);
		CHECK(vm_pin(getpid()) == 0);
		CHECK_OK(ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cp));
		CHECK(vm_pin(getppid()) == 0);
		CHECK(vm_pin(getpid()) == 8);
		/* The child's DMA view is the same file. */
		CHECK_OK(access_rw(ioas, IOVA + PAGE, got, 16, 0));
		CHECK(!strcmp(got, "from the device"));
		CHECK(write(done[1], "d", 1) == 1);
		CHECK(read(go[0], &c, 1) == 1);
		_exit(ck_failed ? 100 + ck_failed : ck_passed);
	}
	char c;
	CHECK(read(done[0], &c, 1) == 1);
	CHECK(vm_pin(getpid()) == 0);
	CHECK(vm_pin(pid) == 8);
	CHECK(write(go[1], "g", 1) == 1);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) > 0 && WEXITSTATUS(status) < 100);
	if (WIFEXITED(status) && WEXITSTATUS(status) < 100)
		ck_passed += WEXITSTATUS(status);
	/* Back to us, then unmapped: nothing pinned. */
	CHECK_OK(ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cp));
	CHECK(vm_pin(getpid()) == 8);
	struct iommu_ioas_unmap all = { sizeof(all), ioas, 0, UINT64_MAX };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_UNMAP, &all));
	CHECK(all.length == 2 * PAGE);
	CHECK(vm_pin(getpid()) == 0);
	CHECK_OK(close(fd));
	return ck_summary();
}
