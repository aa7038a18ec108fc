/*
 * test-exclude.c: rsync-style exclude patterns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "exclude.h"

static struct exclude *
mk(const char *list)
{
	struct exclude *x;
	char err[256];

	assert_int_equal(exclude_new(&x), 0);
	assert_int_equal(exclude_add_list(x, list, err, sizeof err), 0);
	return x;
}

static int
m(const struct exclude *x, const char *path, int is_dir)
{
	return exclude_match(x, path, strlen(path), is_dir);
}

static void
test_last_component(void **state)
{
	struct exclude *x = mk("*.o, core");

	(void)state;
	assert_true(m(x, "a.o", 0));
	assert_true(m(x, "src/lib/a.o", 0));
	assert_true(m(x, "core", 0));
	assert_true(m(x, "x/core", 1));
	assert_false(m(x, "a.oo", 0));
	assert_false(m(x, "core.c", 0));
	assert_false(m(x, "score", 0));
	/* what lies under an excluded directory is excluded too */
	assert_true(m(x, "core/file", 0));
	assert_true(m(x, "a/core/b/c", 0));
	exclude_free(x);
}

static void
test_anchored(void **state)
{
	struct exclude *x = mk("/build\n/doc/*.tmp");

	(void)state;
	assert_true(m(x, "build", 1));
	assert_true(m(x, "build/x.c", 0));
	assert_false(m(x, "src/build", 1));
	assert_true(m(x, "doc/a.tmp", 0));
	assert_false(m(x, "x/doc/a.tmp", 0));
	assert_false(m(x, "doc/sub/a.tmp", 0));
	exclude_free(x);
}

static void
test_unanchored_path(void **state)
{
	struct exclude *x = mk("cache/*.db");

	(void)state;
	assert_true(m(x, "cache/a.db", 0));
	assert_true(m(x, "srv/cache/a.db", 0));
	/* matched at a component border only */
	assert_false(m(x, "srvcache/a.db", 0));
	assert_false(m(x, "cache/x/a.db", 0));
	exclude_free(x);
}

static void
test_dir_only(void **state)
{
	struct exclude *x = mk("tmp/");

	(void)state;
	assert_true(m(x, "tmp", 1));
	assert_true(m(x, "a/tmp", 1));
	assert_false(m(x, "tmp", 0));
	assert_false(m(x, "a/tmp", 0));
	assert_true(m(x, "a/tmp/f", 0));
	exclude_free(x);
}

static void
test_double_star(void **state)
{
	struct exclude *x = mk("/logs/**/old, a/**.bak");

	(void)state;
	assert_true(m(x, "logs/x/old", 0));
	assert_true(m(x, "logs/x/y/z/old", 0));
	assert_true(m(x, "logs//old", 0));
	assert_false(m(x, "logs/old", 0));
	assert_false(m(x, "logs/x/older", 0));
	assert_true(m(x, "a/f.bak", 0));
	assert_true(m(x, "a/b/c/f.bak", 0));
	assert_true(m(x, "z/a/b/f.bak", 0));
	assert_false(m(x, "a/b/c/f.bak2", 0));
	exclude_free(x);
}

static void
test_star_and_question(void **state)
{
	struct exclude *x = mk("/d/*, ?.x");

	(void)state;
	assert_true(m(x, "d/file", 0));
	assert_true(m(x, "d/sub", 1));
	assert_true(m(x, "d/sub/deep", 0));	/* under d/sub */
	assert_false(m(x, "dd/file", 0));
	assert_true(m(x, "a.x", 0));
	assert_false(m(x, "ab.x", 0));
	assert_false(m(x, ".x", 0));
	exclude_free(x);
}

