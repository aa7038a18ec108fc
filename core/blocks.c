/*
 * blocks.c: block-hash lists, their root, and the store files that keep
 * them (see blocks.h and PROTOCOL.md "Block hashes").
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "blocks.h"
#include "error.h"
#include "fs.h"
#include "hash.h"
#include "util.h"

/* The format of SPOOL.md: the header's checksum follows the path, the
 * hashes come last, so that an append changes the file's tail and its
 * header only. The format before (the checksum last, over the whole
 * file) is still read; it is written again in this one. */
#define BLOCKS_MAGIC "ARBLKS02"
#define BLOCKS_MAGIC_V1 "ARBLKS01"
#define BLOCKS_MAGIC_LEN 8
/* magic, block size, flags, dev, ino, size, mtime, count, root, path
 * length; then the path, the checksum and the hashes */
#define BLOCKS_HDR_LEN (BLOCKS_MAGIC_LEN + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + \
	BLOCKS_ROOT_LEN + 2)
#define BLOCKS_SUM_LEN 16
#define BLOCKS_PATH_MAX 4095

/* ---------------------------------------------------------------- */
/* The list */

uint64_t
blocks_count(uint64_t size)
{
	return (size + BLOCKS_SIZE - 1) / BLOCKS_SIZE;
}

void
blocks_hash(const void *p, size_t len, uint8_t out[BLOCKS_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, BLOCKS_HASH_LEN);
}

static int
blocks_reset_state(struct blocks *b)
{
	if (b->xs == NULL)
		b->xs = XXH3_createState();
	if (b->xs == NULL || XXH3_128bits_reset(b->xs) != XXH_OK)
		return -AR_ENOMEM;
	b->fill = 0;
	return 0;
}

int
blocks_init(struct blocks *b)
{
	memset(b, 0, sizeof(*b));
	b->state = BLOCKS_OPEN;
	return blocks_reset_state(b);
}

void
blocks_release(struct blocks *b)
{
	free(b->h);
	free(b->g);
	if (b->xs != NULL)
		XXH3_freeState(b->xs);
	memset(b, 0, sizeof(*b));
}

/* The hashes of the groups that became whole (none, or the one the last
 * block completed, as the list grows). */
static int
blocks_groups_fill(struct blocks *b)
{
	int r;

	while ((b->gn + 1) * BLOCKS_GROUP <= b->n) {
		r = util_grow(&b->g, &b->gcap, (b->gn + 1) * BLOCKS_HASH_LEN,
		    1, 16 * BLOCKS_HASH_LEN);
		if (r != 0)
			return r;
		blocks_hash(b->h + b->gn * BLOCKS_GROUP * BLOCKS_HASH_LEN,
		    BLOCKS_GROUP * BLOCKS_HASH_LEN, b->g + b->gn *
		    BLOCKS_HASH_LEN);
		b->gn++;
	}
	return 0;
}

/* Append the digest of the block being filled to the list. */
static int
blocks_push(struct blocks *b)
{
	XXH128_canonical_t c;
	int r;

	if (b->n >= BLOCKS_MAX_COUNT)
		return -AR_ENOMEM;
	r = util_grow(&b->h, &b->cap, (b->n + 1) * BLOCKS_HASH_LEN, 1,
	    64 * BLOCKS_HASH_LEN);
	if (r != 0)
		return r;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(b->xs));
	memcpy(b->h + b->n * BLOCKS_HASH_LEN, c.digest, BLOCKS_HASH_LEN);
	if (b->dirty > b->n)
		b->dirty = b->n;
	b->n++;
	r = blocks_groups_fill(b);
	if (r != 0)
		return r;
	return blocks_reset_state(b);
}

int
blocks_add_hash(struct blocks *b, const uint8_t h[BLOCKS_HASH_LEN], size_t len)
{
	int r;

	assert(b->state == BLOCKS_OPEN);
	/* Whole blocks only before, so the list stays one of a file. */
	if (b->fill != 0 || b->size % BLOCKS_SIZE != 0 || len == 0 ||
	    len > BLOCKS_SIZE)
		return -AR_EINTERNAL;
	if (b->n >= BLOCKS_MAX_COUNT)
		return -AR_ENOMEM;
	r = util_grow(&b->h, &b->cap, (b->n + 1) * BLOCKS_HASH_LEN, 1,
	    64 * BLOCKS_HASH_LEN);
	if (r != 0)
		return r;
	memcpy(b->h + b->n * BLOCKS_HASH_LEN, h, BLOCKS_HASH_LEN);
	if (b->dirty > b->n)
		b->dirty = b->n;
	b->n++;
	b->size += len;
	return blocks_groups_fill(b);
}

