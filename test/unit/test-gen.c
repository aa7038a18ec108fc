/*
 * test-gen.c: the generation id and the spool directory's lock.
 *
 * Each test works in its own mkdtemp() directory; the spool directory is
 * top/a/spool, so gen_open also has to create its parent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "gen.h"
#include "scratch.h"

#define GOOD "0123456789abcdef0123456789abcdef"

struct tctx {
	char top[PATH_MAX];
	char spool[PATH_MAX];	/* top/a/spool */
	char genfile[PATH_MAX];	/* spool/generation */
	int lockfd, lockfd2;
	char gen[LIMIT_GEN_LEN + 1];
	char err[512];
};

static int
setup(void **state)
{
	struct tctx *t;
	int n;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-gen"), 0);
	n = snprintf(t->spool, sizeof t->spool, "%s/a/spool", t->top);
	assert_true(n > 0 && (size_t)n < sizeof t->spool);
	n = snprintf(t->genfile, sizeof t->genfile, "%s/generation",
	    t->spool);
	assert_true(n > 0 && (size_t)n < sizeof t->genfile);
	t->lockfd = t->lockfd2 = -1;
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	if (t->lockfd >= 0)
		close(t->lockfd);
	if (t->lockfd2 >= 0)
		close(t->lockfd2);
	assert_int_equal(scratch_remove(t->top), 0);
	free(t);
	return 0;
}

static void
put_file(const char *path, const void *data, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* The whole file into buf (NUL-terminated); returns its length. */
static size_t
get_file(const char *path, char *buf, size_t buflen)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, buflen - 1);
	assert_true(n >= 0);
	assert_int_equal(close(fd), 0);
	buf[n] = '\0';
	return (size_t)n;
}

static int
is_lower_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static void
test_gen_fresh_and_persistent(void **state)
{
	struct tctx *t = *state;
	char first[LIMIT_GEN_LEN + 1], buf[128];
	struct stat st;

	memset(t->gen, 'x', sizeof t->gen);
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_true(t->lockfd >= 0);
	assert_int_equal(strlen(t->gen), LIMIT_GEN_LEN);
	assert_true(is_lower_hex(t->gen, LIMIT_GEN_LEN));
	assert_true(gen_valid(t->gen));

	/* A new directory (and its parent), private to us. */
	assert_int_equal(stat(t->spool, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);

	/* On disk: the id and a newline. */
	assert_int_equal(get_file(t->genfile, buf, sizeof buf),
	    LIMIT_GEN_LEN + 1);
	assert_memory_equal(buf, t->gen, LIMIT_GEN_LEN);
	assert_int_equal(buf[LIMIT_GEN_LEN], '\n');

	/* Kept across a restart. */
	memcpy(first, t->gen, sizeof first);
	assert_int_equal(close(t->lockfd), 0);
	t->lockfd = -1;
	memset(t->gen, 0, sizeof t->gen);
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_true(t->lockfd >= 0);
	assert_string_equal(t->gen, first);
	assert_int_equal(get_file(t->genfile, buf, sizeof buf),
	    LIMIT_GEN_LEN + 1);
	assert_memory_equal(buf, first, LIMIT_GEN_LEN);
}

static void
test_gen_differs_per_spool(void **state)
{
	struct tctx *t = *state;
	char other[PATH_MAX], g2[LIMIT_GEN_LEN + 1];
	int n;

	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	n = snprintf(other, sizeof other, "%s/other", t->top);
	assert_true(n > 0 && (size_t)n < sizeof other);
	assert_int_equal(gen_open(other, &t->lockfd2, g2, t->err,
	    sizeof t->err), 0);
	/* 128 random bits: equal ids mean the randomness is broken. */
	assert_string_not_equal(t->gen, g2);
}

static void
test_gen_existing_file(void **state)
{
	struct tctx *t = *state;
	char parent[PATH_MAX];
	int n;

	n = snprintf(parent, sizeof parent, "%s/a", t->top);
	assert_true(n > 0 && (size_t)n < sizeof parent);
	assert_int_equal(mkdir(parent, 0700), 0);
	assert_int_equal(mkdir(t->spool, 0700), 0);

	/* An id written by hand, without the newline, is taken as is. */
	put_file(t->genfile, GOOD, LIMIT_GEN_LEN);
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_string_equal(t->gen, GOOD);
	close(t->lockfd);
	t->lockfd = -1;

	put_file(t->genfile, GOOD "\n", LIMIT_GEN_LEN + 1);
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_string_equal(t->gen, GOOD);
}

static void
test_gen_locked(void **state)
{
	struct tctx *t = *state;
	char g2[LIMIT_GEN_LEN + 1];

	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);

	/* flock belongs to the open file description, so a second open in
	 * this same process is refused like another process would be. */
	t->lockfd2 = 1234;
	t->err[0] = '\0';
	assert_int_equal(gen_open(t->spool, &t->lockfd2, g2, t->err,
	    sizeof t->err), -AR_ESTATE);
	assert_int_equal(t->lockfd2, -1);
	assert_non_null(strstr(t->err, "locked"));
	assert_non_null(strstr(t->err, t->spool));

	/* The refusal did not take the lock away from the holder. */
	assert_int_equal(gen_open(t->spool, &t->lockfd2, g2, t->err,
	    sizeof t->err), -AR_ESTATE);

	/* Released with its fd: now it opens, same generation. */
	assert_int_equal(close(t->lockfd), 0);
	t->lockfd = -1;
	assert_int_equal(gen_open(t->spool, &t->lockfd2, g2, t->err,
	    sizeof t->err), 0);
	assert_true(t->lockfd2 >= 0);
	assert_string_equal(g2, t->gen);
}

