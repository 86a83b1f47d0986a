/* Where the service lives, and whom the shim believes:
 *  - another user who took the socket path first (here uid 65534, listening in a
 *    world-writable directory) gets nothing: the open fails with EACCES and the
 *    squatter receives not one byte;
 *  - the default per-user directory is refused when it is a symlink (nothing is
 *    created through it);
 *  - a service the shim starts lives in that private directory (mode 0700, socket
 *    0600), and a log path planted as a symlink is never followed, whether it is the
 *    default log or an explicit IOMMUKIT_LOG.
 * Needs IOMMUKIT_TEST_DAEMON (the iommukitd to start); the squatter needs root. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/iommufd.h>

static char victim_text[] = "untouched\n";

static int file_is(const char *path, const char *text)
{
	char b[256] = { 0 };
	int f = open(path, O_RDONLY);
	if (f < 0)
		return 0;
	ssize_t n = read(f, b, sizeof(b) - 1);
	close(f);
	return n == (ssize_t)strlen(text) && !memcmp(b, text, (size_t)n);
}

static void write_file(const char *path, const char *text)
{
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (f >= 0) {
		if (write(f, text, strlen(text)) != (ssize_t)strlen(text))
			printf("short write to %s\n", path);
		close(f);
	}
}

/* Stops the service behind fd (its listener's pid) and waits until it is gone. */
static void stop_service(int fd)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);
	CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l));
	close(fd);
	CHECK_OK(kill(cr.pid, SIGTERM));
	int gone = 0;
	for (int i = 0; i < 300 && !gone; i++) {
		gone = kill(cr.pid, 0) != 0;
		usleep(10000);
	}
	CHECK(gone);
}

static void squatter(void)
{
	char dir[] = "/tmp/iommukit-squat-XXXXXX", path[128];
	CHECK(mkdtemp(dir) != NULL);
	CHECK_OK(chmod(dir, 01777));
	snprintf(path, sizeof(path), "%s/sq.sock", dir);
	int rep[2];
	CHECK_OK(pipe(rep));
	pid_t p = fork();
	if (p == 0) {
		/* The squatter: another user, listening where the victim will look. */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int32_t got = -1;
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
		if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
			_exit(3);
		if (write(rep[1], "L", 1) != 1)
			_exit(4);
		struct pollfd pl = { l, POLLIN, 0 };
		if (poll(&pl, 1, 5000) == 1) {
			int c = accept(l, NULL, NULL);
			char b[256];
			struct pollfd pc = { c, POLLIN, 0 };
			got = 0;
			while (poll(&pc, 1, 1500) == 1) {
				ssize_t n = recv(c, b, sizeof(b), 0);
				if (n <= 0)
					break;
				got += (int32_t)n;
			}
		}
		if (write(rep[1], &got, sizeof(got)) != sizeof(got))
			_exit(5);
		_exit(0);
	}
	char ready;
	CHECK(read(rep[0], &ready, 1) == 1);
	setenv("IOMMUKIT_SOCKET", path, 1);
	CHECK_ERRNO(EACCES, open("/dev/iommu", O_RDWR));
	int32_t got = -2;
	CHECK(read(rep[0], &got, sizeof(got)) == sizeof(got));
	CHECK(got <= 0);
	if (got > 0)
		printf("the squatter received %d bytes\n", got);
	int status;
	CHECK(waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const char *daemon = getenv("IOMMUKIT_TEST_DAEMON");
	char saved_socket[512];
	alarm(60);
	snprintf(saved_socket, sizeof(saved_socket), "%s", getenv("IOMMUKIT_SOCKET") ? getenv("IOMMUKIT_SOCKET") : "");
	CHECK(daemon != NULL);
	unsetenv("IOMMUKIT_DAEMON");

	if (geteuid() == 0)
		squatter();
	else
		printf("not root: the squatter (uid 65534) needs root to switch users; skipped\n");

	/* The default directory as a symlink: refused, nothing created through it. */
	char xdg[] = "/tmp/iommukit-xdg-XXXXXX", target[] = "/tmp/iommukit-target-XXXXXX", link[256];
	CHECK(mkdtemp(xdg) && mkdtemp(target));
	snprintf(link, sizeof(link), "%s/iommukit", xdg);
	CHECK_OK(symlink(target, link));
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	unsetenv("IOMMUKIT_SOCKET");
	setenv("IOMMUKIT_DAEMON", daemon ? daemon : "/nonexistent", 1);
	CHECK_ERRNO(EACCES, open("/dev/iommu", O_RDWR));
	CHECK(rmdir(target) == 0);          /* still empty */
	unlink(link);
	rmdir(xdg);

	/* A service the shim starts: in the private directory, its default log a planted
	 * symlink that must not be followed. */
	char xdg2[] = "/tmp/iommukit-xdg-XXXXXX", dir[256], sock[300], log[300], victim[300];
	CHECK(mkdtemp(xdg2) != NULL);
	snprintf(dir, sizeof(dir), "%s/iommukit", xdg2);
	snprintf(sock, sizeof(sock), "%s/iommukitd.sock", dir);
	snprintf(log, sizeof(log), "%s/iommukitd.log", dir);
	snprintf(victim, sizeof(victim), "%s/victim", xdg2);
	CHECK_OK(mkdir(dir, 0700));
	write_file(victim, victim_text);
	CHECK_OK(symlink(victim, log));
	setenv("XDG_RUNTIME_DIR", xdg2, 1);
	setenv("IOMMUKIT_IDLE_EXIT", "5", 1);
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	struct iommu_ioas_alloc a = { sizeof(a), 0, 0 };
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	struct stat st;
	CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	CHECK(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	CHECK(file_is(victim, victim_text));
	if (fd >= 0)
		stop_service(fd);

	/* An explicit IOMMUKIT_LOG planted as a symlink. */
	char xdg3[] = "/tmp/iommukit-xdg-XXXXXX", log3[300], victim3[300], sock3[300];
	CHECK(mkdtemp(xdg3) != NULL);
	snprintf(sock3, sizeof(sock3), "%s/explicit.sock", xdg3);
	snprintf(log3, sizeof(log3), "%s/explicit.log", xdg3);
	snprintf(victim3, sizeof(victim3), "%s/victim", xdg3);
	write_file(victim3, victim_text);
	CHECK_OK(symlink(victim3, log3));
	setenv("IOMMUKIT_SOCKET", sock3, 1);
	setenv("IOMMUKIT_LOG", log3, 1);
	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	CHECK(file_is(victim3, victim_text));
	if (fd >= 0)
		stop_service(fd);

	unlink(log);
	unlink(victim);
	rmdir(dir);
	rmdir(xdg2);
	unlink(log3);
	unlink(victim3);
	rmdir(xdg3);
	if (saved_socket[0])
		setenv("IOMMUKIT_SOCKET", saved_socket, 1);
	return ck_summary();
}
