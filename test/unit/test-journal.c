/*
 * test-journal.c: the in-place journal (core/journal.c). A committed
 * journal reads back and writes its blocks and holes into a copy,
 * growing or shrinking it; one cut at any byte, or with any byte
 * changed, or never committed, is refused, never applied.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "journal.h"
#include "scratch.h"

#define B 65536u

struct fixture {
	char top[4096];
	int dirfd;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(scratch_make(f->top, sizeof(f->top), "journal"), 0);
	f->dirfd = open(f->top, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	close(f->dirfd);
	assert_int_equal(scratch_remove(f->top), 0);
	free(f);
	return 0;
}

static void
fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static void
head_of(struct journal_head *h, uint64_t size)
{
	memset(h, 0, sizeof(*h));
	h->dev = 42;
	h->ino = 4242;
	h->size = size;
	h->mtime_sec = 1700000000;
	h->mtime_nsec = 5;
	h->mode = 0644;
	h->uid = 1000;
	h->gid = 100;
	h->path_len = (uint16_t)strlen("d/db.img");
	memcpy(h->path, "d/db.img", h->path_len);
}

/* A journal of three records (a block, a hole, a short last block),
 * committed; its name in name. */
static void
write_journal(int dirfd, uint64_t size, char *name, size_t namelen)
{
	struct journal_head h;
	struct journal j;
	uint8_t *buf = malloc(B);

	assert_non_null(buf);
	head_of(&h, size);
	journal_init(&j, dirfd);
	assert_int_equal(journal_begin(&j, &h), 0);
	fill(buf, B, 1);
	assert_int_equal(journal_put(&j, B, buf, B, 0), 0);
	assert_int_equal(journal_put(&j, 3 * B, NULL, B, 1), 0);
	fill(buf, 1000, 9);
	assert_int_equal(journal_put(&j, size - 1000, buf, 1000, 0), 0);
	assert_int_equal(journal_commit(&j), 0);
	assert_true(strlen(j.name) < namelen);
	memcpy(name, j.name, strlen(j.name) + 1);
	journal_release(&j);
	free(buf);
}

static void
test_commit_and_apply(void **state)
{
	struct fixture *f = *state;
	struct journal_head h;
	struct journal j;
	uint64_t size = 6 * B + 1000;
	uint8_t *old = malloc(5 * B), *got = malloc(size), *want = malloc(B);
	char name[64];
	int fd;

	assert_non_null(old);
	assert_non_null(got);
	assert_non_null(want);
	write_journal(f->dirfd, size, name, sizeof(name));
	assert_string_equal(name, "42-4242.j");
	/* The copy: 5 blocks of the old version, grown by the journal. */
	fd = openat(f->dirfd, "copy", O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fill(old, 5 * B, 77);
	assert_int_equal(fs_write_full(fd, old, 5 * B), 0);

	journal_init(&j, f->dirfd);
	assert_int_equal(journal_open(&j, name, &h), 0);
	assert_int_equal(h.size, size);
	assert_int_equal(h.dev, 42);
	assert_int_equal(h.ino, 4242);
	assert_string_equal(h.path, "d/db.img");
	assert_int_equal(h.mtime_nsec, 5);
	assert_int_equal(j.records, 3);
	assert_int_equal(journal_apply(&j, fd), 0);
	/* Twice gives the same: a replay after a crash mid-way. */
	assert_int_equal(journal_apply(&j, fd), 0);
	assert_int_equal(journal_finish(&j), 0);
	assert_int_equal(faccessat(f->dirfd, name, F_OK, 0), -1);

	assert_int_equal(fs_pread_full(fd, got, size, 0), (ssize_t)size);
	assert_memory_equal(got, old, B);		/* untouched */
	fill(want, B, 1);
	assert_memory_equal(got + B, want, B);		/* the record */
	assert_memory_equal(got + 2 * B, old + 2 * B, B);
	memset(want, 0, B);
	assert_memory_equal(got + 3 * B, want, B);	/* the hole */
	assert_memory_equal(got + 4 * B, old + 4 * B, B);
	assert_memory_equal(got + 5 * B, want, size - 5 * B - 1000);
	fill(want, 1000, 9);
	assert_memory_equal(got + size - 1000, want, 1000);

	/* A shrink: the size is the journal's. */
	write_journal(f->dirfd, 4 * B + 1000, name, sizeof(name));
	journal_init(&j, f->dirfd);
	assert_int_equal(journal_open(&j, name, &h), 0);
	assert_int_equal(journal_apply(&j, fd), 0);
	assert_int_equal(journal_finish(&j), 0);
	{
		struct stat st;

		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_size, 4 * B + 1000);
	}
	close(fd);
	free(old);
	free(got);
	free(want);
}

/* Cut at every length, each byte flipped: refused, never applied. */
static void
test_torn_and_corrupt_refused(void **state)
{
	struct fixture *f = *state;
	struct journal_head h;
	struct journal j;
	struct stat st;
	uint8_t *all;
	char name[64];
	off_t len, i;
	int fd, r;

	write_journal(f->dirfd, 6 * B + 1000, name, sizeof(name));
	fd = openat(f->dirfd, name, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	len = st.st_size;
	all = malloc((size_t)len);
	assert_non_null(all);
	assert_int_equal(fs_pread_full(fd, all, (size_t)len, 0),
	    (ssize_t)len);
	/* Cut short: near the end byte by byte, elsewhere in steps. */
	for (i = 0; i < len; i += i > len - 64 || i < 80 ? 1 : 997) {
		assert_int_equal(ftruncate(fd, i), 0);
		journal_init(&j, f->dirfd);
		r = journal_open(&j, name, &h);
		if (r == 0)
			fail_msg("a journal cut at %lld of %lld was accepted",
			    (long long)i, (long long)len);
		assert_int_equal(r, -AR_EPROTO);
	}
	/* One byte changed, in the head, a record, the data, the commit. */
	for (i = 0; i < len; i += i < 80 || i > len - 40 ? 1 : 4099) {
		assert_int_equal(ftruncate(fd, 0), 0);
		all[i] ^= 0x10;
		assert_int_equal(fs_pwrite_full(fd, all, (size_t)len, 0), 0);
		all[i] ^= 0x10;
		journal_init(&j, f->dirfd);
		r = journal_open(&j, name, &h);
		if (r == 0)
			fail_msg("a journal with byte %lld changed was accepted",
			    (long long)i);
	}
	/* Whole again: accepted. */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(fs_pwrite_full(fd, all, (size_t)len, 0), 0);
	journal_init(&j, f->dirfd);
	assert_int_equal(journal_open(&j, name, &h), 0);
	journal_release(&j);
	close(fd);
	free(all);
}

/* Begun, never committed: refused; abort removes it. */
static void
test_uncommitted(void **state)
{
	struct fixture *f = *state;
	struct journal_head h, got;
	struct journal j, k;
	uint8_t buf[100];

	head_of(&h, 2 * B);
	journal_init(&j, f->dirfd);
	assert_int_equal(journal_begin(&j, &h), 0);
	memset(buf, 3, sizeof(buf));
	assert_int_equal(journal_put(&j, 0, buf, sizeof(buf), 0), 0);
	journal_init(&k, f->dirfd);
	assert_int_equal(journal_open(&k, j.name, &got), -AR_EPROTO);
	journal_abort(&j);
	assert_int_equal(faccessat(f->dirfd, "42-4242.j", F_OK, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_and_apply, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_and_corrupt_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
