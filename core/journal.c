/*
 * journal.c: the journal of an in-place update (see journal.h).
 *
 * Layout, all integers big-endian:
 *   head    "ARJ1", u64 dev, u64 ino, u64 size, u64 mtime_sec,
 *           u32 mtime_nsec, u32 mode, u32 uid, u32 gid, u16 path_len,
 *           path
 *   record  'R', u64 offset, u32 length, u8 hole, then length bytes
 *           unless hole
 *   commit  'C', u64 records, u64 XXH3-64 of every byte before it
 * The commit is the last thing in the file: a journal whose last 17
 * bytes are not a commit that matches what precedes it was never
 * committed, and the copy it was for was never touched.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "error.h"
#include "fs.h"
#include "journal.h"
#include "util.h"

#define JOURNAL_MAGIC "ARJ1"
#define JOURNAL_HEAD_LEN (4 + 8 * 4 + 4 * 4 + 2)
#define JOURNAL_REC_LEN (1 + 8 + 4 + 1)
#define JOURNAL_COMMIT_LEN (1 + 8 + 8)

void
journal_init(struct journal *j, int dirfd)
{
	memset(j, 0, sizeof(*j));
	j->dirfd = dirfd;
	j->fd = -1;
}

void
journal_name(uint64_t dev, uint64_t ino, char *name, size_t len)
{
	int n = snprintf(name, len, "%" PRIu64 "-%" PRIu64 ".j", dev, ino);

	assert(n > 0 && (size_t)n < len);
	(void)n;
}

void
journal_release(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->xs != NULL)
		XXH3_freeState(j->xs);
	j->xs = NULL;
	free(j->buf);
	j->buf = NULL;
}

/* Append len bytes to the journal, hashing them. */
static int
journal_write(struct journal *j, const void *p, size_t len)
{
	if (fs_write_full(j->fd, p, len) != 0)
		return -AR_EIO;
	if (XXH3_64bits_update(j->xs, p, len) != XXH_OK)
		return -AR_EINTERNAL;
	j->off += len;
	return 0;
}

int
journal_begin(struct journal *j, const struct journal_head *h)
{
	uint8_t hd[JOURNAL_HEAD_LEN];
	int r;

	assert(j->fd < 0 && h->path_len <= WIRE_PATH_MAX);
	journal_name(h->dev, h->ino, j->name, sizeof(j->name));
	j->xs = XXH3_createState();
	if (j->xs == NULL || XXH3_64bits_reset(j->xs) != XXH_OK) {
		journal_release(j);
		return -AR_ENOMEM;
	}
	/* An uncommitted journal of the same copy is replaced: the copy
	 * was not touched by it. */
	j->fd = openat(j->dirfd, j->name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		journal_release(j);
		return -AR_EIO;
	}
	memcpy(hd, JOURNAL_MAGIC, 4);
	util_put_be64(hd + 4, h->dev);
	util_put_be64(hd + 12, h->ino);
	util_put_be64(hd + 20, h->size);
	util_put_be64(hd + 28, (uint64_t)h->mtime_sec);
	util_put_be32(hd + 36, h->mtime_nsec);
	util_put_be32(hd + 40, h->mode);
	util_put_be32(hd + 44, h->uid);
	util_put_be32(hd + 48, h->gid);
	hd[52] = (uint8_t)(h->path_len >> 8);
	hd[53] = (uint8_t)h->path_len;
	r = journal_write(j, hd, sizeof(hd));
	if (r == 0)
		r = journal_write(j, h->path, h->path_len);
	if (r != 0)
		journal_abort(j);
	return r;
}

int
journal_put(struct journal *j, uint64_t off, const void *buf, uint32_t len,
    int hole)
{
	uint8_t rec[JOURNAL_REC_LEN];
	int r;

	assert(j->fd >= 0 && len <= JOURNAL_RECORD_MAX);
	rec[0] = 'R';
	util_put_be64(rec + 1, off);
	util_put_be32(rec + 9, len);
	rec[13] = hole ? 1 : 0;
	r = journal_write(j, rec, sizeof(rec));
	if (r == 0 && !hole)
		r = journal_write(j, buf, len);
	if (r == 0)
		j->records++;
	return r;
}

