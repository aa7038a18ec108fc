/*
 * test-util.c: the monotonic clock, array growth and directory locks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "scratch.h"
#include "util.h"

static void
test_clock_moves_forward(void **state)
{
	uint64_t a, b, ms;

	(void)state;
	a = util_mono_ns();
	usleep(2000);
	b = util_mono_ns();
	ms = util_mono_ms();
	assert_true(b > a);
	assert_true(b - a >= 2000000u);
	assert_true(ms >= b / 1000000u);
}

static void
test_grow_doubles_and_keeps(void **state)
{
	int *a = NULL;
	size_t cap = 0, i;

	(void)state;
	assert_int_equal(util_grow(&a, &cap, 1, sizeof(*a), 4), 0);
	assert_int_equal(cap, 4);
	for (i = 0; i < 4; i++)
		a[i] = (int)i;
	assert_int_equal(util_grow(&a, &cap, 3, sizeof(*a), 4), 0);
	assert_int_equal(cap, 4);
	assert_int_equal(util_grow(&a, &cap, 9, sizeof(*a), 4), 0);
	assert_int_equal(cap, 16);
	for (i = 0; i < 4; i++)
		assert_int_equal(a[i], (int)i);
	free(a);
}

static void
test_grow_refuses_overflow(void **state)
{
	char *a = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(util_grow(&a, &cap, SIZE_MAX, 2, 1), -AR_ENOMEM);
	assert_null(a);
	assert_int_equal(cap, 0);
}

static void
test_lock_excludes_another_process(void **state)
{
	char top[PATH_MAX];
	int dirfd, fd, fd2, status;
	pid_t pid;

	(void)state;
	assert_int_equal(scratch_make(top, sizeof top, "test-util"), 0);
	dirfd = open(top, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	/* Not there yet: an existing-only open fails, nothing is held. */
	assert_int_equal(util_lock(dirfd, "lock", 0, &fd), -AR_ESTATE);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(util_lock_held(dirfd, "lock"), 0);
	assert_int_equal(util_lock(dirfd, "lock", 1, &fd), 0);
	assert_true(fd >= 0);
	/* flock is per open file description: a child's own open fails. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = util_lock(dirfd, "lock", 1, &fd2);

		_exit(r == -AR_ESTATE && errno == EWOULDBLOCK &&
		    util_lock_held(dirfd, "lock") == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(fd);
	assert_int_equal(util_lock_held(dirfd, "lock"), 0);
	assert_int_equal(unlinkat(dirfd, "lock", 0), 0);
	close(dirfd);
	assert_int_equal(scratch_remove(top), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock_moves_forward),
		cmocka_unit_test(test_grow_doubles_and_keeps),
		cmocka_unit_test(test_grow_refuses_overflow),
		cmocka_unit_test(test_lock_excludes_another_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
