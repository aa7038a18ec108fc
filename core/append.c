/*
 * append.c: the standby's block store and the append path (PROTOCOL.md
 * "The append path").
 *
 * The store (state_dir/blocks, one file per replicated file of at least
 * append_min_size, named by the local copy's device and inode) holds the
 * block list of what this standby wrote, with the copy's size and mtime:
 * an entry that does not match the copy's stat, or fails its checksum,
 * is absent. When the primary's file grew past what an entry vouches
 * for, only the tail is asked for (POST /v1/append); each block is
 * checked against the hash announced before its bytes, then written in
 * place at the end of the copy, which stays the same inode. Anything
 * else (no entry, the primary's R, a failed check) leaves the general
 * path (delta or whole) to do the work.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocks.h"
#include "client.h"
#include "error.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "syncer.h"
#include "walk.h"
#include "wire.h"

/* ---------------------------------------------------------------- */
/* The block store */

int
append_store_wanted(const struct syncer *s, uint64_t size)
{
	return s->state.blocksfd >= 0 && size >= s->cfg->append_min_size &&
	    size <= BLOCKS_MAX_FILE;
}

static int
append_store_matches(const struct blocks_meta *m, const struct stat *st)
{
	return m->dev == (uint64_t)st->st_dev &&
	    m->ino == (uint64_t)st->st_ino &&
	    m->size == (uint64_t)st->st_size &&
	    m->mtime_sec == (int64_t)st->st_mtim.tv_sec &&
	    m->mtime_nsec == (uint32_t)st->st_mtim.tv_nsec;
}

void
append_store_drop(struct syncer *s, const struct stat *st)
{
	char name[64];

	if (s->state.blocksfd < 0)
		return;
	blocks_store_name(st, name, sizeof(name));
	blocks_mem_drop(s->state.blocksmem, name);
	(void)unlinkat(s->state.blocksfd, name, 0);
}

void
append_store_sweep(struct syncer *s)
{
	struct blocks_meta *m;
	struct blocks b;
	struct stat st;
	struct dirent *de;
	const char *base;
	DIR *d;
	int dirfd, keep, r;

	if (s->state.blocksfd < 0 || fs_opendir(s->state.blocksfd, &d) != 0)
		return;
	m = malloc(sizeof(*m));
	for (;;) {
		de = m != NULL ? readdir(d) : NULL;
		if (de == NULL)
			break;
		if (de->d_name[0] == '.') {
			/* a temp file of a write that a crash cut short */
			if (strncmp(de->d_name, FS_TMP_PREFIX,
			    strlen(FS_TMP_PREFIX)) == 0)
				(void)unlinkat(s->state.blocksfd, de->d_name,
				    0);
			continue;
		}
		r = blocks_store_load(s->state.blocksfd, de->d_name, m, &b);
		if (r == -AR_EPROTO)
			log_warn("block store: entry '%s' is corrupt: removed",
			    de->d_name);
		keep = r == 0 && m->path_len > 0 && fs_open_parent(s->rootfd,
		    m->path, &dirfd, &base) == 0;
		blocks_release(&b);
		if (keep) {
			keep = fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 && append_store_matches(m, &st);
			close(dirfd);
		}
		if (!keep)
			(void)unlinkat(s->state.blocksfd, de->d_name, 0);
	}
	free(m);
	closedir(d);
}

/* The entry of the file of stat st, if it vouches for it: 0, else
 * -AR_EIO (absent, stale or corrupt: removed). b holds nothing before
 * and is initialised after; d says what the entry's file is. */
static int
append_store_load(struct syncer *s, const struct stat *st, struct blocks *b,
    struct blocks_disk *d)
{
	struct blocks_meta *m;
	char name[64];
	int r;

	m = malloc(sizeof(*m));
	if (m == NULL)
		return -AR_ENOMEM;
	blocks_store_name(st, name, sizeof(name));
	r = blocks_mem_take(s->state.blocksmem, s->state.blocksfd, name, m,
	    b, d);
	if (r == -AR_EPROTO)
		log_warn("block store: entry '%s' is corrupt: ignored", name);
	if (r == 0 && !append_store_matches(m, st)) {
		log_verbose("block store: entry '%s' does not match its file: "
		    "ignored", name);
		r = -AR_EIO;
	}
	if (r != 0 && r != -AR_ENOMEM)
		(void)unlinkat(s->state.blocksfd, name, 0);
	free(m);
	return r == -AR_ENOMEM ? r : r != 0 ? -AR_EIO : 0;
}

int
append_store_get(struct syncer *s, const struct stat *st, struct blocks *b)
{
	struct blocks_disk d;

	return append_store_load(s, st, b, &d);
}

