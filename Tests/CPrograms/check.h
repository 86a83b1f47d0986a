/* A tiny check harness for the conformance programs: counts checks, prints each
 * failure with its line, and ends with the "N passed, N failed" line. */
#ifndef IOMMUKIT_CHECK_H
#define IOMMUKIT_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static int ck_passed, ck_failed;

#define CHECK(cond) \
	do { \
		if (cond) { ck_passed++; } \
		else { ck_failed++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
	} while (0)

/* expr must fail with errno `err`. */
#define CHECK_ERRNO(err, expr) \
	do { \
		errno = 0; \
		long ck_rc = (long)(expr); \
		if (ck_rc == -1 && errno == (err)) { ck_passed++; } \
		else { ck_failed++; printf("FAIL %s:%d: %s: rc %ld errno %s, want %s\n", __FILE__, __LINE__, \
				#expr, ck_rc, strerrorname_np(errno) ? strerrorname_np(errno) : "0", strerrorname_np(err)); } \
	} while (0)

/* expr must succeed (return >= 0). */
#define CHECK_OK(expr) \
	do { \
		errno = 0; \
		long ck_rc = (long)(expr); \
		if (ck_rc >= 0) { ck_passed++; } \
		else { ck_failed++; printf("FAIL %s:%d: %s: errno %s\n", __FILE__, __LINE__, #expr, \
				strerrorname_np(errno) ? strerrorname_np(errno) : "0"); } \
	} while (0)

static int ck_summary(void)
{
	printf("%d passed, %d failed\n", ck_passed, ck_failed);
	fflush(stdout);
	return ck_failed ? 1 : 0;
}

#endif
