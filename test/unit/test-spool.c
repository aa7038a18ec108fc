/*
 * test-spool.c: the journal on disk: reopen, recovery from a torn or
 * corrupt tail, rotation, acks, trimming, the cap, read-only opens, a
 * failed write and the resume after it, and a reader racing a writer. The record codec is test-spool-rec.c's.
 *
 * Every test works in its own mkdtemp() directory, removed at the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "log.h"
#include "scratch.h"
#include "spool.h"

#define HDR 16
#define REC_MIN 29

struct tctx {
	char dir[PATH_MAX];
};

/* Records seen by a spool_read callback. */
struct got {
	uint64_t *seq;
	uint8_t *op;
	char **path;
	size_t n;
	size_t cap;
	uint64_t stop_at;	/* non-zero: return 1 after this seq */
};

/* ------------------------------------------------------------------------
 * Helpers.
 */

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->dir, sizeof t->dir, "test-spool"), 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	scratch_remove(t->dir);
	free(t);
	return 0;
}

static struct spool *
sp_open(const char *dir, int readonly, uint64_t segsize, uint64_t maxsize)
{
	struct spool_opts o;
	struct spool *sp = NULL;
	char err[512];
	int r;

	memset(&o, 0, sizeof o);
	o.readonly = readonly;
	o.segment_size = segsize;
	o.max_size = maxsize;
	/* Tests decide when to commit. */
	o.commit_ns = UINT64_C(3600) * 1000000000;
	r = spool_open(dir, &o, &sp, err, sizeof err);
	if (r != 0)
		print_error("spool_open: %s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(sp);
	return sp;
}

static void
got_init(struct got *g, size_t cap)
{
	memset(g, 0, sizeof *g);
	g->seq = calloc(cap, sizeof *g->seq);
	g->op = calloc(cap, sizeof *g->op);
	g->path = calloc(cap, sizeof *g->path);
	assert_true(g->seq != NULL && g->op != NULL && g->path != NULL);
	g->cap = cap;
}

static void
got_reset(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->path[i]);
	g->n = 0;
	g->stop_at = 0;
}

static void
got_free(struct got *g)
{
	got_reset(g);
	free(g->seq);
	free(g->op);
	free(g->path);
}

static int
got_cb(void *arg, const struct spool_rec *r)
{
	struct got *g = arg;

	assert_true(g->n < g->cap);
	g->seq[g->n] = r->seq;
	g->op[g->n] = r->op;
	g->path[g->n] = strndup(r->path, r->path_len);
	g->n++;
	if (g->stop_at != 0 && r->seq >= g->stop_at)
		return 1;
	return 0;
}

/* Append n MODIFY records named "f<seq>", committing every `every`. */
static void
fill(struct spool *sp, uint64_t n, uint64_t every)
{
	char name[64];
	uint64_t i, seq;
	int len;

	for (i = 0; i < n; i++) {
		len = snprintf(name, sizeof name, "dir/f%llu",
		    (unsigned long long)i);
		assert_int_equal(spool_append(sp, SPOOL_MODIFY, name,
		    (size_t)len, NULL, 0, &seq), 0);
		if ((i + 1) % every == 0)
			assert_int_equal(spool_commit(sp), 0);
	}
	assert_int_equal(spool_commit(sp), 0);
}

/* Check that [from, to] were read, in order, each exactly once. */
static void
check_range(const struct got *g, uint64_t from, uint64_t to)
{
	size_t i;

	assert_int_equal(g->n, to - from + 1);
	for (i = 0; i < g->n; i++)
		assert_int_equal(g->seq[i], from + i);
}

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
	int n;

	n = snprintf(out, outlen, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < outlen);
}

/* Names of the segment files, sorted (they sort like their numbers). */
static size_t
list_segs(const char *dir, char names[][32], size_t max)
{
	struct dirent *de;
	size_t n = 0, i, j;
	char tmp[32];
	DIR *d;

	d = opendir(dir);
	assert_non_null(d);
	for (;;) {
		de = readdir(d);
		if (de == NULL)
			break;
		if (strncmp(de->d_name, "seg-", 4) != 0)
			continue;
		assert_true(n < max);
		assert_true(strlen(de->d_name) < 32);
		memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	for (i = 1; i < n; i++) {
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], 32);
			memcpy(names[j], names[j - 1], 32);
			memcpy(names[j - 1], tmp, 32);
		}
	}
	return n;
}