static void
test_classes(void **state)
{
	struct exclude *x = mk("file[0-9].txt, [!a-c]z, []]q, \\*lit");

	(void)state;
	assert_true(m(x, "file0.txt", 0));
	assert_true(m(x, "d/file9.txt", 0));
	assert_false(m(x, "filex.txt", 0));
	assert_false(m(x, "file10.txt", 0));
	assert_true(m(x, "dz", 0));
	assert_false(m(x, "az", 0));
	assert_false(m(x, "cz", 0));
	assert_true(m(x, "]q", 0));
	assert_true(m(x, "*lit", 0));
	assert_false(m(x, "xlit", 0));
	exclude_free(x);

	/* an unterminated class is a literal '[' */
	x = mk("a[b");
	assert_true(m(x, "a[b", 0));
	assert_false(m(x, "ab", 0));
	exclude_free(x);
}

static void
test_tmp_prefix(void **state)
{
	struct exclude *x = mk("nothing");

	(void)state;
	assert_true(m(x, ".asyncrep-tmp.abc", 0));
	assert_true(m(x, "d/.asyncrep-tmp.abc", 0));
	assert_true(m(NULL, "d/.asyncrep-tmp.x", 0));
	assert_true(m(NULL, ".asyncrep-tmp.d/inside", 0));
	assert_false(m(NULL, "d/asyncrep-tmp.x", 0));
	assert_false(m(NULL, "plain", 0));
	exclude_free(x);
}

static void
test_empty_and_paths(void **state)
{
	struct exclude *x;

	(void)state;
	assert_true(exclude_empty(NULL));
	assert_false(exclude_has_paths(NULL));
	assert_int_equal(exclude_new(&x), 0);
	assert_true(exclude_empty(x));
	exclude_free(x);
	x = mk("*.o, keep/");
	assert_false(exclude_empty(x));
	assert_false(exclude_has_paths(x));
	exclude_free(x);
	x = mk("*.o, /top");
	assert_true(exclude_has_paths(x));
	exclude_free(x);
	x = mk("a/b");
	assert_true(exclude_has_paths(x));
	exclude_free(x);
	x = mk("**.o");
	assert_true(exclude_has_paths(x));
	exclude_free(x);
}

static void
test_bad_patterns(void **state)
{
	struct exclude *x;
	char err[256], big[2048];
	int i;

	(void)state;
	assert_int_equal(exclude_new(&x), 0);
	assert_int_equal(exclude_add(x, "", err, sizeof err), -AR_EUSAGE);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(exclude_add(x, "/", err, sizeof err), -AR_EUSAGE);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(exclude_add(x, big, err, sizeof err), -AR_EUSAGE);
	assert_int_equal(exclude_add_list(x, big, err, sizeof err),
	    -AR_EUSAGE);
	for (i = 0; i < EXCLUDE_MAX; i++)
		assert_int_equal(exclude_add(x, "p", err, sizeof err), 0);
	assert_int_equal(exclude_add(x, "p", err, sizeof err), -AR_EUSAGE);
	exclude_free(x);
	/* blanks and empty items of a list are not patterns */
	x = mk(" a , ,\n\n b ");
	assert_true(m(x, "a", 0));
	assert_true(m(x, "b", 0));
	assert_false(m(x, " a", 0));
	exclude_free(x);
}

static void
test_hostile_is_bounded(void **state)
{
	struct exclude *x;
	char path[4001];

	(void)state;
	/* would take exponential time with a backtracking matcher */
	x = mk("**a**a**a**a**a**a**a**a**a**a**b");
	memset(path, 'a', sizeof path - 1);
	path[sizeof path - 1] = '\0';
	assert_false(m(x, path, 0));
	exclude_free(x);
	assert_false(m(NULL, "", 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_component),
		cmocka_unit_test(test_anchored),
		cmocka_unit_test(test_unanchored_path),
		cmocka_unit_test(test_dir_only),
		cmocka_unit_test(test_double_star),
		cmocka_unit_test(test_star_and_question),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_tmp_prefix),
		cmocka_unit_test(test_empty_and_paths),
		cmocka_unit_test(test_bad_patterns),
		cmocka_unit_test(test_hostile_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
