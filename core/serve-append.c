/*
 * serve-append.c: POST /v1/append (PROTOCOL.md "The append path",
 * WIRE_V_APPEND): the standby holds the first S bytes of a file, of root R;
 * when the file here still begins with them, only the bytes past S are
 * sent, each block's hash before its bytes, and the new root in T.
 *
 * The root at S comes from the block cache (spool_dir/blocks, SPOOL.md)
 * when it holds this inode, so an append costs its own bytes and the
 * last partial block; without a usable entry the prefix is hashed from
 * the file (one read). Any doubt is answered R (reason basis), and the
 * standby takes the general path at once.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocks.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "server-int.h"
#include "walk.h"

/* Fill the output up to about this before handing it out. */
#define SERVE_APPEND_FILL (WIRE_HDR + 16384)
/* A Q frame and its header, with room to spare. */
#define SERVE_APPEND_MAX_BODY (WIRE_HDR + 2 + WIRE_PATH_MAX + 8 + 32 + 64)

void
serve_append_free(struct server_stream *s)
{
	if (s->ablk != NULL) {
		blocks_release(s->ablk);
		free(s->ablk);
		s->ablk = NULL;
	}
	if (s->aold != NULL) {
		blocks_release(s->aold);
		free(s->aold);
		s->aold = NULL;
	}
	free(s->abuf);
	s->abuf = NULL;
}

/* The suffix of the entry of the version sent before the latest, kept
 * by the changed-blocks path for a standby still at it (SPOOL.md). */
#define SERVE_APPEND_PREV ".p"

/* The cache entry's fields for the file of stat st, listed in b. */
static void
serve_append_meta(struct blocks_meta *m, const char *path,
    const struct stat *st, const struct blocks *b, uint32_t flags)
{
	size_t plen = strlen(path);

	memset(m, 0, offsetof(struct blocks_meta, path));
	m->path[0] = '\0';
	m->dev = (uint64_t)st->st_dev;
	m->ino = (uint64_t)st->st_ino;
	m->size = b->size;
	m->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	m->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	m->flags = flags;
	if (plen < sizeof(m->path)) {
		memcpy(m->path, path, plen + 1);
		m->path_len = (uint16_t)plen;
	}
}

void
serve_append_cache_put(struct server *srv, const char *path,
    const struct stat *st, const struct blocks *b, uint32_t flags)
{
	struct blocks_meta *m;
	char name[64];

	if (srv->cachefd < 0 || b->size < BLOCKS_SIZE)
		return;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	serve_append_meta(m, path, st, b, flags);
	blocks_store_name(st, name, sizeof(name));
	/* The list kept in memory is no longer the file's. */
	blocks_mem_drop(srv->blocksmem, name);
	/* A cache: a torn entry fails its checksum, no fsync needed. */
	if (blocks_store_save(srv->cachefd, name, m, b, 0) != 0)
		log_verbose("block cache: cannot write '%s': %s", name,
		    strerror(errno));
	free(m);
}

/*
 * The list of the append path's stream as the cache entry, written in
 * place where s->adisk says the file still holds the list it started
 * from (only the new hashes and the header), and kept in memory for
 * the next append: s->ablk is left empty.
 */
static void
serve_append_cache_keep(struct server *srv, struct server_stream *s,
    uint32_t flags)
{
	struct blocks_meta *m;
	char name[64];

	if (srv->cachefd < 0 || s->ablk->size < BLOCKS_SIZE)
		return;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	serve_append_meta(m, s->paths, &s->st0, s->ablk, flags);
	blocks_store_name(&s->st0, name, sizeof(name));
	if (blocks_store_write(srv->cachefd, name, m, s->ablk,
	    &s->adisk) != 0)
		log_verbose("block cache: cannot write '%s': %s", name,
		    strerror(errno));
	else
		blocks_mem_put(srv->blocksmem, name, m, s->ablk, &s->adisk);
	free(m);
}

int
serve_append_begin(struct server *srv, struct server_request *rq)
{
	rq->stream = server_stream_new(srv, SERVER_STREAM_APPEND);
	if (rq->stream == NULL)
		return -AR_ENOMEM;
	rq->body_max = SERVE_APPEND_MAX_BODY;
	/* Answered at the end of the body, with the reason. */
	if (rq->version < WIRE_V_APPEND)
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "/v1/append "
		    "needs protocol version %d, this request is version %u",
		    WIRE_V_APPEND, rq->version);
	return 0;
}