static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void
append_bytes(const char *path, const void *p, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void
flip_byte(const char *path, off_t off)
{
	unsigned char c;
	int fd;

	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void
last_seg_path(const char *dir, char *out, size_t outlen)
{
	char names[4096][32];
	size_t n;

	n = list_segs(dir, names, 4096);
	assert_true(n > 0);
	path_in(out, outlen, dir, names[n - 1]);
}

/* Every byte of every file under dir, with names: to show that nothing
 * changed. */
static void
snapshot(const char *dir, char *out, size_t outlen, size_t *len)
{
	char path[PATH_MAX], *data;
	struct dirent *de;
	struct stat st;
	size_t dlen;
	DIR *d;

	d = opendir(dir);
	assert_non_null(d);
	for (;;) {
		de = scratch_readdir(d);
		if (de == NULL)
			break;
		path_in(path, sizeof path, dir, de->d_name);
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			snapshot(path, out, outlen, len);
			continue;
		}
		data = read_file(path, &dlen);
		assert_true(*len + strlen(path) + 1 + dlen + 1 < outlen);
		memcpy(out + *len, path, strlen(path) + 1);
		*len += strlen(path) + 1;
		memcpy(out + *len, data, dlen);
		*len += dlen;
		out[(*len)++] = '\n';
		free(data);
	}
	closedir(d);
}

/* ------------------------------------------------------------------------
 * The journal.
 */

static void
test_append_reopen(void **state)
{
	struct tctx *t = *state;
	struct spool *sp;
	char name[32], tmp[PATH_MAX];
	struct got g;
	uint64_t seq;
	size_t i;
	int fd, n;

	got_init(&g, 5000);
	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 0);
	assert_int_equal(spool_first_seq(sp), 1);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "a", 1, NULL, 0,
	    &seq), 0);
	assert_int_equal(seq, 1);
	/* Not durable, so not readable, until committed. */
	assert_int_equal(spool_durable_seq(sp), 0);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(spool_commit(sp), 0);
	assert_int_equal(spool_durable_seq(sp), 1);
	assert_int_equal(spool_append(sp, SPOOL_RENAME, "a", 1, "b\nc", 3,
	    &seq), 0);
	assert_int_equal(seq, 2);
	/* Bad records are refused and use no seq. */
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "", 0, NULL, 0,
	    &seq), -AR_EINTERNAL);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "../x", 4, NULL, 0,
	    &seq), -AR_EINTERNAL);
	assert_int_equal(spool_append(sp, SPOOL_DELETE, "x", 1, "y", 1,
	    &seq), -AR_EINTERNAL);
	assert_int_equal(spool_append(sp, 0, "x", 1, NULL, 0, &seq),
	    -AR_EINTERNAL);
	fill(sp, 2998, 37);
	assert_int_equal(spool_durable_seq(sp), 3000);
	/* An empty commit is fine. */
	assert_int_equal(spool_commit(sp), 0);
	spool_close(sp);

	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 3000);
	assert_int_equal(spool_first_seq(sp), 1);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 1, 3000);
	assert_string_equal(g.path[0], "a");
	assert_int_equal(g.op[1], SPOOL_RENAME);
	for (i = 2; i < g.n; i++) {
		n = snprintf(name, sizeof name, "dir/f%zu", i - 2);
		assert_true(n > 0 && (size_t)n < sizeof name);
		assert_string_equal(g.path[i], name);
	}
	/* No RESCAN after a clean reopen; appends go on from 3001. */
	assert_int_equal(spool_append(sp, SPOOL_MKDIR, "m", 1, NULL, 0,
	    &seq), 0);
	assert_int_equal(seq, 3001);
	/* The callback stops the read with its own value. */
	got_reset(&g);
	g.stop_at = 10;
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 1);
	check_range(&g, 1, 10);
	/* Positions past the end and an empty range. */
	got_reset(&g);
	assert_int_equal(spool_read(sp, 3001, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	assert_int_equal(spool_read(sp, 3000, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(spool_read(sp, 20, 20, got_cb, &g), 0);
	assert_int_equal(g.n, 0);
	/* close commits what is buffered */
	spool_close(sp);
	/* The temp file of a segment whose creation was cut short: a
	 * read-only open leaves it, a writer removes it. */
	path_in(tmp, sizeof tmp, t->dir,
	    ".asyncrep-tmp.seg-0000000000000bba.log.AbCdEf");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	sp = sp_open(t->dir, 1, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 3001);
	spool_close(sp);
	assert_int_equal(access(tmp, F_OK), 0);
	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 3001);
	spool_close(sp);
	assert_int_equal(access(tmp, F_OK), -1);
	got_free(&g);
}

/* The records a reopened spool holds after its tail was damaged. */
static void
check_recovered(const char *dir, uint64_t good, uint64_t rescan)
{
	struct spool *sp;
	struct got g;
	uint64_t seq;

	got_init(&g, 1000);
	sp = sp_open(dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), rescan);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, good + 1);
	/* check_range on the records before the RESCAN only */
	g.n = good;
	check_range(&g, 1, good);
	g.n = good + 1;
	assert_int_equal(g.seq[good], rescan);
	assert_int_equal(g.op[good], SPOOL_RESCAN);
	assert_string_equal(g.path[good], "");
	/* A standby anywhere in the lost range reads the RESCAN next. */
	for (seq = good; seq < rescan; seq++) {
		got_reset(&g);
		assert_int_equal(spool_read(sp, seq, UINT64_MAX, got_cb, &g),
		    0);
		assert_int_equal(g.n, 1);
		assert_int_equal(g.seq[0], rescan);
		assert_int_equal(g.op[0], SPOOL_RESCAN);
	}
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "next", 4, NULL, 0,
	    &seq), 0);
	assert_int_equal(seq, rescan + 1);
	assert_int_equal(spool_commit(sp), 0);
	spool_close(sp);

	/* The repair is durable: a second open finds nothing to do. */
	sp = sp_open(dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), rescan + 1);
	got_reset(&g);
	assert_int_equal(spool_read(sp, rescan, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.path[0], "next");
	spool_close(sp);
	got_free(&g);
}