/* The entry's fields for fd's file, as b lists it; 0 if fd is not of
 * b's size. */
static int
append_store_meta(int fd, const char *path, size_t plen,
    const struct blocks *b, struct blocks_meta *m, char *name, size_t nlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != b->size)
		return 0;
	memset(m, 0, offsetof(struct blocks_meta, path));
	m->path[0] = '\0';
	m->dev = (uint64_t)st.st_dev;
	m->ino = (uint64_t)st.st_ino;
	m->size = b->size;
	m->mtime_sec = (int64_t)st.st_mtim.tv_sec;
	m->mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
	if (plen < sizeof(m->path)) {
		memcpy(m->path, path, plen);
		m->path[plen] = '\0';
		m->path_len = (uint16_t)plen;
	}
	blocks_store_name(&st, name, nlen);
	return 1;
}

/* Without an entry the next change takes the general path. No fsync:
 * the entry vouches only while it matches the file's stat, and the file
 * is durable before it; a torn one fails its header's checksum or its
 * root. */
static void
append_store_failed(struct syncer *s, const char *name, const char *path,
    size_t plen)
{
	log_warn("block store: cannot write the entry of '%s': %s",
	    sync_esc(path, plen), strerror(errno));
	(void)unlinkat(s->state.blocksfd, name, 0);
}

void
append_store_put(struct syncer *s, int fd, const char *path, size_t plen,
    const struct blocks *b)
{
	struct blocks_meta *m;
	char name[64];

	if (s->state.blocksfd < 0)
		return;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	if (append_store_meta(fd, path, plen, b, m, name, sizeof(name))) {
		/* A new file (a new inode): whole; a list kept under the
		 * name would be of an older one. */
		blocks_mem_drop(s->state.blocksmem, name);
		if (blocks_store_save(s->state.blocksfd, name, m, b, 0) != 0)
			append_store_failed(s, name, path, plen);
	}
	free(m);
}

/*
 * The entry of the copy the append path extended: in place where d says
 * the entry's file still holds the list b came from (the new hashes and
 * the header), then kept in memory for the next append (b taken over).
 */
static void
append_store_keep(struct syncer *s, int fd, const char *path, size_t plen,
    struct blocks *b, struct blocks_disk *d)
{
	struct blocks_meta *m;
	char name[64];

	m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	if (append_store_meta(fd, path, plen, b, m, name, sizeof(name))) {
		if (blocks_store_write(s->state.blocksfd, name, m, b, d) != 0)
			append_store_failed(s, name, path, plen);
		else
			blocks_mem_put(s->state.blocksmem, name, m, b, d);
	}
	free(m);
}

/* ---------------------------------------------------------------- */
/* The append path */

/* Where the answer to /v1/append is. */
enum append_state {
	APPEND_WAIT,		/* nothing yet: F or R */
	APPEND_BLOCK,		/* F or a block done: B, or T */
	APPEND_DATA,		/* B seen: D frames fill the block */
	APPEND_VERIFIED,	/* T matched: Z ends it */
	APPEND_FALLBACK,	/* R: the general path */
};

struct append_ctx {
	struct syncer *s;
	const char *path;
	size_t plen;
	int fd;			/* the local copy, written in place */
	uint64_t base;		/* its size */
	struct blocks b;	/* its list, then the new version's */
	struct wire_entry *fe;	/* the F frame */
	enum append_state state;
	int ended;		/* Z seen */
	int wrote;		/* bytes past base were written */
	uint64_t next;		/* offset of the next block */
	uint64_t blen;		/* its length */
	uint64_t have;		/* its bytes in buf so far */
	uint8_t want[BLOCKS_HASH_LEN];
	uint8_t *buf;		/* one block */
	struct wire_reader rd;
	struct fetch_room room;	/* of the bytes past base */
};

static int
append_fail(struct append_ctx *a, int r, const char *what)
{
	return sync_fail(a->s, r, "'%s': append: %s", sync_esc(a->path,
	    a->plen), what);
}

/* The block in buf is whole: check it, write what is new, list it. */
static int
append_block_done(struct append_ctx *a)
{
	uint8_t h[BLOCKS_HASH_LEN];
	uint64_t skip = a->base > a->next ? a->base - a->next : 0;
	int r;

	blocks_hash(a->buf, (size_t)a->blen, h);
	if (memcmp(h, a->want, BLOCKS_HASH_LEN) != 0)
		return append_fail(a, -AR_EPROTO, "a block does not match "
		    "the hash the primary announced");
	r = fetch_room_take(&a->room, a->blen - skip);
	if (r != 0)
		return r;
	/* Verified, so a reader may see it. */
	if (fs_pwrite_full(a->fd, a->buf + skip, (size_t)(a->blen - skip),
	    a->next + skip) != 0)
		return append_fail(a, -AR_EIO, strerror(errno));
	a->room.written += a->blen - skip;
	a->wrote = 1;
	r = blocks_update(&a->b, a->buf, (size_t)a->blen);
	if (r != 0)
		return r;
	a->s->st->file_bytes += a->blen - skip;
	a->next += a->blen;
	a->state = APPEND_BLOCK;
	return 0;
}

