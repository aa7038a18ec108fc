/*
 * test-blocks.c: block-hash lists built in one pass and in pieces, lists
 * extended by appends across block boundaries of every size, the root,
 * and the store files (corruption is refused, never trusted).
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

#include "blocks.h"
#include "error.h"
#include "scratch.h"

#define B BLOCKS_SIZE

static uint8_t *
test_data(size_t len)
{
	uint8_t *p = malloc(len + 1);
	size_t i;
	uint32_t x = 2463534242u;

	assert_non_null(p);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* The list of p[0..len) in one update. */
static void
test_list(const uint8_t *p, size_t len, struct blocks *b)
{
	assert_int_equal(blocks_init(b), 0);
	assert_int_equal(blocks_update(b, p, len), 0);
	assert_int_equal(blocks_end(b), 0);
}

static void
test_hashes_each_block(void **state)
{
	static const size_t sizes[] = { 0, 1, B - 1, B, B + 1, 3 * B,
	    3 * B + 7 };
	uint8_t *p = test_data(4 * B);
	uint8_t h[BLOCKS_HASH_LEN];
	struct blocks b;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		test_list(p, sizes[i], &b);
		assert_int_equal(b.n, blocks_count(sizes[i]));
		assert_int_equal(b.size, sizes[i]);
		for (k = 0; k < b.n; k++) {
			size_t len = sizes[i] - k * B < B ? sizes[i] - k * B :
			    B;

			blocks_hash(p + k * B, len, h);
			assert_memory_equal(b.h + k * BLOCKS_HASH_LEN, h,
			    BLOCKS_HASH_LEN);
		}
		blocks_release(&b);
	}
	free(p);
}

/* A list made of block hashes (the changed-blocks path) is the list of
 * the bytes, with the same root; only whole blocks may come before. */
static void
test_add_hash_same_list(void **state)
{
	static const size_t sizes[] = { 1, B - 1, B, B + 1, 3 * B,
	    3 * B + 7 };
	uint8_t *p = test_data(4 * B);
	uint8_t h[BLOCKS_HASH_LEN], r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks a, b;
	size_t i, off, len;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		test_list(p, sizes[i], &a);
		assert_int_equal(blocks_init(&b), 0);
		for (off = 0; off < sizes[i]; off += len) {
			len = sizes[i] - off < B ? sizes[i] - off : B;
			blocks_hash(p + off, len, h);
			assert_int_equal(blocks_add_hash(&b, h, len), 0);
		}
		assert_int_equal(blocks_end(&b), 0);
		assert_int_equal(b.n, a.n);
		assert_int_equal(b.size, a.size);
		blocks_root(&a, r1);
		blocks_root(&b, r2);
		assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
		blocks_release(&a);
		blocks_release(&b);
	}
	/* After a short block, or bytes not a whole block: refused. */
	assert_int_equal(blocks_init(&b), 0);
	blocks_hash(p, 10, h);
	assert_int_equal(blocks_add_hash(&b, h, 10), 0);
	assert_int_equal(blocks_add_hash(&b, h, 10), -AR_EINTERNAL);
	blocks_release(&b);
	assert_int_equal(blocks_init(&b), 0);
	assert_int_equal(blocks_update(&b, p, 100), 0);
	assert_int_equal(blocks_add_hash(&b, h, B), -AR_EINTERNAL);
	assert_int_equal(blocks_add_hash(&b, h, 0), -AR_EINTERNAL);
	blocks_release(&b);
	assert_int_equal(blocks_init(&b), 0);
	assert_int_equal(blocks_add_hash(&b, h, B + 1), -AR_EINTERNAL);
	blocks_release(&b);
	free(p);
}

/* Fed in pieces of any size, the list is the same. */
static void
test_pieces_change_nothing(void **state)
{
	static const size_t pieces[] = { 1, 7, B - 1, B, B + 1, 100000 };
	size_t total = 3 * B + 123, i, off, k;
	uint8_t *p = test_data(total);
	uint8_t r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks a, b;

	(void)state;
	test_list(p, total, &a);
	blocks_root(&a, r1);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		assert_int_equal(blocks_init(&b), 0);
		for (off = 0; off < total; off += k) {
			k = total - off < pieces[i] ? total - off : pieces[i];
			assert_int_equal(blocks_update(&b, p + off, k), 0);
		}
		assert_int_equal(blocks_end(&b), 0);
		assert_int_equal(b.n, a.n);
		assert_memory_equal(b.h, a.h, a.n * BLOCKS_HASH_LEN);
		blocks_root(&b, r2);
		assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
		blocks_release(&b);
	}
	blocks_release(&a);
	free(p);
}