int
blocks_update_fd(struct blocks *b, int fd, uint64_t from, uint64_t to,
    uint8_t *buf, size_t buflen)
{
	ssize_t n;
	size_t want;
	int r;

	while (from < to) {
		want = to - from < buflen ? (size_t)(to - from) : buflen;
		n = fs_pread_full(fd, buf, want, from);
		if (n < 0)
			return -AR_EIO;
		if ((size_t)n != want)
			return -AR_ECHANGED;
		r = blocks_update(b, buf, want);
		if (r != 0)
			return r;
		from += want;
	}
	return 0;
}

int
blocks_update(struct blocks *b, const void *p, size_t len)
{
	const uint8_t *q = p;
	size_t k;
	int r;

	assert(b->state == BLOCKS_OPEN && b->fill <= BLOCKS_SIZE);
	while (len > 0) {
		/* A full block is pushed only once a byte past it comes,
		 * so the last block of the file is pushed by blocks_end. */
		if (b->fill == BLOCKS_SIZE) {
			r = blocks_push(b);
			if (r != 0)
				return r;
		}
		if (b->n >= BLOCKS_MAX_COUNT)
			return -AR_ENOMEM;
		k = BLOCKS_SIZE - b->fill;
		if (k > len)
			k = len;
		if (XXH3_128bits_update(b->xs, q, k) != XXH_OK)
			return -AR_ENOMEM;
		b->fill += (uint32_t)k;
		b->size += k;
		q += k;
		len -= k;
	}
	return 0;
}

int
blocks_end(struct blocks *b)
{
	int r = 0;

	assert(b->state == BLOCKS_OPEN);
	if (b->fill > 0)
		r = blocks_push(b);
	if (r != 0)
		return r;
	assert(b->n == blocks_count(b->size));
	b->state = BLOCKS_ENDED;
	return 0;
}

int
blocks_reopen(struct blocks *b, uint64_t at, uint64_t *from)
{
	uint64_t keep;
	int r;

	assert(b->state == BLOCKS_ENDED && at <= b->size);
	keep = at / BLOCKS_SIZE;
	assert(keep <= b->n);
	b->n = (size_t)keep;
	b->size = keep * BLOCKS_SIZE;
	if (b->gn > b->n / BLOCKS_GROUP)
		b->gn = b->n / BLOCKS_GROUP;
	if (b->dirty > b->n)
		b->dirty = b->n;
	r = blocks_reset_state(b);
	if (r != 0)
		return r;
	b->state = BLOCKS_OPEN;
	*from = b->size;
	return 0;
}





void
blocks_root(const struct blocks *b, uint8_t out[BLOCKS_ROOT_LEN])
{
	struct hash_ctx h;
	uint8_t hdr[12], g[BLOCKS_HASH_LEN];
	size_t i, k;

	assert(b->state == BLOCKS_ENDED);
	util_put_be32(hdr, BLOCKS_SIZE);
	util_put_be64(hdr + 4, b->size);
	if (hash_init(&h) != 0) {
		/* GnuTLS out of memory: a root that matches nothing. */
		memset(out, 0, BLOCKS_ROOT_LEN);
		return;
	}
	hash_update(&h, hdr, sizeof(hdr));
	/* SHA-256 over a hash per group of blocks, not over the whole
	 * list: a root costs the list's bytes at XXH3's speed. */
	for (i = 0; i < b->n; i += BLOCKS_GROUP) {
		k = b->n - i < BLOCKS_GROUP ? b->n - i : BLOCKS_GROUP;
		if (i / BLOCKS_GROUP < b->gn)
			memcpy(g, b->g + i / BLOCKS_GROUP * BLOCKS_HASH_LEN,
			    sizeof(g));
		else
			blocks_hash(b->h + i * BLOCKS_HASH_LEN,
			    k * BLOCKS_HASH_LEN, g);
		hash_update(&h, g, sizeof(g));
	}
	hash_final(&h, out);
}

