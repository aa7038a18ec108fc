/*
 * test-walk.c: directory listings, their order, types and lookups.
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
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "scratch.h"
#include "walk.h"

struct tctx {
	char top[PATH_MAX];
	int fd;
	struct walk_dir d;
};

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-walk"), 0);
	t->fd = open(t->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->fd >= 0);
	walk_dir_init(&t->d);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	walk_dir_release(&t->d);
	close(t->fd);
	scratch_remove(t->top);
	free(t);
	return 0;
}

static void
put(int dirfd, const char *name)
{
	int fd;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, name, strlen(name)), (ssize_t)strlen(name));
	assert_int_equal(close(fd), 0);
}

/* Strictly increasing by unsigned bytes, each name as long as it says. */
static void
check_sorted(const struct walk_dir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		assert_non_null(d->ents[i].name);
		assert_int_equal(strlen(d->ents[i].name), d->ents[i].namelen);
		if (i > 0)
			assert_true(strcmp(d->ents[i - 1].name,
			    d->ents[i].name) < 0);
	}
}

static void
test_walk_empty(void **state)
{
	struct tctx *t = *state;

	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, 0);
	assert_null(walk_find(&t->d, "x"));
	assert_null(walk_find(&t->d, ""));
	assert_int_equal(walk_list(t->fd, WALK_SKIP_TMP, &t->d), 0);
	assert_int_equal(t->d.n, 0);
}

static void
test_walk_order_types(void **state)
{
	/* The expected order: bytes as unsigned, a prefix first. */
	static const char *const want[] = {
		FS_TMP_PREFIX "x.abc123",
		"Z",
		"a",
		"a\n",
		"a\nb",
		"a b",
		"ab",
		"b",
		"dir",
		"fifo",
		"lnk",
		"z\x7f",
		"\x80x",
		"\xc3\xa9t\xc3\xa9",
		"\xff",
		"\xff\xfe",
	};
	static const int type[] = {
		WALK_FILE, WALK_FILE, WALK_FILE, WALK_FILE, WALK_FILE,
		WALK_FILE, WALK_FILE, WALK_FILE, WALK_DIR, WALK_OTHER,
		WALK_LINK, WALK_FILE, WALK_FILE, WALK_FILE, WALK_FILE,
		WALK_FILE,
	};
	/* Created out of order, so sorting is what puts them right. */
	static const size_t order[] = {
		15, 3, 0, 7, 12, 1, 5, 14, 2, 4, 6, 11, 13,
	};
	struct tctx *t = *state;
	const size_t nwant = sizeof want / sizeof want[0];
	struct walk_ent *e;
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof order / sizeof order[0]; i++)
		put(t->fd, want[order[i]]);
	assert_int_equal(mkdirat(t->fd, "dir", 0755), 0);
	assert_int_equal(mkfifoat(t->fd, "fifo", 0600), 0);
	assert_int_equal(symlinkat("dir", t->fd, "lnk"), 0);

	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, nwant);
	check_sorted(&t->d);
	for (i = 0; i < nwant; i++) {
		e = &t->d.ents[i];
		assert_int_equal(e->namelen, strlen(want[i]));
		assert_memory_equal(e->name, want[i], e->namelen);
		assert_int_equal(e->type, type[i]);
		/* The entry's own stat, never its target's. */
		assert_int_equal(fstatat(t->fd, want[i], &st,
		    AT_SYMLINK_NOFOLLOW), 0);
		assert_int_equal(e->st.st_ino, st.st_ino);
		assert_int_equal(e->st.st_mode, st.st_mode);
		assert_ptr_equal(walk_find(&t->d, want[i]), e);
	}
	assert_null(walk_find(&t->d, "c"));
	assert_null(walk_find(&t->d, "A"));
	assert_null(walk_find(&t->d, "a\n\n"));
	assert_null(walk_find(&t->d, "\xfe"));
	assert_null(walk_find(&t->d, ""));
	assert_null(walk_find(&t->d, "\xff\xfe\xfd"));

	/* Temp files left out on request, the rest unchanged. */
	assert_int_equal(walk_list(t->fd, WALK_SKIP_TMP, &t->d), 0);
	assert_int_equal(t->d.n, nwant - 1);
	check_sorted(&t->d);
	for (i = 1; i < nwant; i++)
		assert_string_equal(t->d.ents[i - 1].name, want[i]);
	assert_null(walk_find(&t->d, want[0]));
	/* Only the exact prefix counts. */
	put(t->fd, ".asyncrep-tmp");
	put(t->fd, ".asyncrep-tmp.");
	assert_int_equal(walk_list(t->fd, WALK_SKIP_TMP, &t->d), 0);
	assert_int_equal(t->d.n, nwant);
	assert_non_null(walk_find(&t->d, ".asyncrep-tmp"));
	assert_null(walk_find(&t->d, ".asyncrep-tmp."));
}

static void
test_walk_relist(void **state)
{
	struct tctx *t = *state;
	struct walk_ent *e;

	put(t->fd, "one");
	put(t->fd, "two");
	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, 2);
	/* A second listing replaces the first, and starts from the top
	 * even though the first one left the offset at the end. */
	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, 2);
	put(t->fd, "three");
	assert_int_equal(unlinkat(t->fd, "one", 0), 0);
	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, 2);
	assert_string_equal(t->d.ents[0].name, "three");
	assert_string_equal(t->d.ents[1].name, "two");
	e = walk_find(&t->d, "two");
	assert_non_null(e);
	assert_int_equal(e->type, WALK_FILE);
	assert_int_equal(e->st.st_size, 3);
	/* dirfd is not consumed. */
	assert_true(fcntl(t->fd, F_GETFD) != -1);
}

static void
test_walk_not_dir(void **state)
{
	struct tctx *t = *state;
	int fd;

	put(t->fd, "file");
	fd = openat(t->fd, "file", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(walk_list(fd, 0, &t->d), -AR_EIO);
	assert_int_equal(t->d.n, 0);
	close(fd);
	assert_int_equal(walk_list(-1, 0, &t->d), -AR_EIO);
}

#define MANY 5000

static void
test_walk_many(void **state)
{
	struct tctx *t = *state;
	char name[64];
	unsigned int i, k;
	int n;
	size_t total = 0;

	/* A permutation of 0..MANY-1 (7919 is prime, coprime to MANY),
	 * with names of varying length so the name storage grows. */
	for (i = 0; i < MANY; i++) {
		k = (i * 7919u) % MANY;
		n = snprintf(name, sizeof name, "%u-%.*s", k, (int)(k % 40),
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_true(n > 0 && (size_t)n < sizeof name);
		put(t->fd, name);
		total += strlen(name) + 1;
	}
	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, MANY);
	assert_int_equal(t->d.names_len, total);
	check_sorted(&t->d);
	for (k = 0; k < MANY; k++) {
		n = snprintf(name, sizeof name, "%u-%.*s", k, (int)(k % 40),
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_true(n > 0 && (size_t)n < sizeof name);
		assert_non_null(walk_find(&t->d, name));
	}
	assert_null(walk_find(&t->d, "5000-"));
	assert_null(walk_find(&t->d, "0"));
	/* Removal through fs, checked by a fresh listing. */
	assert_int_equal(fs_remove_tree(t->fd, "0-"), 0);
	assert_int_equal(walk_list(t->fd, 0, &t->d), 0);
	assert_int_equal(t->d.n, MANY - 1);
	assert_null(walk_find(&t->d, "0-"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_walk_empty),
		T(test_walk_order_types),
		T(test_walk_relist),
		T(test_walk_not_dir),
		T(test_walk_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