static void
test_torn_tail(void **state)
{
	static uint8_t rec[SPOOL_REC_MAX];
	struct tctx *t = *state;
	struct spool_rec r;
	struct spool *sp;
	char seg[PATH_MAX], *before, *after;
	size_t blen, alen;
	int len;

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 10, 3);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	before = read_file(seg, &blen);

	/* The first 20 bytes of what record 11 would have been. */
	memset(&r, 0, sizeof r);
	r.seq = 11;
	r.op = SPOOL_MODIFY;
	r.path_len = 5;
	memcpy(r.path, "torn!", 5);
	len = spool_rec_encode(&r, rec, sizeof rec);
	assert_true(len > 20);
	append_bytes(seg, rec, 20);

	/* 20 bytes could hold one record at most: RESCAN at 10 + 1 + 1. */
	check_recovered(t->dir, 10, 12);
	/* Only the tail went: the first 10 records are byte for byte there. */
	after = read_file(seg, &alen);
	assert_true(alen > blen);
	assert_memory_equal(before, after, blen);
	free(before);
	free(after);
}

static void
test_garbage_tail(void **state)
{
	struct tctx *t = *state;
	struct spool *sp;
	char seg[PATH_MAX];
	uint8_t junk[100];

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 10, 10);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	/* Bytes that are no record at all (a length out of range). */
	memset(junk, 0xee, sizeof junk);
	append_bytes(seg, junk, sizeof junk);
	/* 100 bytes: at most ceil(100 / 29) = 4 records. */
	check_recovered(t->dir, 10, 10 + 4 + 1);
}

static void
test_corrupt_middle(void **state)
{
	struct tctx *t = *state;
	struct spool *sp;
	char seg[PATH_MAX], *data;
	size_t len, off, i, rec_end;

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 10, 10);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	data = read_file(seg, &len);
	/* Walk to record 5 and flip a byte of its path. */
	off = HDR;
	for (i = 1; i < 5; i++)
		off += 8 + (((size_t)(uint8_t)data[off + 2] << 8) |
		    (uint8_t)data[off + 3]);
	rec_end = len;
	free(data);
	flip_byte(seg, (off_t)(off + 8 + 21));

	/* The readonly view first: it stops at 4 and changes nothing. */
	sp = sp_open(t->dir, 1, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 4);
	spool_close(sp);
	free(read_file(seg, &len));
	assert_int_equal(len, rec_end);

	/* Records 5..10 are dropped, valid or not: their bytes could hold
	 * (rec_end - off) / 29 records. */
	check_recovered(t->dir, 4,
	    4 + (rec_end - off + REC_MIN - 1) / REC_MIN + 1);
}

/* The only segment loses its first record: it is left with no record,
 * so it goes, and the RESCAN starts a segment named after itself. */
static void
test_corrupt_first(void **state)
{
	struct tctx *t = *state;
	char names[16][32], seg[PATH_MAX], expect[32];
	struct spool *sp;
	struct got g;
	uint64_t rescan, seq;
	size_t len;

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 3, 3);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	free(read_file(seg, &len));
	flip_byte(seg, HDR + 8 + 9);
	rescan = 0 + (len - HDR + REC_MIN - 1) / REC_MIN + 1;

	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), rescan);
	assert_int_equal(spool_first_seq(sp), rescan);
	assert_int_equal(list_segs(t->dir, names, 16), 1);
	snprintf(expect, sizeof expect, "seg-%016llx.log",
	    (unsigned long long)rescan);
	assert_string_equal(names[0], expect);
	got_init(&g, 10);
	/* Whoever stands before the RESCAN: the records are gone. */
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	assert_int_equal(spool_read(sp, rescan - 1, UINT64_MAX, got_cb, &g),
	    0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.op[0], SPOOL_RESCAN);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "a", 1, NULL, 0, &seq),
	    0);
	assert_int_equal(seq, rescan + 1);
	spool_close(sp);
	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), rescan + 1);
	spool_close(sp);
	got_free(&g);
}