int
blocks_copy(struct blocks *dst, const struct blocks *src)
{
	int r;

	assert(src->state == BLOCKS_ENDED);
	r = util_grow(&dst->h, &dst->cap, src->n * BLOCKS_HASH_LEN + 1, 1,
	    64 * BLOCKS_HASH_LEN);
	if (r != 0)
		return r;
	if (src->n > 0)
		memcpy(dst->h, src->h, src->n * BLOCKS_HASH_LEN);
	dst->n = src->n;
	dst->size = src->size;
	dst->state = BLOCKS_ENDED;
	dst->gn = 0;
	dst->dirty = 0;
	r = blocks_groups_fill(dst);
	if (r != 0)
		return r;
	return blocks_reset_state(dst);
}

/* Store files */

size_t
blocks_store_len(size_t n, size_t plen)
{
	return BLOCKS_HDR_LEN + plen + n * BLOCKS_HASH_LEN + BLOCKS_SUM_LEN;
}

/* Bytes of the header, its checksum included: the hashes start there. */
static size_t
blocks_store_hdr_len(size_t plen)
{
	return BLOCKS_HDR_LEN + plen + BLOCKS_SUM_LEN;
}

/* The header of m and b, with its checksum, at out. */
static void
blocks_store_encode_hdr(const struct blocks_meta *m, const struct blocks *b,
    uint8_t *out)
{
	uint8_t *p = out;

	memcpy(p, BLOCKS_MAGIC, BLOCKS_MAGIC_LEN);
	p += BLOCKS_MAGIC_LEN;
	util_put_be32(p, BLOCKS_SIZE);
	util_put_be32(p + 4, m->flags);
	util_put_be64(p + 8, m->dev);
	util_put_be64(p + 16, m->ino);
	util_put_be64(p + 24, m->size);
	util_put_be64(p + 32, (uint64_t)m->mtime_sec);
	util_put_be32(p + 40, m->mtime_nsec);
	util_put_be32(p + 44, (uint32_t)b->n);
	p += 48;
	blocks_root(b, p);
	p += BLOCKS_ROOT_LEN;
	p[0] = (uint8_t)(m->path_len >> 8);
	p[1] = (uint8_t)m->path_len;
	p += 2;
	memcpy(p, m->path, m->path_len);
	p += m->path_len;
	blocks_hash(out, (size_t)(p - out), p);
}

int
blocks_store_encode(const struct blocks_meta *m, const struct blocks *b,
    uint8_t *out, size_t outlen)
{
	size_t hl;

	if (b->state != BLOCKS_ENDED || m->size != b->size ||
	    m->path_len > BLOCKS_PATH_MAX ||
	    outlen < blocks_store_len(b->n, m->path_len))
		return -AR_EINTERNAL;
	hl = blocks_store_hdr_len(m->path_len);
	blocks_store_encode_hdr(m, b, out);
	if (b->n > 0)
		memcpy(out + hl, b->h, b->n * BLOCKS_HASH_LEN);
	return 0;
}

int
blocks_store_decode(const uint8_t *p, size_t len, struct blocks_meta *m,
    struct blocks *b)
{
	uint8_t sum[BLOCKS_SUM_LEN], root[BLOCKS_ROOT_LEN];
	const uint8_t *q, *hashes;
	uint32_t n;
	int r, v1;