int
journal_commit(struct journal *j)
{
	uint8_t c[JOURNAL_COMMIT_LEN];

	assert(j->fd >= 0);
	c[0] = 'C';
	util_put_be64(c + 1, j->records);
	util_put_be64(c + 9, XXH3_64bits_digest(j->xs));
	if (fs_write_full(j->fd, c, sizeof(c)) != 0 || fsync(j->fd) != 0 ||
	    fs_fsync_dir(j->dirfd) != 0)
		return -AR_EIO;
	return 0;
}

/* Read the head at offset 0 of j->fd into h; its length into *len. */
static int
journal_read_head(struct journal *j, struct journal_head *h, uint64_t *len)
{
	uint8_t hd[JOURNAL_HEAD_LEN];
	ssize_t n;

	n = fs_pread_full(j->fd, hd, sizeof(hd), 0);
	if (n < 0)
		return -AR_EIO;
	if (n != (ssize_t)sizeof(hd) || memcmp(hd, JOURNAL_MAGIC, 4) != 0)
		return -AR_EPROTO;
	memset(h, 0, sizeof(*h));
	h->dev = util_get_be64(hd + 4);
	h->ino = util_get_be64(hd + 12);
	h->size = util_get_be64(hd + 20);
	h->mtime_sec = (int64_t)util_get_be64(hd + 28);
	h->mtime_nsec = util_get_be32(hd + 36);
	h->mode = util_get_be32(hd + 40);
	h->uid = util_get_be32(hd + 44);
	h->gid = util_get_be32(hd + 48);
	h->path_len = (uint16_t)(hd[52] << 8 | hd[53]);
	if (h->path_len == 0 || h->path_len > WIRE_PATH_MAX ||
	    h->mtime_nsec >= 1000000000u)
		return -AR_EPROTO;
	n = fs_pread_full(j->fd, h->path, h->path_len, sizeof(hd));
	if (n < 0)
		return -AR_EIO;
	if (n != (ssize_t)h->path_len)
		return -AR_EPROTO;
	h->path[h->path_len] = '\0';
	if (!wire_path_valid(h->path, h->path_len) ||
	    memchr(h->path, '\0', h->path_len) != NULL)
		return -AR_EPROTO;
	*len = sizeof(hd) + h->path_len;
	return 0;
}

/*
 * Walk the records from off to end (the commit's offset): each is
 * checked against the bounds, hashed when xs is set, and written into
 * fd when fd >= 0. Returns the count in *count.
 */
static int
journal_walk(struct journal *j, uint64_t off, uint64_t end, uint64_t size,
    int fd, uint64_t *count)
{
	uint8_t rec[JOURNAL_REC_LEN];
	uint64_t at;
	uint32_t len;
	ssize_t n;
	int hole;

	*count = 0;
	while (off < end) {
		if (end - off < sizeof(rec))
			return -AR_EPROTO;
		n = fs_pread_full(j->fd, rec, sizeof(rec), off);
		if (n < 0)
			return -AR_EIO;
		if (n != (ssize_t)sizeof(rec) || rec[0] != 'R' || rec[13] > 1)
			return -AR_EPROTO;
		at = util_get_be64(rec + 1);
		len = util_get_be32(rec + 9);
		hole = rec[13];
		if (len == 0 || len > JOURNAL_RECORD_MAX || at > size ||
		    len > size - at)
			return -AR_EPROTO;
		if (fd < 0 && XXH3_64bits_update(j->xs, rec, sizeof(rec)) !=
		    XXH_OK)
			return -AR_EINTERNAL;
		off += sizeof(rec);
		if (!hole) {
			if (end - off < len)
				return -AR_EPROTO;
			n = fs_pread_full(j->fd, j->buf, len, off);
			if (n < 0)
				return -AR_EIO;
			if (n != (ssize_t)len)
				return -AR_EPROTO;
			if (fd < 0 && XXH3_64bits_update(j->xs, j->buf, len) !=
			    XXH_OK)
				return -AR_EINTERNAL;
			off += len;
		}
		if (fd >= 0 && hole && fallocate(fd, FALLOC_FL_PUNCH_HOLE |
		    FALLOC_FL_KEEP_SIZE, (off_t)at, (off_t)len) != 0) {
			/* No holes here: the zeros, written. */
			memset(j->buf, 0, len);
			hole = 0;
		}
		if (fd >= 0 && !hole && fs_pwrite_full(fd, j->buf, len, at) != 0)
			return -AR_EIO;
		(*count)++;
	}
	return 0;
}