/* A standby acknowledged more than the journal holds (a tail that a
 * lying disk lost without a trace): a RESCAN past its ack follows. */
static void
test_ack_ahead(void **state)
{
	struct tctx *t = *state;
	char path[PATH_MAX];
	struct spool *sp;
	struct got g;
	FILE *f;

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 10, 10);
	spool_close(sp);
	path_in(path, sizeof path, t->dir, "acks/lucky");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("500\n", f);
	fclose(f);
	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 501);
	got_init(&g, 100);
	assert_int_equal(spool_read(sp, 300, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.seq[0], 501);
	assert_int_equal(g.op[0], SPOOL_RESCAN);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 11);
	spool_close(sp);
	got_free(&g);
}

static void
test_rotation(void **state)
{
	struct tctx *t = *state;
	char names[4096][32], path[PATH_MAX];
	unsigned long long first;
	struct spool *sp;
	struct got g;
	size_t n, i, len;
	char *data;

	got_init(&g, 2000);
	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 1000, 7);
	assert_int_equal(spool_durable_seq(sp), 1000);
	n = list_segs(t->dir, names, 4096);
	assert_true(n > 40);
	/* Each file is named by its first record, holds at most one record
	 * past segment_size, and starts with the header. */
	for (i = 0; i < n; i++) {
		assert_int_equal(sscanf(names[i], "seg-%16llx.log", &first), 1);
		path_in(path, sizeof path, t->dir, names[i]);
		data = read_file(path, &len);
		assert_memory_equal(data, "ASRSPOOL\0\0\0\1\0\0\0\0", HDR);
		assert_true(len < 512 + 64);
		assert_int_equal(((uint64_t)(uint8_t)data[HDR + 8 + 6] << 8) |
		    (uint8_t)data[HDR + 8 + 7], first & 0xffff);
		free(data);
	}
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 1, 1000);
	/* From the middle, across segment boundaries, to a bound. */
	for (i = 100; i < 130; i++) {
		got_reset(&g);
		assert_int_equal(spool_read(sp, i, i + 77, got_cb, &g), 0);
		check_range(&g, i + 1, i + 77);
	}
	spool_close(sp);
	sp = sp_open(t->dir, 0, 512, 0);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 999, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 1000, 1000);
	assert_int_equal(spool_size(sp) > 40 * 400, 1);

	/* Damage in an earlier segment is found when it is read: the
	 * records before it are delivered, then the read fails; the
	 * segments after it still read. */
	path_in(path, sizeof path, t->dir, names[3]);
	assert_int_equal(sscanf(names[4], "seg-%16llx.log", &first), 1);
	flip_byte(path, HDR + 8 + 30);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	assert_true(g.n > 0 && g.seq[g.n - 1] < first);
	got_reset(&g);
	assert_int_equal(spool_read(sp, first - 1, UINT64_MAX, got_cb, &g),
	    0);
	check_range(&g, first, 1000);
	/* An earlier segment cut short: a torn record there is corrupt. */
	assert_int_equal(truncate(path, HDR + 10), 0);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	spool_close(sp);
	got_free(&g);
}

struct ackseen {
	char id[8][70];
	uint64_t seq[8];
	uint64_t mtime[8];
	size_t n;
};

static void
ack_cb(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	struct ackseen *a = arg;

	assert_true(a->n < 8);
	snprintf(a->id[a->n], sizeof a->id[0], "%s", id);
	a->seq[a->n] = seq;
	a->mtime[a->n] = mtime_ns;
	a->n++;
}

static void
test_ack_trim(void **state)
{
	struct tctx *t = *state;
	char names[4096][32], path[PATH_MAX];
	struct ackseen a;
	struct spool *sp;
	struct got g;
	uint64_t first;
	size_t n0, n;

	got_init(&g, 2000);
	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 300, 10);
	n0 = list_segs(t->dir, names, 4096);

	assert_int_equal(spool_ack(sp, "", 1), -AR_EPROTO);
	assert_int_equal(spool_ack(sp, "..", 1), -AR_EPROTO);
	assert_int_equal(spool_ack(sp, "a/b", 1), -AR_EPROTO);
	assert_int_equal(spool_ack(sp, ".asyncrep-tmp.x", 1), -AR_EPROTO);
	assert_int_equal(spool_ack(sp,
	    "12345678901234567890123456789012345678901234567890123456789012345",
	    1), -AR_EPROTO);
	assert_int_equal(spool_ack(sp, "s1", 301), -AR_EPROTO);

	assert_int_equal(spool_ack(sp, "s1", 150), 0);
	first = spool_first_seq(sp);
	assert_true(first > 100 && first <= 151);
	n = list_segs(t->dir, names, 4096);
	assert_true(n < n0);
	/* A standby at its ack reads on; before the trimmed point, no. */
	assert_int_equal(spool_read(sp, 150, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 151, 300);
	got_reset(&g);
	assert_int_equal(spool_read(sp, first - 1, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, first, 300);
	got_reset(&g);
	assert_int_equal(spool_read(sp, first - 2, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);

	/* Everything acknowledged: the current segment stays. */
	assert_int_equal(spool_ack(sp, "s1", 300), 0);
	n = list_segs(t->dir, names, 4096);
	assert_int_equal(n, 1);
	assert_true(spool_first_seq(sp) <= 300);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.id[0], "s1");
	assert_int_equal(a.seq[0], 300);
	assert_true(a.mtime[0] > UINT64_C(1500000000) * 1000000000);
	path_in(path, sizeof path, t->dir, "acks/s1");
	{
		size_t len;
		char *data = read_file(path, &len);

		assert_int_equal(len, 4);
		assert_memory_equal(data, "300\n", 4);
		free(data);
	}
	spool_close(sp);

	/* The acks survive a reopen and the next segment starts right. */
	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 100, 10);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 300, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 301, 400);
	spool_close(sp);
	got_free(&g);
}

