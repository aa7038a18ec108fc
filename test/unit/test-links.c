/*
 * test-links.c: the hard-link groups of a manifest: the first path of an
 * inode is remembered, later ones get it back, across table growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "links.h"

static void
test_first_path_wins(void **state)
{
	struct links *l;
	const char *t;
	size_t tlen;

	(void)state;
	assert_int_equal(links_new(&l), 0);
	assert_int_equal(links_find_or_add(l, 1, 42, "a", 1, &t, &tlen), 0);
	assert_int_equal(links_find_or_add(l, 1, 42, "d/b", 3, &t, &tlen), 1);
	assert_string_equal(t, "a");
	assert_int_equal(tlen, 1);
	/* Same inode number on another device: another group. */
	assert_int_equal(links_find_or_add(l, 2, 42, "c", 1, &t, &tlen), 0);
	assert_int_equal(links_find_or_add(l, 2, 42, "e", 1, &t, &tlen), 1);
	assert_string_equal(t, "c");
	links_free(l);
}

static void
test_growth_keeps_every_group(void **state)
{
	struct links *l;
	char path[32];
	const char *t;
	size_t tlen;
	int i, n;

	(void)state;
	assert_int_equal(links_new(&l), 0);
	for (i = 0; i < 10000; i++) {
		n = snprintf(path, sizeof(path), "f%d", i);
		assert_int_equal(links_find_or_add(l, 7, (ino_t)i * 4096, path,
		    (size_t)n, &t, &tlen), 0);
	}
	for (i = 0; i < 10000; i++) {
		n = snprintf(path, sizeof(path), "f%d", i);
		assert_int_equal(links_find_or_add(l, 7, (ino_t)i * 4096, "x",
		    1, &t, &tlen), 1);
		assert_int_equal(tlen, (size_t)n);
		assert_memory_equal(t, path, tlen);
	}
	links_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_path_wins),
		cmocka_unit_test(test_growth_keeps_every_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