	r = blocks_init(b);
	if (r != 0)
		return r;
	memset(m, 0, sizeof(*m));
	if (len < BLOCKS_HDR_LEN + BLOCKS_SUM_LEN)
		return -AR_EPROTO;
	v1 = memcmp(p, BLOCKS_MAGIC_V1, BLOCKS_MAGIC_LEN) == 0;
	if (!v1 && memcmp(p, BLOCKS_MAGIC, BLOCKS_MAGIC_LEN) != 0)
		return -AR_EPROTO;
	q = p + BLOCKS_MAGIC_LEN;
	if (util_get_be32(q) != BLOCKS_SIZE)
		return -AR_EPROTO;
	m->flags = util_get_be32(q + 4);
	m->dev = util_get_be64(q + 8);
	m->ino = util_get_be64(q + 16);
	m->size = util_get_be64(q + 24);
	m->mtime_sec = (int64_t)util_get_be64(q + 32);
	m->mtime_nsec = util_get_be32(q + 40);
	n = util_get_be32(q + 44);
	q += 48 + BLOCKS_ROOT_LEN;
	m->path_len = (uint16_t)(q[0] << 8 | q[1]);
	if (n > BLOCKS_MAX_COUNT || m->size > BLOCKS_MAX_FILE ||
	    n != blocks_count(m->size) || m->path_len > BLOCKS_PATH_MAX ||
	    m->mtime_nsec >= 1000000000u ||
	    len != blocks_store_len(n, m->path_len))
		return -AR_EPROTO;
	/* Version 1: the checksum is last, over all before it; now it
	 * closes the header, and the root proves the hashes after it. */
	if (v1) {
		blocks_hash(p, len - BLOCKS_SUM_LEN, sum);
		if (memcmp(sum, p + len - BLOCKS_SUM_LEN, BLOCKS_SUM_LEN) != 0)
			return -AR_EPROTO;
		hashes = q + 2 + m->path_len;
	} else {
		hashes = q + 2 + m->path_len + BLOCKS_SUM_LEN;
		blocks_hash(p, (size_t)(hashes - BLOCKS_SUM_LEN - p), sum);
		if (memcmp(sum, hashes - BLOCKS_SUM_LEN, BLOCKS_SUM_LEN) != 0)
			return -AR_EPROTO;
	}
	q += 2;
	memcpy(m->path, q, m->path_len);
	m->path[m->path_len] = '\0';
	r = util_grow(&b->h, &b->cap, (size_t)n * BLOCKS_HASH_LEN + 1, 1,
	    64 * BLOCKS_HASH_LEN);
	if (r != 0)
		return r;
	if (n > 0)
		memcpy(b->h, hashes, (size_t)n * BLOCKS_HASH_LEN);
	b->n = n;
	b->size = m->size;
	b->state = BLOCKS_ENDED;
	r = blocks_groups_fill(b);
	if (r != 0)
		return r;
	/* The root is what proves the hashes (the header's checksum covers
	 * only the header): a torn update in place fails here. */
	blocks_root(b, root);
	if (memcmp(root, p + BLOCKS_MAGIC_LEN + 48, BLOCKS_ROOT_LEN) != 0)
		return -AR_EPROTO;
	/* A version-1 file is never updated in place: dirty from 0. */
	b->dirty = v1 ? 0 : b->n;
	return 0;
}

void
blocks_store_name(const struct stat *st, char *out, size_t outlen)
{
	snprintf(out, outlen, "%llx-%llx", (unsigned long long)st->st_dev,
	    (unsigned long long)st->st_ino);
}

/* d := what fd is now, a file of the current format for m and b. */
static int
blocks_store_note(int fd, const struct blocks_meta *m, const struct blocks *b,
    struct blocks_disk *d)
{
	struct stat st;

	memset(d, 0, sizeof(*d));
	if (fstat(fd, &st) != 0)
		return -AR_EIO;
	d->ino = (uint64_t)st.st_ino;
	d->size = (int64_t)st.st_size;
	d->mtime_sec = (int64_t)st.st_mtim.tv_sec;
	d->mtime_nsec = st.st_mtim.tv_nsec;
	d->ctime_sec = (int64_t)st.st_ctim.tv_sec;
	d->ctime_nsec = st.st_ctim.tv_nsec;
	d->hdr = blocks_store_hdr_len(m->path_len);
	d->n = b->n;
	d->valid = (uint64_t)st.st_size == d->hdr + b->n * BLOCKS_HASH_LEN;
	return 0;
}

/* 1 if st is the file d describes. */
static int
blocks_store_same(const struct stat *st, const struct blocks_disk *d)
{
	return d->valid && (uint64_t)st->st_ino == d->ino &&
	    (int64_t)st->st_size == d->size &&
	    (int64_t)st->st_mtim.tv_sec == d->mtime_sec &&
	    st->st_mtim.tv_nsec == d->mtime_nsec &&
	    (int64_t)st->st_ctim.tv_sec == d->ctime_sec &&
	    st->st_ctim.tv_nsec == d->ctime_nsec;
}

int
blocks_store_fresh(int dirfd, const char *name, const struct blocks_disk *d)
{
	struct stat st;

	return d->valid && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) ==
	    0 && S_ISREG(st.st_mode) && blocks_store_same(&st, d);
}