int
serve_append_blocks_begin(struct server *srv, struct server_request *rq)
{
	int r;

	r = serve_append_begin(srv, rq);
	if (r == 0)
		rq->stream->ablocks = 1;
	return r;
}

/* The body: one Q frame. */
int
serve_append_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct server_request *rq = arg;
	struct server_stream *s = rq->stream;
	struct wire_append a;

	if (rq->got_req || type != WIRE_APPEND ||
	    wire_get_append(p, len, &a) != 0) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed "
		    "append request");
		return -AR_EPROTO;
	}
	assert(s->paths == NULL);
	s->paths = malloc(a.path_len + 1u);
	if (s->paths == NULL)
		return -AR_ENOMEM;
	memcpy(s->paths, a.path, a.path_len + 1u);
	s->npaths = 1;
	s->abase = a.size;
	memcpy(s->aroot, a.root, sizeof(s->aroot));
	rq->got_req = 1;
	return 0;
}

/*
 * The list of the file's first s->abase bytes in s->ablk (from the
 * cache where it holds this inode, else from the file), checked against
 * the standby's root; on success s->ablk is open at s->anext. Sets
 * s->aretry for every answer but the tail.
 */
static int
serve_append_prefix(struct server *srv, struct server_stream *s)
{
	struct blocks_meta *m;
	struct blocks *b = s->ablk;
	uint8_t root[BLOCKS_ROOT_LEN];
	uint64_t size = (uint64_t)s->st0.st_size, from = 0;
	char name[64];
	int cached = 0, r;

	m = malloc(sizeof(*m));
	if (m == NULL)
		return -AR_ENOMEM;
	blocks_store_name(&s->st0, name, sizeof(name));
	if (srv->cachefd >= 0) {
		blocks_release(b);
		r = blocks_mem_take(srv->blocksmem, srv->cachefd, name, m, b,
		    &s->adisk);
		cached = r == 0 && m->dev == (uint64_t)s->st0.st_dev &&
		    m->ino == (uint64_t)s->st0.st_ino;
		/* Shrunk: not the version hashed. */
		if (cached && m->size > size) {
			cached = 0;
			(void)unlinkat(srv->cachefd, name, 0);
		}
		if (r == -AR_EPROTO) {
			log_warn("block cache: '%s' is corrupt: ignored",
			    name);
			(void)unlinkat(srv->cachefd, name, 0);
		}
	}
	/* The cache trusts that the file was only appended to: check its
	 * first block, a rewritten header or a truncation followed by new
	 * writes shows there (the re-verification finds the rest). */
	if (cached && b->n > 0 && m->size >= BLOCKS_SIZE &&
	    s->abase >= 2 * BLOCKS_SIZE) {
		uint8_t h[BLOCKS_HASH_LEN];

		if (fs_pread_full(s->fd, s->abuf, BLOCKS_SIZE, 0) !=
		    (ssize_t)BLOCKS_SIZE)
			cached = 0;
		else {
			blocks_hash(s->abuf, BLOCKS_SIZE, h);
			cached = memcmp(h, b->h, BLOCKS_HASH_LEN) == 0;
		}
		/* Not used here; kept: it may still be the list of a
		 * standby's version, which the changed-blocks path can use
		 * (a use for an append checks it again, and fails again). */
		if (!cached)
			log_verbose("block cache: '%s' no longer matches its "
			    "file: not used", name);
	}
	if (cached) {
		uint64_t at = m->size < s->abase ? m->size : s->abase;

		/* The block of the standby's last byte is read again,
		 * so that it is always checked against the file. */
		r = blocks_reopen(b, at > 0 ? at - 1 : 0, &from);
		s->aflags = m->flags | BLOCKS_F_APPENDED;
	} else {
		blocks_release(b);
		r = blocks_init(b);
		s->aflags = 0;	/* the prefix is read whole below */
	}
	free(m);
	if (r == 0)
		r = blocks_update_fd(b, s->fd, from, s->abase, s->abuf,
		    BLOCKS_SIZE);
	if (r == -AR_ECHANGED || r == -AR_EIO) {
		s->aretry = r == -AR_EIO ? WIRE_RETRY_UNREADABLE :
		    WIRE_RETRY_CHANGED;
		return 0;
	}
	if (r == 0)
		r = blocks_end(b);
	if (r != 0)
		return r;
	blocks_root(b, root);
	if (memcmp(root, s->aroot, sizeof(root)) != 0 && cached) {
		/* The cache may be what is wrong (a rewrite it missed):
		 * the file decides (and, when it proves the prefix, the
		 * entry is written again below). */
		blocks_release(b);
		r = blocks_init(b);
		if (r == 0)
			r = blocks_update_fd(b, s->fd, 0, s->abase, s->abuf,
			    BLOCKS_SIZE);
		if (r == -AR_ECHANGED || r == -AR_EIO) {
			s->aretry = WIRE_RETRY_CHANGED;
			return 0;
		}
		if (r == 0)
			r = blocks_end(b);
		if (r != 0)
			return r;
		cached = 0;
		s->aflags = 0;
		blocks_root(b, root);
	}
	if (memcmp(root, s->aroot, sizeof(root)) != 0) {
		s->aretry = WIRE_RETRY_BASIS;
		return 0;
	}
	if (!cached && srv->cachefd >= 0 && b->size >= BLOCKS_SIZE) {
		struct blocks_meta *m2 = malloc(sizeof(*m2));

		/* The entry the standby's version proved, in place of the
		 * one there was: the tail will extend it. */
		if (m2 == NULL)
			return -AR_ENOMEM;
		serve_append_meta(m2, s->paths, &s->st0, b, 0);
		if (blocks_store_write(srv->cachefd, name, m2, b,
		    &s->adisk) != 0)
			log_verbose("block cache: cannot write '%s': %s", name,
			    strerror(errno));
		free(m2);
	}
	return blocks_reopen(b, s->abase, &s->anext);
}