/* The content of acks/ID as a number. */
static uint64_t
ack_file(const char *dir, const char *id)
{
	char path[PATH_MAX], rel[64];
	uint64_t v;
	size_t len;
	char *data;

	assert_true((size_t)snprintf(rel, sizeof rel, "acks/%s", id) <
	    sizeof rel);
	path_in(path, sizeof path, dir, rel);
	data = read_file(path, &len);
	v = strtoull(data, NULL, 10);
	free(data);
	return v;
}

/* A busy standby's ack is put off while its file is new, replaced by a
 * later one, and written by a flush once the file is old (or by all of
 * them at close); a direct ack writes and forgets it. */
static void
test_ack_busy_put_off(void **state)
{
	struct tctx *t = *state;
	struct timespec old[2];
	char path[PATH_MAX];
	struct spool *sp;

	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 300, 10);
	assert_int_equal(spool_ack(sp, "s1", 100), 0);
	assert_int_equal(spool_ack_busy(sp, "s1", 150), 0);
	assert_int_equal(spool_ack_busy(sp, "s1", 160), 0);
	assert_int_equal(ack_file(t->dir, "s1"), 100);
	spool_ack_flush(sp, 0);		/* the file is new: still put off */
	assert_int_equal(ack_file(t->dir, "s1"), 100);
	/* a second old: the flush writes it */
	path_in(path, sizeof path, t->dir, "acks/s1");
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 2;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	spool_ack_flush(sp, 0);
	assert_int_equal(ack_file(t->dir, "s1"), 160);
	assert_int_equal(spool_ack_busy(sp, "s1", 170), 0);
	spool_ack_flush(sp, 1);
	assert_int_equal(ack_file(t->dir, "s1"), 170);
	/* a first ack (no file) is written at once */
	assert_int_equal(spool_ack_busy(sp, "s2", 50), 0);
	assert_int_equal(ack_file(t->dir, "s2"), 50);
	/* written directly: nothing left to flush */
	assert_int_equal(spool_ack_busy(sp, "s2", 70), 0);
	assert_int_equal(spool_ack(sp, "s2", 70), 0);
	/* a direct ack after one put off is the latest: a flush does not
	 * write the older one over it, whichever is higher */
	assert_int_equal(spool_ack_busy(sp, "s2", 80), 0);
	assert_int_equal(spool_ack(sp, "s2", 90), 0);
	spool_ack_flush(sp, 1);
	assert_int_equal(ack_file(t->dir, "s2"), 90);
	assert_int_equal(spool_ack_busy(sp, "s2", 120), 0);
	assert_int_equal(spool_ack(sp, "s2", 110), 0);
	spool_ack_flush(sp, 1);
	assert_int_equal(ack_file(t->dir, "s2"), 110);
	/* a direct ack refused (past the journal's end) leaves the one put
	 * off to be written */
	assert_int_equal(spool_ack_busy(sp, "s2", 130), 0);
	assert_int_equal(spool_ack(sp, "s2", 100000), -AR_EPROTO);
	spool_ack_flush(sp, 1);
	assert_int_equal(ack_file(t->dir, "s2"), 130);
	assert_int_equal(spool_ack_busy(sp, "s1", 200), 0);
	spool_close(sp);
	assert_int_equal(ack_file(t->dir, "s1"), 200);
	assert_int_equal(ack_file(t->dir, "s2"), 130);
}