int
blocks_store_save(int dirfd, const char *name, const struct blocks_meta *m,
    const struct blocks *b, int durable)
{
	char tmp[NAME_MAX + 1];
	uint8_t *buf;
	size_t len;
	int fd, r;

	len = blocks_store_len(b->n, m->path_len);
	buf = malloc(len);
	if (buf == NULL)
		return -AR_ENOMEM;
	r = blocks_store_encode(m, b, buf, len);
	if (r == 0 && durable)
		r = fs_write_durable(dirfd, name, buf, len, 0600);
	else if (r == 0) {
		r = fs_tmpfile(dirfd, name, &fd, tmp, sizeof(tmp));
		if (r == 0) {
			r = fs_write_full(fd, buf, len);
			close(fd);
			if (r == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
				r = -AR_EIO;
			if (r != 0)
				unlinkat(dirfd, tmp, 0);
		}
	}
	free(buf);
	return r;
}

/*
 * The update in place: only when the file is still the one d describes
 * (same inode, size, times, so no other writer came between) and of the
 * same header length. The hashes from b->dirty on go first, the header
 * (with the new count and root) last; without fsync the kernel may
 * write them back in any order, and a crash may leave any mix: the
 * header's checksum and the root over the hashes refuse every mix but
 * the old entry or the new one. 1 when it cannot be done in place.
 */
static int
blocks_store_inplace(int dirfd, const char *name, const struct blocks_meta *m,
    const struct blocks *b, struct blocks_disk *d)
{
	uint8_t hdr[BLOCKS_HDR_LEN + BLOCKS_PATH_MAX + BLOCKS_SUM_LEN];
	struct stat st;
	size_t hl = blocks_store_hdr_len(m->path_len), from = b->dirty;
	int fd, r = 0;

	if (!d->valid || d->hdr != hl || from > d->n || from > b->n ||
	    b->state != BLOCKS_ENDED || m->size != b->size)
		return 1;
	fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 1;
	/* Two writers of one entry (the append path and the
	 * re-verification) take turns; the second finds the stat changed
	 * and writes whole. */
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0 ||
	    !S_ISREG(st.st_mode) ||
	    !blocks_store_same(&st, d)) {
		close(fd);
		return 1;
	}
	if (b->n > from && fs_pwrite_full(fd, b->h + from * BLOCKS_HASH_LEN,
	    (b->n - from) * BLOCKS_HASH_LEN, (off_t)(hl + from *
	    BLOCKS_HASH_LEN)) != 0)
		r = -AR_EIO;
	if (r == 0 && b->n < d->n && ftruncate(fd, (off_t)(hl + b->n *
	    BLOCKS_HASH_LEN)) != 0)
		r = -AR_EIO;
	if (r == 0) {
		blocks_store_encode_hdr(m, b, hdr);
		if (fs_pwrite_full(fd, hdr, hl, 0) != 0)
			r = -AR_EIO;
	}
	if (r == 0)
		r = blocks_store_note(fd, m, b, d);
	close(fd);
	return r;
}

int
blocks_store_write(int dirfd, const char *name, const struct blocks_meta *m,
    struct blocks *b, struct blocks_disk *d)
{
	int fd, r;

	r = blocks_store_inplace(dirfd, name, m, b, d);
	if (r == 1) {
		r = blocks_store_save(dirfd, name, m, b, 0);
		fd = r == 0 ? openat(dirfd, name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC) : -1;
		if (fd >= 0) {
			r = blocks_store_note(fd, m, b, d);
			close(fd);
		} else if (r == 0)
			r = -AR_EIO;
	}
	if (r != 0) {
		memset(d, 0, sizeof(*d));
		(void)unlinkat(dirfd, name, 0);
		return r;
	}
	b->dirty = b->n;
	return 0;
}

int
blocks_store_read(int dirfd, const char *name, struct blocks_meta *m,
    struct blocks *b, struct blocks_disk *d)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd, r;

	if (d != NULL)
		memset(d, 0, sizeof(*d));
	r = blocks_init(b);
	if (r != 0)
		return r;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -AR_EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > blocks_store_len(BLOCKS_MAX_COUNT,
	    BLOCKS_PATH_MAX)) {
		close(fd);
		return -AR_EPROTO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -AR_ENOMEM;
	}
	n = fs_read_full(fd, buf, (size_t)st.st_size + 1);
	blocks_release(b);
	if (n != st.st_size)
		r = -AR_EPROTO;
	else
		r = blocks_store_decode(buf, (size_t)n, m, b);
	/* Read whole and proven: the list is the file's, unless the file
	 * changed while read (then d stays invalid). */
	if (r == 0 && d != NULL && b->dirty == b->n &&
	    blocks_store_note(fd, m, b, d) == 0 && !blocks_store_same(&st, d))
		memset(d, 0, sizeof(*d));
	close(fd);
	free(buf);
	if (r != 0) {
		blocks_release(b);
		(void)blocks_init(b);
	}
	return r;
}

int
blocks_store_load(int dirfd, const char *name, struct blocks_meta *m,
    struct blocks *b)
{
	return blocks_store_read(dirfd, name, m, b, NULL);
}

/* ---------------------------------------------------------------- */
/* Lists kept in memory */