/* ---------------------------------------------------------------- */
/* The changed-blocks path (POST /v1/blocks, WIRE_V_BLOCKS) */

/* The file is read this much at a time, each block hashed once. */
#define SERVE_BLOCKS_READ (16u * BLOCKS_SIZE)
/* Past this many blocks sent, and more than 1/PART of the standby's
 * blocks, the answer ends with R 4: the delta path does better. */
#define SERVE_BLOCKS_SHIFT_MIN 16u
#define SERVE_BLOCKS_SHIFT_PART 16u

/*
 * The standby names its version by root; the cache entry of this inode
 * must hold that very list, else R 4 (the delta path). On success
 * s->aold is that list and s->ablk the new version's, empty.
 */
static int
serve_append_blocks_open(struct server *srv, struct server_stream *s)
{
	struct blocks_meta *m;
	uint8_t root[BLOCKS_ROOT_LEN];
	char name[64], esc[256];
	const char *why = NULL;
	int prev, r;

	s->aretry = WIRE_RETRY_BASIS;
	if ((uint64_t)s->st0.st_size > BLOCKS_MAX_FILE || srv->cachefd < 0 ||
	    s->abase > BLOCKS_MAX_FILE)
		return 0;
	m = malloc(sizeof(*m));
	s->aold = calloc(1, sizeof(*s->aold));
	s->ablk = calloc(1, sizeof(*s->ablk));
	s->abuf = malloc(SERVE_BLOCKS_READ);
	if (m == NULL || s->aold == NULL || s->ablk == NULL ||
	    s->abuf == NULL || blocks_init(s->ablk) != 0) {
		free(m);
		return -AR_ENOMEM;
	}
	blocks_store_name(&s->st0, name, sizeof(name));
	/* The latest version sent, then the one before it. */
	for (prev = 0; prev < 2; prev++) {
		if (prev)
			(void)strncat(name, SERVE_APPEND_PREV, sizeof(name) -
			    strlen(name) - 1);
		blocks_release(s->aold);
		r = blocks_store_load(srv->cachefd, name, m, s->aold);
		if (r == -AR_ENOMEM) {
			free(m);
			return r;
		}
		if (r == -AR_EPROTO) {
			log_warn("block cache: '%s' is corrupt: ignored", name);
			(void)unlinkat(srv->cachefd, name, 0);
			why = "its cache entry is corrupt";
			continue;
		}
		if (r != 0) {
			why = why != NULL ? why : "no cache entry";
			continue;
		}
		if (m->dev != (uint64_t)s->st0.st_dev ||
		    m->ino != (uint64_t)s->st0.st_ino) {
			why = "the cache entry is of another file";
			continue;
		}
		blocks_root(s->aold, root);
		if (m->size != s->abase ||
		    memcmp(root, s->aroot, sizeof(root)) != 0) {
			why = "the cache holds another version";
			continue;
		}
		why = NULL;
		break;
	}
	free(m);
	if (why != NULL) {
		log_verbose("'%s': changed blocks: %s: the delta path",
		    log_escape(s->paths, strlen(s->paths), esc, sizeof(esc)),
		    why);
		return 0;
	}
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->anext = 0;
	s->abuf_off = 0;
	s->abuf_len = 0;
	s->asent = 0;
	s->aflags = 0;		/* the whole file is hashed below */
	s->aretry = 0;
	return 0;
}