/*
 * A list of the first s bytes, reopened at s and fed the bytes from the
 * block boundary on (what an append rehashes), equals the list of the
 * longer file, for every s and append size around block boundaries.
 */
static void
test_append_across_boundaries(void **state)
{
	static const size_t sz[] = { 0, 1, B - 1, B, B + 1, 2 * B, 2 * B + 5,
	    3 * B };
	size_t total = 6 * B, i, j, s, a;
	uint8_t *p = test_data(total);
	uint8_t r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks want, b;
	uint64_t from;

	(void)state;
	for (i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		for (j = 0; j < sizeof(sz) / sizeof(sz[0]); j++) {
			s = sz[i];
			a = sz[j];
			test_list(p, s, &b);
			assert_int_equal(blocks_reopen(&b, s, &from), 0);
			assert_true(from <= s && s - from < B);
			assert_int_equal(from % B, 0);
			assert_int_equal(blocks_update(&b, p + from,
			    s + a - from), 0);
			assert_int_equal(blocks_end(&b), 0);
			test_list(p, s + a, &want);
			assert_int_equal(b.n, want.n);
			assert_int_equal(b.size, s + a);
			if (want.n > 0)
				assert_memory_equal(b.h, want.h,
				    want.n * BLOCKS_HASH_LEN);
			blocks_root(&b, r1);
			blocks_root(&want, r2);
			assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
			blocks_release(&b);
			blocks_release(&want);
		}
	}
	free(p);
}

/* Reopened below its size, a list gives the root of the shorter file. */
static void
test_reopen_shorter(void **state)
{
	size_t total = 4 * B + 10;
	uint8_t *p = test_data(total);
	uint8_t r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks b, c, want;
	uint64_t from, at = 2 * B + 77;

	(void)state;
	test_list(p, total, &b);
	assert_int_equal(blocks_init(&c), 0);
	assert_int_equal(blocks_copy(&c, &b), 0);
	assert_int_equal(blocks_reopen(&c, at, &from), 0);
	assert_int_equal(from, 2 * B);
	assert_int_equal(blocks_update(&c, p + from, at - from), 0);
	assert_int_equal(blocks_end(&c), 0);
	test_list(p, at, &want);
	blocks_root(&c, r1);
	blocks_root(&want, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	/* The copy left the original alone. */
	assert_int_equal(b.size, total);
	blocks_release(&b);
	blocks_release(&c);
	blocks_release(&want);
	free(p);
}

/* Roots differ with any byte, and with the size (a zero tail). */
static void
test_root_binds_size_and_bytes(void **state)
{
	uint8_t *p = test_data(2 * B);
	uint8_t r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks a, b;

	(void)state;
	test_list(p, B + 3, &a);
	p[B + 1] ^= 1;
	test_list(p, B + 3, &b);
	blocks_root(&a, r1);
	blocks_root(&b, r2);
	assert_memory_not_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&a);
	blocks_release(&b);
	memset(p, 0, 2 * B);
	test_list(p, B, &a);
	test_list(p, B + 1, &b);
	blocks_root(&a, r1);
	blocks_root(&b, r2);
	assert_memory_not_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&a);
	blocks_release(&b);
	free(p);
}

/* Past a group of blocks: the root of a list extended across a group
 * boundary is that of the list built in one go, and differs when a
 * block of the first group differs. */