static int
append_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct append_ctx *a = arg;
	struct wire_block wb;
	struct wire_trailer t;
	struct wire_retry rt;
	uint8_t root[BLOCKS_ROOT_LEN];
	uint64_t count, from;
	int r;

	if (a->ended)
		return append_fail(a, -AR_EPROTO, "data after the end");
	switch (type) {
	case WIRE_FILE:
		if (a->state != APPEND_WAIT ||
		    wire_get_entry(p, len, WIRE_FILE, a->fe) != 0 ||
		    a->fe->type != WALK_FILE ||
		    strcmp(a->fe->name, a->path) != 0 ||
		    a->fe->size < a->base || a->fe->size > BLOCKS_MAX_FILE)
			return append_fail(a, -AR_EPROTO, "malformed or "
			    "unexpected header");
		sync_map_ids(a->s, a->fe);
		r = fetch_room_begin(a->s, &a->room, a->fd, a->path,
		    a->fe->size - a->base);
		if (r != 0)
			return r;
		/* The block of the first new byte is hashed again, from
		 * the bytes this copy holds. */
		r = blocks_reopen(&a->b, a->base, &from);
		if (r != 0)
			return r;
		a->next = from;
		a->state = APPEND_BLOCK;
		return 0;
	case WIRE_BLOCK:
		if (a->state != APPEND_BLOCK || wire_get_block(p, len, &wb) !=
		    0 || a->next >= a->fe->size ||
		    wb.index != a->next / BLOCKS_SIZE)
			return append_fail(a, -AR_EPROTO, "unexpected block");
		memcpy(a->want, wb.hash, BLOCKS_HASH_LEN);
		a->blen = a->fe->size - a->next < BLOCKS_SIZE ?
		    a->fe->size - a->next : BLOCKS_SIZE;
		a->have = 0;
		if (a->base > a->next) {
			a->have = a->base - a->next;
			if (fs_pread_full(a->fd, a->buf, (size_t)a->have,
			    a->next) != (ssize_t)a->have)
				return append_fail(a, -AR_EIO, "cannot read the "
				    "local copy");
		}
		a->state = APPEND_DATA;
		return 0;
	case WIRE_DATA:
		if (a->state != APPEND_DATA)
			return append_fail(a, -AR_EPROTO, "data out of place");
		/* Never more than the block announced. */
		if (len > a->blen - a->have)
			return append_fail(a, -AR_EPROTO, "more data than the "
			    "block holds");
		memcpy(a->buf + a->have, p, len);
		a->have += len;
		if (a->have < a->blen)
			return 0;
		return append_block_done(a);
	case WIRE_TRAILER:
		if (a->state != APPEND_BLOCK || wire_get_trailer(p, len, &t) !=
		    0 || a->next != a->fe->size || t.size != a->fe->size ||
		    a->b.size != a->fe->size)
			return append_fail(a, -AR_EPROTO, "unexpected or short "
			    "trailer");
		r = blocks_end(&a->b);
		if (r != 0)
			return r;
		blocks_root(&a->b, root);
		if (memcmp(root, t.hash, BLOCKS_ROOT_LEN) != 0)
			return append_fail(a, -AR_EPROTO, "the new version's "
			    "root does not match the primary's");
		a->state = APPEND_VERIFIED;
		return 0;
	case WIRE_RETRY:
		if (a->state == APPEND_DATA || a->state == APPEND_VERIFIED ||
		    wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, a->path) != 0)
			return append_fail(a, -AR_EPROTO, "unexpected retry");
		a->state = APPEND_FALLBACK;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || count != 1 ||
		    (a->state != APPEND_VERIFIED &&
		    a->state != APPEND_FALLBACK))
			return append_fail(a, -AR_EPROTO, "ended early");
		a->ended = 1;
		return 0;
	default:
		return append_fail(a, -AR_EPROTO, "unexpected frame");
	}
}

static int
append_body(void *arg, const void *data, size_t len)
{
	struct append_ctx *a = arg;
	int r;

	r = wire_reader_feed(&a->rd, data, len, append_frame, a);
	if (r == -AR_EPROTO && a->s->msg[0] == '\0')
		return sync_fail(a->s, r, "primary sent a malformed frame");
	return r;
}

