/* test-changes.c: coalescing of spool records into a batch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "changes.h"
#include "error.h"

static int
add(struct changes *c, int op, const char *p, const char *p2)
{
	struct spool_rec r;

	memset(&r, 0, sizeof(r));
	r.op = (uint8_t)op;
	r.path_len = (uint16_t)strlen(p);
	memcpy(r.path, p, r.path_len + 1u);
	if (p2 != NULL) {
		r.path2_len = (uint16_t)strlen(p2);
		memcpy(r.path2, p2, r.path2_len + 1u);
	}
	return changes_add(c, &r);
}

static void
rec(struct changes *c, int op, const char *p, const char *p2, int want)
{
	assert_int_equal(add(c, op, p, p2), want);
}

/* The live touched paths, "path[*]" joined by spaces (* = rescan). */
static const char *
live(struct changes *c)
{
	static char out[4096];
	size_t i, len, off = 0;
	const char *p;
	int rescan;

	out[0] = '\0';
	for (i = 0; i < changes_npaths(c); i++) {
		if (!changes_path(c, i, &p, &len, &rescan))
			continue;
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%.*s%s",
		    off ? " " : "", (int)len, p, rescan ? "*" : "");
	}
	return out;
}

static void
test_coalesce(void **state)
{
	struct changes *c;

	(void)state;
	assert_int_equal(changes_new(100, &c), 0);
	rec(c, SPOOL_MODIFY, "a/f", NULL, 0);
	rec(c, SPOOL_MODIFY, "a/f", NULL, 0);
	rec(c, SPOOL_ATTRIB, "a/f", NULL, 0);
	rec(c, SPOOL_MODIFY, "top", NULL, 0);
	/* parents first, each path once, root never */
	assert_string_equal(live(c), "a a/f top");
	assert_int_equal(changes_full(c), 0);
	rec(c, SPOOL_RESCAN, "", NULL, 0);
	assert_int_equal(changes_full(c), 1);
	changes_reset(c);
	assert_string_equal(live(c), "");
	assert_int_equal(changes_count(c), 0);
	changes_free(c);
}

static void
test_rename_rewrites(void **state)
{
	struct changes *c;
	const char *f, *t;
	size_t fl, tl;

	(void)state;
	assert_int_equal(changes_new(100, &c), 0);
	rec(c, SPOOL_MKDIR, "a", NULL, 0);
	rec(c, SPOOL_MODIFY, "a/b/c/f", NULL, 0);
	rec(c, SPOOL_MODIFY, "ab", NULL, 0);	/* a prefix, not beneath */
	rec(c, SPOOL_RENAME, "a", "x", 0);
	/* written before the rename: fetched under the new name */
	assert_string_equal(live(c), "x x/b/c x/b/c/f ab a");
	rec(c, SPOOL_MODIFY, "x/b/c/g", NULL, 0);
	rec(c, SPOOL_RENAME, "x", "y", 0);
	assert_string_equal(live(c), "y y/b/c y/b/c/f ab a y/b/c/g x");
	/* what the batch touches itself, live: not what was rewritten
	 * away, nor a directory only above a touched path */
	assert_true(changes_has(c, "y/b/c", 5));
	assert_true(changes_has(c, "x", 1));
	assert_true(changes_has(c, "abc", 2));	/* "ab" */
	assert_false(changes_has(c, "x/b/c", 5));
	assert_false(changes_has(c, "y/b", 3));
	assert_false(changes_has(c, "", 0));
	assert_int_equal(changes_nrenames(c), 2);
	changes_rename(c, 1, &f, &fl, &t, &tl);
	assert_string_equal(f, "x");
	assert_string_equal(t, "y");
	changes_free(c);
}

static void
test_rename_onto_touched(void **state)
{
	struct changes *c;

	(void)state;
	assert_int_equal(changes_new(100, &c), 0);
	rec(c, SPOOL_MODIFY, "d/new", NULL, 0);
	rec(c, SPOOL_RESCAN, "s", NULL, 0);
	rec(c, SPOOL_MODIFY, "old", NULL, 0);
	/* the target was touched already: one entry, rescan flag kept */
	rec(c, SPOOL_RENAME, "s", "d/new", 0);
	assert_string_equal(live(c), "d d/new* old s");
	changes_free(c);
}

static void
test_full(void **state)
{
	struct changes *c;
	char p[32];
	int i;

	(void)state;
	assert_int_equal(changes_new(16, &c), 0);
	for (i = 0; i < 15; i++) {
		snprintf(p, sizeof(p), "f%d", i);
		rec(c, SPOOL_MODIFY, p, NULL, 0);
	}
	rec(c, SPOOL_MODIFY, "dir/f", NULL, 0);
	/* 17 paths: the next record may add two more past 2 * 16 - 2 */
	for (i = 0; i < 20 && changes_room(c); i++) {
		snprintf(p, sizeof(p), "g%d", i);
		assert_int_equal(add(c, SPOOL_MODIFY, p, NULL), 0);
	}
	assert_true(i < 20);
	assert_int_equal(changes_room(c), 0);
	assert_true(changes_npaths(c) <= 32);
	changes_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coalesce),
		cmocka_unit_test(test_rename_rewrites),
		cmocka_unit_test(test_rename_onto_touched),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