static void
test_two_standbys(void **state)
{
	struct tctx *t = *state;
	struct ackseen a;
	struct spool *sp;
	uint64_t f1, f2;

	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 300, 10);
	assert_int_equal(spool_ack(sp, "s2", 30), 0);
	f1 = spool_first_seq(sp);
	assert_int_equal(spool_ack(sp, "s1", 290), 0);
	/* s2 holds the trim point */
	assert_int_equal(spool_first_seq(sp), f1);
	assert_true(f1 <= 31);
	assert_int_equal(spool_ack(sp, "s2", 200), 0);
	f2 = spool_first_seq(sp);
	assert_true(f2 > 100 && f2 <= 201);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.n, 2);
	assert_true(a.seq[0] + a.seq[1] == 490);
	spool_close(sp);
}

/* The same position asked again refreshes an ack file's mtime once it
 * is an hour old: it says when the standby last asked (a rescue's
 * standby_expiry), not when its position last moved. */
static void
test_ack_refresh(void **state)
{
	struct tctx *t = *state;
	struct timespec old[2];
	struct ackseen a;
	struct spool *sp;
	char path[PATH_MAX];
	struct stat st;
	time_t now = time(NULL);

	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 10, 10);
	assert_int_equal(spool_ack(sp, "s1", 5), 0);
	path_in(path, sizeof path, t->dir, "acks/s1");
	old[0].tv_sec = old[1].tv_sec = now - 1800;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	/* Half an hour: left alone. */
	assert_int_equal(spool_ack(sp, "s1", 5), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, now - 1800);
	/* Two days: refreshed. */
	old[0].tv_sec = old[1].tv_sec = now - 2 * 86400;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(spool_ack(sp, "s1", 5), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_mtim.tv_sec >= now);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.seq[0], 5);
	assert_true(a.mtime[0] >= (uint64_t)now * 1000000000);
	spool_close(sp);
}

/* spool_ack_busy: a young ack is left alone, an older one written. */
static void
test_ack_busy(void **state)
{
	struct tctx *t = *state;
	struct timespec old[2];
	struct ackseen a;
	struct spool *sp;
	char path[PATH_MAX];
	time_t now = time(NULL);

	sp = sp_open(t->dir, 0, 512, 0);
	fill(sp, 10, 10);
	assert_int_equal(spool_ack_busy(sp, "../x", 5), -AR_EPROTO);
	/* No ack yet: written at once. */
	assert_int_equal(spool_ack_busy(sp, "s1", 5), 0);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.seq[0], 5);
	/* Just written: the next busy ack waits. */
	assert_int_equal(spool_ack_busy(sp, "s1", 7), 0);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.seq[0], 5);
	/* A second old: written. */
	path_in(path, sizeof path, t->dir, "acks/s1");
	old[0].tv_sec = old[1].tv_sec = now - 2;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(spool_ack_busy(sp, "s1", 7), 0);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.seq[0], 7);
	/* A plain ack is never put off. */
	assert_int_equal(spool_ack(sp, "s1", 8), 0);
	memset(&a, 0, sizeof a);
	assert_int_equal(spool_acks(sp, ack_cb, &a), 0);
	assert_int_equal(a.seq[0], 8);
	/* Still bounded by what the spool made durable. */
	old[0].tv_sec = old[1].tv_sec = now - 2;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(spool_ack_busy(sp, "s1", 11), -AR_EPROTO);
	spool_close(sp);
}

static void
test_cap(void **state)
{
	struct tctx *t = *state;
	struct spool *sp;
	struct got g;
	uint64_t first;

	got_init(&g, 5000);
	/* Segments of ~512 bytes, at most 4 KiB in all. */
	sp = sp_open(t->dir, 0, 512, 4096);
	fill(sp, 20, 10);
	assert_int_equal(spool_ack(sp, "lagging", 5), 0);
	assert_int_equal(spool_first_seq(sp), 1);
	fill(sp, 1000, 10);
	assert_true(spool_size(sp) <= 4096);
	first = spool_first_seq(sp);
	assert_true(first > 6);
	/* The lagging standby must do a full compare. */
	assert_int_equal(spool_read(sp, 5, UINT64_MAX, got_cb, &g),
	    -AR_ESTATE);
	assert_int_equal(spool_read(sp, first - 1, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, first, 1020);
	spool_close(sp);

	/* A cap smaller than one segment keeps the current one. */
	sp = sp_open(t->dir, 0, 512, 100);
	fill(sp, 50, 50);
	assert_true(spool_size(sp) > 100);
	assert_true(spool_first_seq(sp) <= 1070);
	spool_close(sp);
	got_free(&g);
}

static void
test_readonly(void **state)
{
	static char before[1 << 20], after[1 << 20];
	static uint8_t junk[37];
	struct tctx *t = *state;
	char seg[PATH_MAX], path[PATH_MAX];
	struct spool *sp;
	struct got g;
	size_t blen = 0, alen = 0;
	uint64_t seq;
	struct stat st;

	got_init(&g, 1000);
	/* No spool at all: empty, and nothing created. */
	sp = sp_open(t->dir, 1, 0, 0);
	assert_int_equal(spool_durable_seq(sp), 0);
	assert_int_equal(spool_first_seq(sp), 1);
	spool_close(sp);
	path_in(path, sizeof path, t->dir, "acks");
	assert_int_equal(stat(path, &st), -1);

	sp = sp_open(t->dir, 0, 256, 0);
	fill(sp, 50, 5);
	assert_int_equal(spool_ack(sp, "s1", 3), 0);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	memset(junk, 0, sizeof junk);
	junk[3] = 40;	/* a valid length, then nothing */
	append_bytes(seg, junk, sizeof junk);
	snapshot(t->dir, before, sizeof before, &blen);

	sp = sp_open(t->dir, 1, 256, 1);
	assert_int_equal(spool_durable_seq(sp), 50);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	check_range(&g, 1, 50);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "x", 1, NULL, 0, &seq),
	    -AR_ESTATE);
	assert_int_equal(spool_commit(sp), -AR_ESTATE);
	assert_int_equal(spool_ack(sp, "s1", 50), -AR_ESTATE);
	spool_close(sp);

	snapshot(t->dir, after, sizeof after, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	got_free(&g);
}