static void
test_root_across_groups(void **state)
{
	uint8_t *p = test_data(B);
	uint8_t r1[BLOCKS_ROOT_LEN], r2[BLOCKS_ROOT_LEN];
	struct blocks a, b;
	uint64_t from;
	size_t i, n = BLOCKS_GROUP + 3;

	(void)state;
	assert_int_equal(blocks_init(&a), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(blocks_update(&a, p, B), 0);
	assert_int_equal(blocks_end(&a), 0);
	blocks_root(&a, r1);
	assert_int_equal(blocks_init(&b), 0);
	for (i = 0; i < BLOCKS_GROUP - 1; i++)
		assert_int_equal(blocks_update(&b, p, B), 0);
	assert_int_equal(blocks_update(&b, p, 10), 0);
	assert_int_equal(blocks_end(&b), 0);
	assert_int_equal(blocks_reopen(&b, b.size, &from), 0);
	assert_int_equal(from, (uint64_t)(BLOCKS_GROUP - 1) * B);
	for (i = BLOCKS_GROUP - 1; i < n; i++)
		assert_int_equal(blocks_update(&b, p, B), 0);
	assert_int_equal(blocks_end(&b), 0);
	blocks_root(&b, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	/* Changed behind the list's back: its group hashes are redone. */
	b.h[5] ^= 1;
	b.gn = 0;
	blocks_root(&b, r2);
	assert_memory_not_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&a);
	blocks_release(&b);
	free(p);
}

/* The store round-trips; every flipped byte or a cut is refused. */
static void
test_store_refuses_corruption(void **state)
{
	size_t total = 3 * B + 1, len, i;
	uint8_t *p = test_data(total), *buf;
	struct blocks_meta m, m2;
	struct blocks b, c;
	char top[4096];
	int dirfd, fd;

	(void)state;
	test_list(p, total, &b);
	memset(&m, 0, sizeof(m));
	m.dev = 5;
	m.ino = 77;
	m.size = total;
	m.mtime_sec = 1700000000;
	m.mtime_nsec = 123;
	m.path_len = 5;
	memcpy(m.path, "a/log", 5);
	len = blocks_store_len(b.n, m.path_len);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(blocks_store_encode(&m, &b, buf, len), 0);
	assert_int_equal(blocks_store_decode(buf, len, &m2, &c), 0);
	assert_int_equal(m2.ino, 77);
	assert_int_equal(m2.size, total);
	assert_string_equal(m2.path, "a/log");
	assert_memory_equal(c.h, b.h, b.n * BLOCKS_HASH_LEN);
	blocks_release(&c);
	for (i = 0; i < len; i++) {
		buf[i] ^= 0x40;
		assert_int_equal(blocks_store_decode(buf, len, &m2, &c),
		    -AR_EPROTO);
		blocks_release(&c);
		buf[i] ^= 0x40;
	}
	assert_int_equal(blocks_store_decode(buf, len - 1, &m2, &c),
	    -AR_EPROTO);
	blocks_release(&c);
	/* On disk: saved, loaded; truncated, refused. */
	assert_int_equal(scratch_make(top, sizeof(top), "blocks"), 0);
	dirfd = open(top, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	assert_int_equal(blocks_store_save(dirfd, "e", &m, &b, 1), 0);
	assert_int_equal(blocks_store_load(dirfd, "e", &m2, &c), 0);
	assert_int_equal(c.n, b.n);
	blocks_release(&c);
	fd = openat(dirfd, "e", O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len - 3), 0);
	close(fd);
	assert_int_equal(blocks_store_load(dirfd, "e", &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	assert_int_equal(blocks_store_load(dirfd, "none", &m2, &c), -AR_EIO);
	blocks_release(&c);
	close(dirfd);
	assert_int_equal(scratch_remove(top), 0);
	blocks_release(&b);
	free(buf);
	free(p);
}

/* The bytes of dirfd/name in *out (malloc'd); its length. */
static size_t
test_read_file(int dirfd, const char *name, uint8_t **out)
{
	struct stat st;
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*out = malloc((size_t)st.st_size + 1);
	assert_non_null(*out);
	n = pread(fd, *out, (size_t)st.st_size, 0);
	assert_int_equal(n, st.st_size);
	close(fd);
	return (size_t)n;
}

static void
test_write_file(int dirfd, const char *name, const uint8_t *p, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
test_meta(struct blocks_meta *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->dev = 5;
	m->ino = 77;
	m->size = size;
	m->mtime_sec = 1700000000;
	m->path_len = 5;
	memcpy(m->path, "a/log", 5);
}

/*
 * An entry extended by an append is updated in place (same inode, only
 * the tail and the header written); every mix of the old and the new
 * file that a crash could leave (either header over either hashes, a
 * cut) is refused, never taken for a list; an entry written by another
 * hand is seen as such, and the file decides.
 */
static void
test_store_in_place(void **state)
{
	size_t total = (BLOCKS_GROUP + 2) * (size_t)B + 100, grown = total +
	    3 * B, lo, ln, hl, cut;
	uint8_t *p = test_data(grown), *old, *neu, *mix, r1[BLOCKS_ROOT_LEN],
	    r2[BLOCKS_ROOT_LEN];
	struct blocks_meta m, m2;
	struct blocks_disk d, d2;
	struct blocks_mem *mem;
	struct blocks b, c;
	struct stat st0, st1;
	uint64_t from;
	char top[4096];
	int dirfd;

	(void)state;
	assert_int_equal(scratch_make(top, sizeof(top), "blocks"), 0);
	dirfd = open(top, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	test_list(p, total, &b);
	test_meta(&m, total);
	memset(&d, 0, sizeof(d));
	/* No record of the file: written whole. */
	assert_int_equal(blocks_store_write(dirfd, "e", &m, &b, &d), 0);
	assert_true(d.valid);
	assert_int_equal(b.dirty, b.n);
	assert_int_equal(fstatat(dirfd, "e", &st0, 0), 0);
	lo = test_read_file(dirfd, "e", &old);
	/* Appended to: the last block again and three new ones. */
	assert_int_equal(blocks_reopen(&b, total, &from), 0);
	assert_int_equal(blocks_update(&b, p + from, grown - from), 0);
	assert_int_equal(blocks_end(&b), 0);
	assert_int_equal(b.dirty, blocks_count(total) - 1);
	m.size = grown;
	m.mtime_nsec = 9;
	assert_int_equal(blocks_store_write(dirfd, "e", &m, &b, &d), 0);
	assert_int_equal(fstatat(dirfd, "e", &st1, 0), 0);
	assert_int_equal(st1.st_ino, st0.st_ino);	/* in place */
	ln = test_read_file(dirfd, "e", &neu);
	assert_int_equal(ln, blocks_store_len(b.n, m.path_len));
	assert_int_equal(blocks_store_read(dirfd, "e", &m2, &c, &d2), 0);
	assert_true(d2.valid);
	assert_int_equal(m2.size, grown);
	assert_int_equal(m2.mtime_nsec, 9);
	blocks_root(&b, r1);
	blocks_root(&c, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&c);
	/* The one-pass list of the grown bytes is the same list. */
	test_list(p, grown, &c);
	blocks_root(&c, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&c);

	/* The mixes a crash may leave without fsync. */
	hl = lo - (blocks_count(total) * BLOCKS_HASH_LEN);
	mix = malloc(ln);
	assert_non_null(mix);
	/* the new header over the old hashes (the new length) */
	memcpy(mix, neu, ln);
	memcpy(mix + hl, old + hl, lo - hl);
	assert_int_equal(blocks_store_decode(mix, ln, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	/* the new header, the file not yet grown */
	memcpy(mix, neu, lo);
	memcpy(mix + hl, old + hl, lo - hl);
	assert_int_equal(blocks_store_decode(mix, lo, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	/* the old header over the new hashes: cut to its length, grown */
	memcpy(mix, old, hl);
	memcpy(mix + hl, neu + hl, ln - hl);
	assert_int_equal(blocks_store_decode(mix, lo, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	assert_int_equal(blocks_store_decode(mix, ln, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	/* a torn header (its first sector new, the rest old) */
	memcpy(mix, neu, ln);
	memcpy(mix + 64, old + 64, hl - 64);
	assert_int_equal(blocks_store_decode(mix, ln, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	/* any cut of the new file */
	for (cut = 0; cut < ln; cut += 997) {
		assert_int_equal(blocks_store_decode(neu, cut, &m2, &c),
		    -AR_EPROTO);
		blocks_release(&c);
	}
	/* the last hash flipped, on disk: refused by the root */
	memcpy(mix, neu, ln);
	mix[ln - 1] ^= 1;
	test_write_file(dirfd, "bad", mix, ln);
	assert_int_equal(blocks_store_read(dirfd, "bad", &m2, &c, &d2),
	    -AR_EPROTO);
	assert_false(d2.valid);
	blocks_release(&c);

	/* Kept in memory: taken back while the file is as it was left. */
	assert_int_equal(blocks_mem_new(&mem), 0);
	blocks_mem_put(mem, "e", &m, &b, &d);
	assert_int_equal(b.n, 0);	/* taken over */
	assert_int_equal(blocks_mem_take(mem, dirfd, "e", &m2, &c, &d2), 0);
	assert_true(blocks_store_fresh(dirfd, "e", &d2));
	blocks_root(&c, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_mem_put(mem, "e", &m2, &c, &d2);
	/* put leaves c initialised; take wants it empty */
	blocks_release(&c);
	/* Another hand wrote the file (the tail corrupted, grown by one
	 * byte so that its stat differs whatever the clock): the file is
	 * read again, and refused. */
	memcpy(mix, neu, ln);
	mix[ln - 1] ^= 1;
	mix = realloc(mix, ln + 1);
	assert_non_null(mix);
	mix[ln] = 0;
	test_write_file(dirfd, "e", mix, ln + 1);
	assert_false(blocks_store_fresh(dirfd, "e", &d2));
	assert_int_equal(blocks_mem_take(mem, dirfd, "e", &m2, &c, &d2),
	    -AR_EPROTO);
	blocks_release(&c);
	/* Replaced by another valid entry (a new inode): that one. */
	test_write_file(dirfd, "e", old, lo);
	assert_int_equal(blocks_mem_take(mem, dirfd, "e", &m2, &c, &d2), 0);
	assert_int_equal(m2.size, total);
	/* written in place from it: the whole list (nothing known) */
	assert_int_equal(blocks_reopen(&c, total, &from), 0);
	assert_int_equal(blocks_update(&c, p + from, grown - from), 0);
	assert_int_equal(blocks_end(&c), 0);
	m2.size = grown;
	assert_int_equal(blocks_store_write(dirfd, "e", &m2, &c, &d2), 0);
	blocks_release(&c);
	assert_int_equal(blocks_store_load(dirfd, "e", &m2, &c), 0);
	blocks_root(&c, r2);
	assert_memory_equal(r1, r2, BLOCKS_ROOT_LEN);
	blocks_release(&c);
	blocks_mem_free(mem);

	close(dirfd);
	assert_int_equal(scratch_remove(top), 0);
	blocks_release(&b);
	free(mix);
	free(old);
	free(neu);
	free(p);
}

/* A version-1 entry (the checksum last, over the whole file) is still
 * read, and written again in the current format. */
static void
test_store_reads_version_1(void **state)
{
	size_t total = 3 * B + 1, len, hl;
	uint8_t *p = test_data(total), *buf, *v1;
	struct blocks_meta m, m2;
	struct blocks b, c;

	(void)state;
	test_list(p, total, &b);
	test_meta(&m, total);
	len = blocks_store_len(b.n, m.path_len);
	buf = malloc(len);
	v1 = malloc(len);
	assert_non_null(buf);
	assert_non_null(v1);
	assert_int_equal(blocks_store_encode(&m, &b, buf, len), 0);
	hl = len - b.n * BLOCKS_HASH_LEN;
	memcpy(v1, buf, hl - BLOCKS_HASH_LEN);
	memcpy(v1, "ARBLKS01", 8);
	memcpy(v1 + hl - BLOCKS_HASH_LEN, b.h, b.n * BLOCKS_HASH_LEN);
	blocks_hash(v1, len - BLOCKS_HASH_LEN, v1 + len - BLOCKS_HASH_LEN);
	assert_int_equal(blocks_store_decode(v1, len, &m2, &c), 0);
	assert_memory_equal(c.h, b.h, b.n * BLOCKS_HASH_LEN);
	assert_int_equal(c.dirty, 0);	/* never updated in place */
	blocks_release(&c);
	/* the current layout under the old magic is refused */
	memcpy(buf, "ARBLKS01", 8);
	assert_int_equal(blocks_store_decode(buf, len, &m2, &c), -AR_EPROTO);
	blocks_release(&c);
	blocks_release(&b);
	free(buf);
	free(v1);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hashes_each_block),
		cmocka_unit_test(test_add_hash_same_list),
		cmocka_unit_test(test_pieces_change_nothing),
		cmocka_unit_test(test_append_across_boundaries),
		cmocka_unit_test(test_reopen_shorter),
		cmocka_unit_test(test_root_binds_size_and_bytes),
		cmocka_unit_test(test_root_across_groups),
		cmocka_unit_test(test_store_refuses_corruption),
		cmocka_unit_test(test_store_in_place),
		cmocka_unit_test(test_store_reads_version_1),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
