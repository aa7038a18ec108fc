/*
 * test-log.c: unit tests of core/log.c.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Escape the C string s into a buffer of outlen and compare. */
static void
expect_escape(const char *s, size_t len, size_t outlen, const char *want)
{
	char out[256];

	assert_true(outlen <= sizeof out);
	/* Garbage first: the result must be terminated by log_escape. */
	memset(out, 'Z', sizeof out);
	assert_ptr_equal(log_escape(s, len, out, outlen), out);
	assert_non_null(memchr(out, '\0', outlen));
	assert_string_equal(out, want);
	assert_true(strlen(out) < outlen);
}

static void
test_escape_plain(void **state)
{
	expect_escape("hello world/a.txt", 17, 64, "hello world/a.txt");
	expect_escape("", 0, 1, "");
	expect_escape("~!\"'%", 5, 64, "~!\"'%");
	/* len, not the NUL, decides. */
	expect_escape("abcdef", 3, 64, "abc");
}

static void
test_escape_controls(void **state)
{
	expect_escape("a\nb", 3, 64, "a\\nb");
	expect_escape("a\\b", 3, 64, "a\\\\b");
	expect_escape("\t\r\a\b\f\v", 6, 64, "\\t\\r\\a\\b\\f\\v");
	expect_escape("\x1b[31m", 5, 64, "\\x1b[31m");
	expect_escape("\x7f", 1, 64, "\\x7f");
	/* A NUL inside the name is shown, not a terminator. */
	expect_escape("a\0b", 3, 64, "a\\x00b");
	/* A forged log line stays on one line. */
	expect_escape("x\nasyncrep: fake", 16, 64, "x\\nasyncrep: fake");
}

static void
test_escape_non_utf8(void **state)
{
	expect_escape("\x80\xff", 2, 64, "\\x80\\xff");
	/* Valid UTF-8 is escaped too: the log is plain ASCII. */
	expect_escape("\xc3\xa9", 2, 64, "\\xc3\\xa9");
	expect_escape("\xc3(", 2, 64, "\\xc3(");
}

static void
test_escape_truncate(void **state)
{
	/* Exactly fits: no dots. */
	expect_escape("abcde", 5, 6, "abcde");
	/* One byte short: dots replace the tail. */
	expect_escape("abcdef", 6, 6, "ab...");
	expect_escape("abcdefgh", 8, 7, "abc...");
	/* Never half an escape. */
	expect_escape("a\x80zzzz", 6, 7, "a...");
	expect_escape("a\x80zzzz", 6, 8, "a...");
	expect_escape("a\x80zzzz", 6, 9, "a\\x80...");
	expect_escape("\n\n\n", 3, 6, "\\n...");
	expect_escape("\n\n\n", 3, 7, "\\n\\n\\n");
	/* Tiny buffers still end in NUL. */
	expect_escape("abcdef", 6, 1, "");
	expect_escape("abcdef", 6, 2, ".");
	expect_escape("abcdef", 6, 4, "...");
	expect_escape("abcdef", 6, 5, "a...");
}

static void
test_escape_edges(void **state)
{
	char out[8] = "keep";
	char *big, *in;
	size_t i;

	/* outlen 0: nothing written, not even a NUL. */
	assert_ptr_equal(log_escape("abc", 3, out, 0), out);
	assert_string_equal(out, "keep");
	assert_string_equal(log_escape(NULL, 0, out, sizeof out), "(null)");

	/* LOG_ESC_MAX holds the worst case of a PATH_MAX name. */
	in = malloc(4096);
	big = malloc(LOG_ESC_MAX);
	assert_non_null(in);
	assert_non_null(big);
	memset(in, 0xff, 4096);
	log_escape(in, 4096, big, LOG_ESC_MAX);
	assert_int_equal(strlen(big), 4 * 4096);
	for (i = 0; i < 4096; i++)
		assert_memory_equal(big + 4 * i, "\\xff", 4);
	free(in);
	free(big);
}

/*
 * Run log_msg with stderr sent to a pipe; return what was written. A
 * line is below the pipe's capacity, so nothing blocks.
 */
static size_t
capture(char *buf, size_t buflen, int level, const char *arg)
{
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	log_msg(level, "%s", arg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	/* One write(2) per line: one read gets all of it. */
	n = read(fds[0], buf, buflen - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fds[0]);
	return (size_t)n;
}

static void
test_msg(void **state)
{
	char buf[8192], *big;

	log_open("asyncrep", 0, LOG_LVL_INFO);
	assert_int_equal(log_get_level(), LOG_LVL_INFO);
	capture(buf, sizeof buf, LOG_LVL_INFO, "copied a.txt");
	assert_string_equal(buf, "asyncrep: copied a.txt\n");
	capture(buf, sizeof buf, LOG_LVL_ERROR, "failed: x");
	assert_string_equal(buf, "asyncrep: failed: x\n");
	/* Above the level: nothing. */
	assert_int_equal(capture(buf, sizeof buf, LOG_LVL_VERBOSE, "v"),
	    0);
	log_set_level(LOG_LVL_DEBUG);
	capture(buf, sizeof buf, LOG_LVL_DEBUG, "d");
	assert_string_equal(buf, "asyncrep: d\n");
	/* -q -q -q: not even errors. */
	log_set_level(LOG_LVL_ERROR - 1);
	assert_int_equal(capture(buf, sizeof buf, LOG_LVL_ERROR, "e"),
	    0);

	/* An over-long message is cut, marked, and still one line. */
	log_open("t", 0, LOG_LVL_INFO);
	big = malloc(10000);
	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	capture(buf, sizeof buf, LOG_LVL_INFO, big);
	free(big);
	assert_true(strlen(buf) < 4096);
	assert_memory_equal(buf, "t: xxx", 6);
	assert_memory_equal(buf + strlen(buf) - 4, "...\n", 4);
	assert_null(memchr(buf, '\n', strlen(buf) - 1));
	log_open("asyncrep", 0, LOG_LVL_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_plain),
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_escape_non_utf8),
		cmocka_unit_test(test_escape_truncate),
		cmocka_unit_test(test_escape_edges),
		cmocka_unit_test(test_msg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