/*
 * Fill the journal past a file size limit of 4 KiB (EFBIG, as a full
 * disk would fail it); returns what the last append or commit said.
 */
static int
fail_writes(struct spool *sp)
{
	struct rlimit old, lim;
	char name[250];
	uint64_t seq, i;
	int r = 0;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	memset(name, 'n', sizeof name);
	for (i = 0; i < 100 && r == 0; i++) {
		r = spool_append(sp, SPOOL_MODIFY, name, sizeof name, NULL, 0,
		    &seq);
		if (r == 0)
			r = spool_commit(sp);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	return r;
}

/* A failed write makes the spool refuse every later write, even once the
 * cause is gone: the kernel may have dropped the pages it could not
 * write back, so a later fsync that succeeds proves nothing. Acks are
 * files of their own: they are still recorded. */
static void
test_sticky_error(void **state)
{
	struct tctx *t = *state;
	struct spool *sp;
	uint64_t seq;

	signal(SIGXFSZ, SIG_IGN);
	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 5, 5);
	assert_int_equal(spool_failed(sp), 0);
	assert_int_equal(fail_writes(sp), -AR_EIO);
	assert_int_equal(spool_failed(sp), EFBIG);
	assert_int_equal(spool_commit(sp), -AR_EIO);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "a", 1, NULL, 0, &seq),
	    -AR_EIO);
	assert_int_equal(spool_ack(sp, "s", 1), 0);
	assert_int_equal(spool_ack(sp, "s", spool_durable_seq(sp) + 1),
	    -AR_EPROTO);
	seq = spool_durable_seq(sp);
	assert_true(seq >= 5);
	spool_close(sp);
	signal(SIGXFSZ, SIG_DFL);

	/* A reopen recovers whatever reached the disk. */
	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_failed(sp), 0);
	assert_true(spool_durable_seq(sp) >= seq);
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "a", 1, NULL, 0, &seq),
	    0);
	assert_int_equal(spool_commit(sp), 0);
	spool_close(sp);
}

/*
 * spool_resume makes a failed journal write again without a reopen:
 * while the cause lasts it fails; once it is gone, the segment is cut
 * back to its durable end and a RESCAN follows, numbered past every seq
 * the lost records took; a reopen then finds a clean, valid journal.
 */