struct blocks_mem_slot {
	char name[64];		/* "" when free */
	struct blocks_meta *m;
	struct blocks b;
	struct blocks_disk d;
	uint64_t used;		/* tick of the last put */
};

struct blocks_mem {
	pthread_mutex_t lock;
	struct blocks_mem_slot slot[BLOCKS_MEM_SLOTS];
	uint64_t tick;
};

int
blocks_mem_new(struct blocks_mem **out)
{
	struct blocks_mem *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -AR_ENOMEM;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return -AR_ENOMEM;
	}
	*out = c;
	return 0;
}

static void
blocks_mem_clear(struct blocks_mem_slot *sl)
{
	if (sl->name[0] != '\0')
		blocks_release(&sl->b);
	free(sl->m);
	memset(sl, 0, sizeof(*sl));
}

void
blocks_mem_free(struct blocks_mem *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < BLOCKS_MEM_SLOTS; i++)
		blocks_mem_clear(&c->slot[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The slot of name, or NULL; under the lock. */
static struct blocks_mem_slot *
blocks_mem_find(struct blocks_mem *c, const char *name)
{
	size_t i;

	for (i = 0; i < BLOCKS_MEM_SLOTS; i++)
		if (c->slot[i].name[0] != '\0' &&
		    strcmp(c->slot[i].name, name) == 0)
			return &c->slot[i];
	return NULL;
}

int
blocks_mem_take(struct blocks_mem *c, int dirfd, const char *name,
    struct blocks_meta *m, struct blocks *b, struct blocks_disk *d)
{
	struct blocks_mem_slot *sl;
	int got = 0;

	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		sl = blocks_mem_find(c, name);
		if (sl != NULL) {
			memcpy(m, sl->m, sizeof(*m));
			*b = sl->b;
			*d = sl->d;
			free(sl->m);
			memset(sl, 0, sizeof(*sl));
			got = 1;
		}
		pthread_mutex_unlock(&c->lock);
	}
	/* Someone else wrote or removed the file since: the file says. */
	if (got && blocks_store_fresh(dirfd, name, d))
		return 0;
	if (got)
		blocks_release(b);
	return blocks_store_read(dirfd, name, m, b, d);
}

void
blocks_mem_put(struct blocks_mem *c, const char *name,
    const struct blocks_meta *m, struct blocks *b,
    const struct blocks_disk *d)
{
	struct blocks_mem_slot *sl, *old;
	size_t i, bytes;

	if (c == NULL || !d->valid || strlen(name) >= sizeof(sl->name) ||
	    b->state != BLOCKS_ENDED || b->cap > BLOCKS_MEM_BYTES) {
		blocks_release(b);
		(void)blocks_init(b);
		return;
	}
	pthread_mutex_lock(&c->lock);
	sl = blocks_mem_find(c, name);
	if (sl != NULL)
		blocks_mem_clear(sl);
	for (;;) {
		/* A free slot, else the least recently kept; then older
		 * ones go while the lists are too big together. */
		sl = old = NULL;
		bytes = b->cap + b->gcap;
		for (i = 0; i < BLOCKS_MEM_SLOTS; i++) {
			if (c->slot[i].name[0] == '\0') {
				sl = sl != NULL ? sl : &c->slot[i];
				continue;
			}
			bytes += c->slot[i].b.cap + c->slot[i].b.gcap;
			if (old == NULL || c->slot[i].used < old->used)
				old = &c->slot[i];
		}
		if (old == NULL || (sl != NULL && bytes <= BLOCKS_MEM_BYTES))
			break;
		blocks_mem_clear(old);
	}
	if (sl != NULL)
		sl->m = malloc(sizeof(*sl->m));
	if (sl == NULL || sl->m == NULL) {
		pthread_mutex_unlock(&c->lock);
		blocks_release(b);
		(void)blocks_init(b);
		return;
	}
	memcpy(sl->m, m, sizeof(*m));
	memcpy(sl->name, name, strlen(name) + 1);
	sl->b = *b;
	sl->d = *d;
	sl->used = ++c->tick;
	pthread_mutex_unlock(&c->lock);
	memset(b, 0, sizeof(*b));
	(void)blocks_init(b);
}

void
blocks_mem_drop(struct blocks_mem *c, const char *name)
{
	struct blocks_mem_slot *sl;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	sl = blocks_mem_find(c, name);
	if (sl != NULL)
		blocks_mem_clear(sl);
	pthread_mutex_unlock(&c->lock);
}
