/* The shim is C only: preloading it loads no Swift runtime into the program, and a
 * failed assert() in the program ends it the C way (SIGABRT, glibc's one-line message),
 * with no crash report printed on its behalf. */
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <assert.h>
#include "check.h"

static int swift_objects;

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size, (void)data;
	if (info->dlpi_name && strstr(info->dlpi_name, "libswift")) {
		printf("loaded: %s\n", info->dlpi_name);
		swift_objects++;
	}
	return 0;
}

int main(void)
{
	int shim_loaded = 0;
	const char *pre = getenv("LD_PRELOAD");
	shim_loaded = pre && strstr(pre, "libIOMMUFDPreload");
	CHECK(shim_loaded);

	dl_iterate_phdr(visit, NULL);
	CHECK(swift_objects == 0);

	/* A child whose assert fails: killed by SIGABRT, and what it printed is glibc's. */
	int err[2];
	CHECK_OK(pipe(err));
	pid_t p = fork();
	if (p == 0) {
		dup2(err[1], 2);
		close(err[0]);
		assert(shim_loaded == 42);
		_exit(0);
	}
	close(err[1]);
	char text[8192] = { 0 };
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(text) - 1 && (n = read(err[0], text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	int status = 0;
	CHECK(waitpid(p, &status, 0) == p);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(text, "Assertion") != NULL);
	CHECK(strstr(text, "crash") == NULL && strstr(text, "Crash") == NULL);
	CHECK(strstr(text, "Backtrace") == NULL && strstr(text, "Fatal error") == NULL);
	if (ck_failed)
		printf("child's stderr:\n%s\n", text);
	return ck_summary();
}