static void
test_resume(void **state)
{
	struct tctx *t = *state;
	struct rlimit old, lim;
	char path[PATH_MAX];
	struct spool *sp;
	struct stat st;
	struct got g;
	uint64_t durable, lost, seq, rescan;
	int r;

	signal(SIGXFSZ, SIG_IGN);
	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 5, 5);
	assert_int_equal(fail_writes(sp), -AR_EIO);
	durable = spool_durable_seq(sp);
	/* One more append numbers no record: the spool refuses it. */
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "x", 1, NULL, 0, &lost),
	    -AR_EIO);

	/* Still no room past the durable end: it stays failed. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = spool_size(sp);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = spool_resume(sp, &rescan);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(r, -AR_EIO);
	assert_int_equal(spool_failed(sp), EFBIG);

	assert_int_equal(spool_resume(sp, &rescan), 0);
	assert_int_equal(spool_failed(sp), 0);
	assert_true(rescan > durable + 1);	/* past the lost records */
	assert_int_equal(spool_durable_seq(sp), rescan);
	last_seg_path(t->dir, path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(spool_size(sp), (uint64_t)st.st_size);
	got_init(&g, 200);
	assert_int_equal(spool_read(sp, durable, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.seq[0], rescan);
	assert_int_equal(g.op[0], SPOOL_RESCAN);
	assert_string_equal(g.path[0], "");
	assert_int_equal(spool_append(sp, SPOOL_MODIFY, "y", 1, NULL, 0, &seq),
	    0);
	assert_int_equal(seq, rescan + 1);
	assert_int_equal(spool_commit(sp), 0);
	/* On a healthy journal it only commits one more RESCAN. */
	assert_int_equal(spool_resume(sp, &seq), 0);
	assert_int_equal(seq, rescan + 2);
	spool_close(sp);

	sp = sp_open(t->dir, 0, 0, 0);
	assert_int_equal(spool_durable_seq(sp), rescan + 2);
	got_reset(&g);
	assert_int_equal(spool_read(sp, 0, UINT64_MAX, got_cb, &g), 0);
	assert_int_equal(g.seq[g.n - 4], durable);
	assert_int_equal(g.seq[g.n - 3], rescan);
	assert_int_equal(g.seq[g.n - 1], rescan + 2);
	got_free(&g);
	spool_close(sp);
}

static void
test_bad_segment(void **state)
{
	struct tctx *t = *state;
	struct spool_opts o;
	char seg[PATH_MAX], err[512];
	struct spool *sp;

	sp = sp_open(t->dir, 0, 0, 0);
	fill(sp, 3, 3);
	spool_close(sp);
	last_seg_path(t->dir, seg, sizeof seg);
	flip_byte(seg, 2);
	memset(&o, 0, sizeof o);
	assert_int_equal(spool_open(t->dir, &o, &sp, err, sizeof err),
	    -AR_ESTATE);
	assert_null(sp);
	assert_non_null(strstr(err, "bad header"));
	flip_byte(seg, 2);
	flip_byte(seg, 11);	/* version 1 -> 0x41 */
	assert_int_equal(spool_open(t->dir, &o, &sp, err, sizeof err),
	    -AR_ESTATE);
	assert_non_null(strstr(err, "version"));
	o.readonly = 1;
	assert_int_equal(spool_open("/nonexistent/spool", &o, &sp, err,
	    sizeof err), -AR_ESTATE);
}

/* ------------------------------------------------------------------------
 * A writer and a reader at once.
 */

struct race {
	struct spool *sp;
	atomic_int stop;
	uint64_t appended;
	uint64_t reads;
	uint64_t seen;
	int bad;
};

static void *
race_writer(void *arg)
{
	struct race *x = arg;
	uint64_t seq, i = 0;

	while (!atomic_load(&x->stop)) {
		if (spool_append(x->sp, SPOOL_ATTRIB, "w", 1, NULL, 0,
		    &seq) != 0 || seq != i + 1) {
			x->bad = 1;
			break;
		}
		i++;
		if (i % 16 == 0 && spool_commit(x->sp) != 0) {
			x->bad = 1;
			break;
		}
	}
	x->appended = i;
	return NULL;
}

static int
race_cb(void *arg, const struct spool_rec *r)
{
	struct race *x = arg;

	if (r->seq != x->seen + 1)
		x->bad = 2;
	x->seen = r->seq;
	return 0;
}

static void
test_concurrent(void **state)
{
	struct tctx *t = *state;
	struct timespec start, now;
	struct race x;
	pthread_t th;

	memset(&x, 0, sizeof x);
	x.sp = sp_open(t->dir, 0, 64 * 1024, 0);
	assert_int_equal(pthread_create(&th, NULL, race_writer, &x), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 1 &&
		    now.tv_nsec >= start.tv_nsec)
			break;
		assert_int_equal(spool_read(x.sp, x.seen, UINT64_MAX, race_cb,
		    &x), 0);
		x.reads++;
	}
	atomic_store(&x.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(x.bad, 0);
	assert_int_equal(spool_commit(x.sp), 0);
	assert_int_equal(spool_read(x.sp, x.seen, UINT64_MAX, race_cb, &x), 0);
	assert_int_equal(x.bad, 0);
	assert_int_equal(x.seen, x.appended);
	assert_true(x.appended > 100);
	print_message("# concurrent: %llu appended, %llu reads\n",
	    (unsigned long long)x.appended, (unsigned long long)x.reads);
	spool_close(x.sp);
}

#define ONE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		ONE(test_append_reopen),
		ONE(test_torn_tail),
		ONE(test_garbage_tail),
		ONE(test_corrupt_middle),
		ONE(test_corrupt_first),
		ONE(test_ack_ahead),
		ONE(test_rotation),
		ONE(test_ack_trim),
		ONE(test_two_standbys),
		ONE(test_ack_refresh),
		ONE(test_ack_busy),
		ONE(test_ack_busy_put_off),
		ONE(test_cap),
		ONE(test_readonly),
		ONE(test_sticky_error),
		ONE(test_resume),
		ONE(test_bad_segment),
		ONE(test_concurrent),
	};

	/* Recovery warnings are expected here; errors still show. */
	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