/* Length of block i of a file of size bytes. */
static uint64_t
serve_append_blen(uint64_t size, uint64_t i)
{
	uint64_t off = i * BLOCKS_SIZE;

	return size - off < BLOCKS_SIZE ? size - off : BLOCKS_SIZE;
}

/* 1 if the cache entry name holds the version of root root. */
static int
serve_append_cache_holds(struct server *srv, const char *name,
    const uint8_t root[BLOCKS_ROOT_LEN])
{
	struct blocks_meta *m = malloc(sizeof(*m));
	uint8_t r2[BLOCKS_ROOT_LEN];
	struct blocks b;
	int holds = 0;

	if (m == NULL)
		return 0;
	if (blocks_store_load(srv->cachefd, name, m, &b) == 0) {
		blocks_root(&b, r2);
		holds = memcmp(r2, root, BLOCKS_ROOT_LEN) == 0;
	}
	blocks_release(&b);
	free(m);
	return holds;
}

/* All blocks read: T with the new root, unless the file changed while
 * read (then R 1, and the standby keeps its version). */
static int
serve_append_blocks_finish(struct server_stream *s)
{
	struct server *srv = s->srv;
	struct wire_trailer t;
	struct stat st1, st2;
	const char *base;
	char esc[256], name[64], prev[64 + sizeof(SERVE_APPEND_PREV)];
	int dirfd, same, r, n;

	r = blocks_end(s->ablk);
	if (r != 0)
		return r;
	same = fstat(s->fd, &st1) == 0 && st1.st_size == s->st0.st_size &&
	    st1.st_mtim.tv_sec == s->st0.st_mtim.tv_sec &&
	    st1.st_mtim.tv_nsec == s->st0.st_mtim.tv_nsec;
	if (same && fs_open_parent(srv->opts.rootfd, s->paths, &dirfd,
	    &base) == 0) {
		same = fstatat(dirfd, base, &st2, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st2.st_ino == s->st0.st_ino && st2.st_dev == s->st0.st_dev;
		close(dirfd);
	} else
		same = 0;
	s->fstate = SERVE_FILES_DONE;
	if (!same)
		return server_stream_put(s, wire_put_retry(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, WIRE_RETRY_CHANGED, s->paths,
		    strlen(s->paths)));
	t.size = s->ablk->size;
	blocks_root(s->ablk, t.hash);
	/* The latest version sent before stays, as the one before: another
	 * standby may hold it, or this one may die before it renames the
	 * new version in. */
	blocks_store_name(&s->st0, name, sizeof(name));
	n = snprintf(prev, sizeof(prev), "%s%s", name, SERVE_APPEND_PREV);
	if (n > 0 && (size_t)n < sizeof(prev) &&
	    !serve_append_cache_holds(srv, name, t.hash))
		(void)renameat(srv->cachefd, name, srv->cachefd, prev);
	serve_append_cache_put(srv, s->paths, &s->st0, s->ablk, 0);
	log_verbose("'%s': %llu of %llu blocks sent",
	    log_escape(s->paths, strlen(s->paths), esc, sizeof(esc)),
	    (unsigned long long)s->asent, (unsigned long long)s->ablk->n);
	pthread_mutex_lock(&srv->lock);
	srv->stats.files[s->rphase]++;
	pthread_mutex_unlock(&srv->lock);
	metrics_add(METRICS_SERVED_FILES_BLOCKS, 1);
	return server_stream_put(s, wire_put_trailer(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, &t));
}

/*
 * The next block that differs from the standby's version: read and
 * hash the file once, in order, until one differs (B and D queued) or
 * the end (T).
 */
static int
serve_append_blocks_next(struct server_stream *s)
{
	uint64_t size = (uint64_t)s->st0.st_size, i, blen, olen;
	struct wire_block wb;
	const uint8_t *p;
	size_t want;
	ssize_t n;
	int r;

	while (s->anext < size) {
		guard_progress();
		if (s->anext >= s->abuf_off + s->abuf_len) {
			want = size - s->anext < SERVE_BLOCKS_READ ?
			    (size_t)(size - s->anext) : SERVE_BLOCKS_READ;
			n = fs_pread_full(s->fd, s->abuf, want, s->anext);
			if (n < 0 || (size_t)n != want) {
				s->fstate = SERVE_FILES_DONE;
				return server_stream_put(s, wire_put_retry(
				    s->out + s->out_len, sizeof(s->out) -
				    s->out_len, n < 0 ? WIRE_RETRY_UNREADABLE :
				    WIRE_RETRY_CHANGED, s->paths,
				    strlen(s->paths)));
			}
			s->abuf_off = s->anext;
			s->abuf_len = want;
		}
		i = s->anext / BLOCKS_SIZE;
		blen = serve_append_blen(size, i);
		p = s->abuf + (s->anext - s->abuf_off);
		blocks_hash(p, (size_t)blen, wb.hash);
		r = blocks_add_hash(s->ablk, wb.hash, (size_t)blen);
		if (r != 0)
			return r;
		s->anext += blen;
		olen = i < s->aold->n ? serve_append_blen(s->aold->size, i) : 0;
		if (olen == blen && memcmp(s->aold->h + i * BLOCKS_HASH_LEN,
		    wb.hash, BLOCKS_HASH_LEN) == 0)
			continue;	/* the standby holds it */
		/* Data inserted or shifted changes every block after it: a
		 * delta finds what moved, these blocks do not. */
		if (s->asent >= SERVE_BLOCKS_SHIFT_MIN &&
		    (s->asent + 1) * SERVE_BLOCKS_SHIFT_PART > s->aold->n) {
			char esc[256];

			log_verbose("'%s': changed blocks: more than 1/%u of "
			    "the blocks differ: the delta path", log_escape(
			    s->paths, strlen(s->paths), esc, sizeof(esc)),
			    SERVE_BLOCKS_SHIFT_PART);
			s->fstate = SERVE_FILES_DONE;
			return server_stream_put(s, wire_put_retry(s->out +
			    s->out_len, sizeof(s->out) - s->out_len,
			    WIRE_RETRY_BASIS, s->paths, strlen(s->paths)));
		}
		wb.index = i;
		r = server_stream_put(s, wire_put_block(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, &wb));
		if (r != 0)
			return r;
		assert(sizeof(s->out) - s->out_len >= WIRE_HDR + blen);
		wire_put_data_hdr(s->out + s->out_len, (uint32_t)blen);
		memcpy(s->out + s->out_len + WIRE_HDR, p, (size_t)blen);
		s->out_len += WIRE_HDR + (size_t)blen;
		s->asent++;
		return 0;
	}
	return serve_append_blocks_finish(s);
}

/* The whole body arrived: open the file and prove the prefix. */
void
serve_append_end(struct server *srv, struct server_request *rq)
{
	struct server_stream *s = rq->stream;
	int r;

	if (!rq->got_req) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "empty append "
		    "request");
		return;
	}
	s->fstate = SERVE_FILES_NEXT;
	if (exclude_match(srv->opts.exclude, s->paths, strlen(s->paths), 0)) {
		s->aretry = WIRE_RETRY_GONE;
		return;
	}
	r = fs_open_beneath(srv->opts.rootfd, s->paths, O_RDONLY | O_NONBLOCK,
	    0, &s->fd);
	if (r != 0 || fstat(s->fd, &s->st0) != 0 ||
	    !S_ISREG(s->st0.st_mode)) {
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		s->aretry = WIRE_RETRY_GONE;
		return;
	}
	if (s->ablocks) {
		r = serve_append_blocks_open(srv, s);
		if (r != 0)
			server_request_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "cannot read the block cache: %s", ar_strerror(r));
		return;
	}
	/* Truncated, or too big for a list: the general path. */
	if ((uint64_t)s->st0.st_size < s->abase ||
	    (uint64_t)s->st0.st_size > BLOCKS_MAX_FILE) {
		s->aretry = WIRE_RETRY_BASIS;
		return;
	}
	s->ablk = calloc(1, sizeof(*s->ablk));
	s->abuf = malloc(BLOCKS_SIZE);
	if (s->ablk == NULL || s->abuf == NULL || blocks_init(s->ablk) != 0) {
		server_request_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory");
		return;
	}
	r = serve_append_prefix(srv, s);
	if (r != 0)
		server_request_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot hash the file: %s", ar_strerror(r));
}