int
journal_open(struct journal *j, const char *name, struct journal_head *h)
{
	uint8_t c[JOURNAL_COMMIT_LEN], head[JOURNAL_HEAD_LEN + WIRE_PATH_MAX];
	struct stat st;
	uint64_t hlen, end, count;
	int r;

	assert(j->fd < 0);
	if (strlen(name) >= sizeof(j->name))
		return -AR_EPROTO;
	memcpy(j->name, name, strlen(name) + 1);
	j->fd = openat(j->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (j->fd < 0)
		return -AR_EIO;
	j->xs = XXH3_createState();
	j->buf = malloc(JOURNAL_RECORD_MAX);
	if (j->xs == NULL || j->buf == NULL ||
	    XXH3_64bits_reset(j->xs) != XXH_OK) {
		journal_release(j);
		return -AR_ENOMEM;
	}
	if (fstat(j->fd, &st) != 0) {
		journal_release(j);
		return -AR_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		journal_release(j);
		return -AR_EPROTO;
	}
	r = journal_read_head(j, h, &hlen);
	if (r == 0 && (uint64_t)st.st_size < hlen + JOURNAL_COMMIT_LEN)
		r = -AR_EPROTO;
	if (r == 0) {
		end = (uint64_t)st.st_size - JOURNAL_COMMIT_LEN;
		if (fs_pread_full(j->fd, c, sizeof(c), end) !=
		    (ssize_t)sizeof(c) || fs_pread_full(j->fd, head, hlen,
		    0) != (ssize_t)hlen)
			r = -AR_EIO;	/* the size said they are there */
		else if (c[0] != 'C')
			r = -AR_EPROTO;
		else if (XXH3_64bits_update(j->xs, head, hlen) != XXH_OK)
			r = -AR_EINTERNAL;
	}
	if (r == 0)
		r = journal_walk(j, hlen, end, h->size, -1, &count);
	if (r == 0 && (count != util_get_be64(c + 1) ||
	    XXH3_64bits_digest(j->xs) != util_get_be64(c + 9)))
		r = -AR_EPROTO;
	if (r != 0) {
		journal_release(j);
		return r;
	}
	j->records = count;
	j->off = hlen;
	j->size = h->size;
	return 0;
}

int
journal_apply(struct journal *j, int fd)
{
	struct stat st;
	uint64_t count;
	int r;

	assert(j->fd >= 0 && j->buf != NULL);
	if (fstat(j->fd, &st) != 0)
		return -AR_EIO;
	r = journal_walk(j, j->off, (uint64_t)st.st_size -
	    JOURNAL_COMMIT_LEN, j->size, fd, &count);
	if (r == 0 && ftruncate(fd, (off_t)j->size) != 0)
		r = -AR_EIO;
	return r;
}

int
journal_finish(struct journal *j)
{
	int r = 0;

	journal_release(j);
	if (unlinkat(j->dirfd, j->name, 0) != 0 && errno != ENOENT)
		r = -AR_EIO;
	/* Gone for good: a journal that came back after a crash would be
	 * replayed over whatever the copy became since. */
	if (r == 0 && fs_fsync_dir(j->dirfd) != 0)
		r = -AR_EIO;
	return r;
}

void
journal_abort(struct journal *j)
{
	journal_release(j);
	if (j->name[0] != '\0')
		(void)unlinkat(j->dirfd, j->name, 0);
	j->name[0] = '\0';
}