/* Each of these generation files is refused, named in the message, left
 * as it was, and the lock is not kept. */
static void
test_gen_corrupt(void **state)
{
	struct tctx *t = *state;
	static const char *const bad[] = {
		"",
		"\n",
		"0123456789abcdef0123456789abcde\n",	/* 31 */
		"0123456789abcdef0123456789abcdef0\n",	/* 33 */
		"0123456789abcdef0123456789abcdef0",	/* 33, no newline */
		"0123456789ABCDEF0123456789ABCDEF\n",	/* uppercase */
		"0123456789abcdef0123456789abcdeF\n",
		"0123456789abcdeg0123456789abcdef\n",	/* not hex */
		" 0123456789abcdef0123456789abcdef\n",
		"0123456789abcdef 0123456789abcdef\n",
		"hello, world: this is not a generation id at all\n",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1"
		    "\xf0\xef\xee\xed\xec\xeb\xea\xe9\xe8\xe7\xe6\xe5\xe4\xe3"
		    "\xe2\xe1\xe0",
	};
	static const char nul[] = "0123456789abcdef\0" "123456789abcdef\n";
	char big[4096], buf[sizeof big + 1];
	size_t i;
	int fd;

	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_int_equal(close(t->lockfd), 0);
	t->lockfd = -1;

	for (i = 0; i < sizeof bad / sizeof bad[0] + 2; i++) {
		const char *data;
		size_t len;

		if (i < sizeof bad / sizeof bad[0]) {
			data = bad[i];
			len = strlen(data);
		} else if (i == sizeof bad / sizeof bad[0]) {
			data = nul;	/* a NUL inside */
			len = sizeof nul - 1;
		} else {
			memset(big, 'a', sizeof big);	/* too long */
			data = big;
			len = sizeof big;
		}
		print_message("# case %zu\n", i);
		put_file(t->genfile, data, len);
		t->err[0] = '\0';
		t->lockfd = 1234;
		assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen,
		    t->err, sizeof t->err), -AR_ESTATE);
		assert_int_equal(t->lockfd, -1);
		assert_non_null(strstr(t->err, "generation"));
		assert_non_null(strstr(t->err, t->spool));
		/* Nothing lost: the operator can look at what was there. */
		assert_int_equal(get_file(t->genfile, buf, sizeof buf), len);
		assert_memory_equal(buf, data, len);
		/* The lock went with the failure. */
		fd = -1;
		assert_int_equal(gen_open(t->spool, &fd, t->gen, t->err,
		    sizeof t->err), -AR_ESTATE);
		assert_non_null(strstr(t->err, "generation"));
		t->lockfd = -1;
	}

	/* Put right, it opens again. */
	put_file(t->genfile, GOOD "\n", LIMIT_GEN_LEN + 1);
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_string_equal(t->gen, GOOD);
}