/* The tail is out: T with the new root, unless the file was replaced or
 * shrunk meanwhile (growth is a later change, not this one's). */
static int
serve_append_finish(struct server_stream *s)
{
	struct server *srv = s->srv;
	struct wire_trailer t;
	struct stat st1;
	const char *base;
	int dirfd, same, r;

	r = blocks_end(s->ablk);
	if (r != 0)
		return r;
	if (fs_open_parent(srv->opts.rootfd, s->paths, &dirfd, &base) != 0)
		same = 0;
	else {
		same = fstatat(dirfd, base, &st1, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st1.st_ino == s->st0.st_ino && st1.st_dev == s->st0.st_dev &&
		    (uint64_t)st1.st_size >= s->ablk->size;
		close(dirfd);
	}
	s->fstate = SERVE_FILES_DONE;
	if (!same)
		return server_stream_put(s, wire_put_retry(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, WIRE_RETRY_CHANGED, s->paths,
		    strlen(s->paths)));
	t.size = s->ablk->size;
	blocks_root(s->ablk, t.hash);
	serve_append_cache_keep(srv, s, s->aflags);
	pthread_mutex_lock(&srv->lock);
	srv->stats.files[s->rphase]++;
	pthread_mutex_unlock(&srv->lock);
	metrics_add(METRICS_SERVED_FILES_APPEND, 1);
	return server_stream_put(s, wire_put_trailer(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, &t));
}

/* One block of the tail: B, then D with its bytes past the base. */
static int
serve_append_block(struct server_stream *s)
{
	struct wire_block wb;
	uint64_t size = (uint64_t)s->st0.st_size, skip;
	size_t want;
	ssize_t n;
	int r;

	assert(s->anext % BLOCKS_SIZE == 0 && s->anext < size);
	want = size - s->anext < BLOCKS_SIZE ? (size_t)(size - s->anext) :
	    BLOCKS_SIZE;
	n = fs_pread_full(s->fd, s->abuf, want, s->anext);
	if (n < 0 || (size_t)n != want) {
		s->fstate = SERVE_FILES_DONE;
		return server_stream_put(s, wire_put_retry(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, n < 0 ?
		    WIRE_RETRY_UNREADABLE : WIRE_RETRY_CHANGED, s->paths,
		    strlen(s->paths)));
	}
	r = blocks_update(s->ablk, s->abuf, want);
	if (r != 0)
		return r;
	wb.index = s->anext / BLOCKS_SIZE;
	blocks_hash(s->abuf, want, wb.hash);
	r = server_stream_put(s, wire_put_block(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, &wb));
	if (r != 0)
		return r;
	skip = s->abase > s->anext ? s->abase - s->anext : 0;
	assert(skip <= want);	/* = want: the standby holds all */
	assert(sizeof(s->out) - s->out_len >= WIRE_HDR + want);
	wire_put_data_hdr(s->out + s->out_len, (uint32_t)(want - skip));
	memcpy(s->out + s->out_len + WIRE_HDR, s->abuf + skip, want - skip);
	s->out_len += WIRE_HDR + want - skip;
	s->anext += want;
	return 0;
}

int
serve_append_produce(struct server_stream *s)
{
	int r = 0;

	assert(s->kind == SERVER_STREAM_APPEND);
	while (r == 0 && !s->finished && s->out_len < SERVE_APPEND_FILL) {
		switch (s->fstate) {
		case SERVE_FILES_NEXT:
			if (s->aretry != 0) {
				s->fstate = SERVE_FILES_DONE;
				r = server_stream_put(s, wire_put_retry(s->out +
				    s->out_len, sizeof(s->out) - s->out_len,
				    s->aretry, s->paths, strlen(s->paths)));
				break;
			}
			s->fstate = SERVE_FILES_SENDING;
			r = server_stream_put_entry(s, WIRE_FILE, WALK_FILE,
			    &s->st0, s->paths, strlen(s->paths), NULL, 0);
			break;
		case SERVE_FILES_SENDING:
			if (s->ablocks)
				r = serve_append_blocks_next(s);
			else
				r = s->anext < (uint64_t)s->st0.st_size ?
				    serve_append_block(s) :
				    serve_append_finish(s);
			break;
		case SERVE_FILES_DONE:
			r = server_stream_put(s, wire_put_end(s->out +
			    s->out_len, sizeof(s->out) - s->out_len, 1));
			s->finished = 1;
			break;
		}
	}
	return r;
}