int
append_file(struct syncer *s, const char *path, size_t plen,
    enum append_outcome *out)
{
	struct append_ctx a;
	struct blocks_disk d;
	struct wire_append *req = NULL;
	struct stat st;
	const char *base;
	uint8_t *body = NULL;
	int dirfd, r, n, loaded = 0;

	*out = APPEND_UNTRIED;
	if (s->state.blocksfd < 0 || (s->cfg->append != NULL &&
	    strcmp(s->cfg->append, "atomic") == 0) ||
	    client_version(s->client) < WIRE_V_APPEND)
		return 0;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.path = path;
	a.plen = plen;
	a.fd = -1;
	a.fe = &s->fent;
	a.state = APPEND_WAIT;
	r = blocks_init(&a.b);
	if (r != 0)
		return r;
	r = fs_open_parent(s->rootfd, path, &dirfd, &base);
	if (r != 0) {
		blocks_release(&a.b);
		return 0;	/* the general path says why */
	}
	a.fd = openat(dirfd, base, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	close(dirfd);
	if (a.fd < 0 || fstat(a.fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !append_store_wanted(s, (uint64_t)st.st_size)) {
		r = 0;
		goto out;
	}
	blocks_release(&a.b);
	r = append_store_load(s, &st, &a.b, &d);
	if (r != 0) {
		r = r == -AR_ENOMEM ? r : 0;
		goto out;
	}
	loaded = 1;
	a.base = (uint64_t)st.st_size;
	req = malloc(sizeof(*req));
	body = malloc(WIRE_HDR + 2 + WIRE_PATH_MAX + 8 + 32);
	a.buf = malloc(BLOCKS_SIZE);
	if (req == NULL || body == NULL || a.buf == NULL) {
		r = -AR_ENOMEM;
		goto out;
	}
	memcpy(req->path, path, plen);
	req->path[plen] = '\0';
	req->path_len = (uint16_t)plen;
	req->size = a.base;
	blocks_root(&a.b, req->root);
	n = wire_put_append(body, WIRE_HDR + 2 + WIRE_PATH_MAX + 8 + 32, req);
	if (n < 0) {
		r = -AR_EINTERNAL;
		goto out;
	}
	r = wire_reader_init(&a.rd, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r != 0)
		goto out;
	r = client_post_buf(s->client, "/v1/append", body, (size_t)n,
	    append_body, &a);
	if (r != 0 && s->msg[0] == '\0')
		sync_fail(s, r, "%s", client_errmsg(s->client));
	if (r == 0 && (!a.ended || !wire_reader_idle(&a.rd)))
		r = append_fail(&a, -AR_EPROTO, "the answer was truncated");
	wire_reader_release(&a.rd);
	if (r != 0 || a.state == APPEND_FALLBACK) {
		/* The entry goes below: the general path rebuilds from
		 * this copy (verified bytes past base included). */
		if (r == 0) {
			log_verbose("'%s': the primary cannot append to this "
			    "version: the general path", sync_esc(path, plen));
			*out = APPEND_REFUSED;
		}
		goto out;
	}
	assert(a.state == APPEND_VERIFIED);
	*out = APPEND_DONE;
	if (fdatasync(a.fd) != 0) {
		r = append_fail(&a, -AR_EIO, strerror(errno));
		goto out;
	}
	/* The bytes are durable before the mtime says they are there: a
	 * crash cannot leave the new size and mtime over missing bytes.
	 * The fsync after makes the attributes durable too, so this change
	 * needs no syncfs of the batch (s->changed stays as it was). */
	r = sync_attrs_set_fd(s, a.fd, a.fe->mode, a.fe->uid, a.fe->gid,
	    a.fe->mtime_sec, a.fe->mtime_nsec);
	if (r == 0 && fsync(a.fd) != 0)
		r = -AR_EIO;
	if (r != 0) {
		r = append_fail(&a, r, strerror(errno));
		goto out;
	}
	if (a.b.size > a.base) {
		s->st->files_appended++;
		metrics_add(METRICS_RECV_FILES_APPEND, 1);
		metrics_add(METRICS_RECV_BYTES_APPEND, a.b.size - a.base);
		sync_itemize(s, ">f.st......", path, plen, "");
	}
	/* Last: the list is handed over to the memory of the store. */
	append_store_keep(s, a.fd, path, plen, &a.b, &d);
out:
	/* Refused before a byte was written, the entry still vouches for
	 * the copy: the changed-blocks path may use it next. */
	if (loaded && (r != 0 || (*out != APPEND_DONE &&
	    !(*out == APPEND_REFUSED && !a.wrote))))
		append_store_drop(s, &st);
	free(req);
	free(body);
	free(a.buf);
	blocks_release(&a.b);
	if (a.fd >= 0)
		close(a.fd);
	return r;
}