static void
test_gen_generation_not_a_file(void **state)
{
	struct tctx *t = *state;

	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), 0);
	assert_int_equal(close(t->lockfd), 0);
	t->lockfd = -1;
	assert_int_equal(unlink(t->genfile), 0);
	assert_int_equal(mkdir(t->genfile, 0700), 0);
	t->err[0] = '\0';
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), -AR_ESTATE);
	assert_int_equal(t->lockfd, -1);
	assert_non_null(strstr(t->err, "generation"));
	assert_int_equal(rmdir(t->genfile), 0);
}

static void
test_gen_bad_spool(void **state)
{
	struct tctx *t = *state;
	char parent[PATH_MAX], lock[PATH_MAX];
	int n;

	/* The spool path is a file. */
	n = snprintf(parent, sizeof parent, "%s/a", t->top);
	assert_true(n > 0 && (size_t)n < sizeof parent);
	assert_int_equal(mkdir(parent, 0700), 0);
	put_file(t->spool, "x", 1);
	t->err[0] = '\0';
	t->lockfd = 1234;
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), -AR_ESTATE);
	assert_int_equal(t->lockfd, -1);
	assert_non_null(strstr(t->err, t->spool));
	assert_int_equal(unlink(t->spool), 0);

	/* A symlink where the lock file goes is not followed. */
	assert_int_equal(mkdir(t->spool, 0700), 0);
	n = snprintf(lock, sizeof lock, "%s/lock", t->spool);
	assert_true(n > 0 && (size_t)n < sizeof lock);
	assert_int_equal(symlink("elsewhere", lock), 0);
	t->err[0] = '\0';
	assert_int_equal(gen_open(t->spool, &t->lockfd, t->gen, t->err,
	    sizeof t->err), -AR_ESTATE);
	assert_int_equal(t->lockfd, -1);
	assert_non_null(strstr(t->err, t->spool));
	n = snprintf(lock, sizeof lock, "%s/elsewhere", t->spool);
	assert_true(n > 0 && (size_t)n < sizeof lock);
	assert_int_equal(access(lock, F_OK), -1);
}

static void
test_gen_valid(void **state)
{
	(void)state;
	assert_true(gen_valid(GOOD));
	assert_true(gen_valid("ffffffffffffffffffffffffffffffff"));
	assert_true(gen_valid("00000000000000000000000000000000"));
	/* The on-disk form, as gen_open hands the file's bytes over. */
	assert_true(gen_valid(GOOD "\n"));

	assert_false(gen_valid(""));
	assert_false(gen_valid("\n"));
	assert_false(gen_valid("0123456789abcdef0123456789abcde"));
	assert_false(gen_valid("0123456789abcdef0123456789abcdef0"));
	assert_false(gen_valid("0123456789ABCDEF0123456789ABCDEF"));
	assert_false(gen_valid("A123456789abcdef0123456789abcdef"));
	assert_false(gen_valid("0123456789abcdeg0123456789abcdef"));
	assert_false(gen_valid("0123456789abcdef0123456789abcde "));
	assert_false(gen_valid(" 0123456789abcdef0123456789abcdef"));
	assert_false(gen_valid("0123456789abcdef0123456789abcdef "));
	assert_false(gen_valid("0123456789abcdef0123456789abcdef\r\n"));
	assert_false(gen_valid("0123456789abcdef-0123456789abcdef"));
	assert_false(gen_valid("0123456789abcdef\xff" "123456789abcdef"));

	/* The wire's check: the id's bytes alone, by length. */
	assert_true(limit_gen_valid(GOOD, LIMIT_GEN_LEN));
	assert_true(limit_gen_valid(GOOD "\n", LIMIT_GEN_LEN));
	assert_false(limit_gen_valid(GOOD, LIMIT_GEN_LEN - 1));
	assert_false(limit_gen_valid(GOOD "0", LIMIT_GEN_LEN + 1));
	assert_false(limit_gen_valid("", 0));
	assert_false(limit_gen_valid("0123456789ABCDEF0123456789abcdef",
	    LIMIT_GEN_LEN));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gen_fresh_and_persistent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gen_differs_per_spool,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gen_existing_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gen_locked, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gen_corrupt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gen_generation_not_a_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gen_bad_spool, setup,
		    teardown),
		cmocka_unit_test(test_gen_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
