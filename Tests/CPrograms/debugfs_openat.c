/* The fault-injection files as the kernel's selftests reach them: /sys/kernel/debug/
 * listed with opendir, its attributes opened relative to the directory fd
 * (openat(dirfd(d), "failslab/ignore-gfp-wait")), and fail-nth opened relative to a
 * /proc directory fd. Each lands on the service's emulated knob (never on the host's
 * own debugfs), takes a value and reads it back. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"

static int write_at(int dfd, const char *name, const char *value)
{
	int f = openat(dfd, name, O_WRONLY);
	if (f < 0)
		return -1;
	int ok = write(f, value, strlen(value)) == (ssize_t)strlen(value);
	close(f);
	return ok ? 0 : -1;
}

static int read_at(int dfd, const char *name, char *out, size_t cap)
{
	int f = openat(dfd, name, O_RDONLY);
	if (f < 0)
		return -1;
	ssize_t n = read(f, out, cap - 1);
	close(f);
	if (n < 0)
		return -1;
	out[n] = 0;
	return 0;
}

int main(void)
{
	char b[64];
	DIR *debugfs = opendir("/sys/kernel/debug/");
	CHECK(debugfs != NULL);
	if (!debugfs)
		return ck_summary();
	int d = dirfd(debugfs);
	CHECK_OK(write_at(d, "failslab/ignore-gfp-wait", "N"));
	CHECK_OK(write_at(d, "fail_page_alloc/ignore-gfp-wait", "N"));
	CHECK_OK(write_at(d, "fail_page_alloc/ignore-gfp-highmem", "N"));
	CHECK_OK(write_at(d, "./failslab/verbose", "0"));
	CHECK_OK(read_at(d, "failslab/ignore-gfp-wait", b, sizeof(b)));
	CHECK(!strcmp(b, "N\n"));
	CHECK_OK(read_at(d, "failslab/verbose", b, sizeof(b)));
	CHECK(!strcmp(b, "0\n"));
	/* The same attribute by its absolute path is the same knob. */
	CHECK_OK(read_at(AT_FDCWD, "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", b, sizeof(b)));
	CHECK(!strcmp(b, "N\n"));
	/* Relative to the working directory (where the host has the directory at all). */
	char cwd[4096];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	if (chdir("/sys/kernel/debug") == 0) {
		CHECK_OK(read_at(AT_FDCWD, "failslab/ignore-gfp-wait", b, sizeof(b)));
		CHECK(!strcmp(b, "N\n"));
		CHECK_OK(chdir(cwd));
	}
	closedir(debugfs);

	/* fail-nth relative to /proc/self/task. */
	int task = open("/proc/self/task", O_RDONLY | O_DIRECTORY);
	CHECK(task >= 0);
	char name[64];
	snprintf(name, sizeof(name), "%d/fail-nth", gettid());
	CHECK_OK(write_at(task, name, "7"));
	CHECK_OK(read_at(task, name, b, sizeof(b)));
	CHECK(!strcmp(b, "7\n"));
	CHECK_OK(write_at(task, name, "0"));
	close(task);
	return ck_summary();
}
