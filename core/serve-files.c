/*
 * serve-files.c: the answers that carry the tree's content (PROTOCOL.md
 * "Requests"): GET /v1/manifest, POST /v1/files (whole files) and POST
 * /v1/delta (one librsync delta against the standby's signature). It
 * reads the requests' bodies, opens each file beneath the data directory,
 * and answers R instead of T for a file that changed while it was sent.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include "blocks.h"
#include "delta.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "server-int.h"
#include "util.h"
#include "walk.h"

/* Requests in one /v1/files body, and the body's size. */
#define SERVE_FILES_MAX 1024
#define SERVE_FILES_MAX_BODY (1u << 20)
/* Bytes of a /v1/delta body beyond the signature (N and frame headers). */
#define SERVE_FILES_DELTA_SLACK 65536
/* A /v1/sums answer reads at most this much per call, then gives the
 * server thread back to its other connections (it sends nothing while
 * it hashes a big file). */
#define SERVE_FILES_SUMS_SLICE (4u << 20)
/* Fill the stream's output up to about this before handing it out. */
#define SERVE_FILES_FILL (WIRE_HDR + 16384)
/* Files sent whole from this size on fill the block cache. */
#define SERVE_FILES_CACHE_MIN (16u * BLOCKS_SIZE)

static const char *
serve_files_path(const struct server_stream *s)
{
	assert(s->paths != NULL && s->cur < s->npaths);
	return s->paths + s->paths_off;
}

static int
serve_files_same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    S_ISREG(b->st_mode);
}

static void
serve_files_close(struct server_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	hash_release(&s->hash);
	delta_gen_free(s->gen);
	s->gen = NULL;
	serve_append_free(s);
}

/* Give up on the current request: R, and the standby asks again. */
static int
serve_files_retry(struct server_stream *s, uint32_t reason)
{
	const char *p = serve_files_path(s);
	char esc[LOG_ESC_MAX];

	log_verbose("retry '%s': %s", log_escape(p, strlen(p), esc,
	    sizeof(esc)), reason == WIRE_RETRY_CHANGED ? "changed while "
	    "sent" : reason == WIRE_RETRY_GONE ? "gone" : "unreadable");
	serve_files_close(s);
	s->fstate = SERVE_FILES_DONE;
	return server_stream_put(s, wire_put_retry(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, reason, p, strlen(p)));
}

/* The F frame of the current request: the file's stat at open. */
static int
serve_files_put_file(struct server_stream *s)
{
	const char *p = serve_files_path(s);

	return server_stream_put_entry(s, WIRE_FILE, WALK_FILE, &s->st0, p,
	    strlen(p), NULL, 0);
}

/* Open the current path for sending and queue its F frame. */
static int
serve_files_open(struct server_stream *s)
{
	const char *p = serve_files_path(s);
	int r;

	assert(s->fd < 0);
	/* Excluded is never served, even when asked for by name. */
	if (exclude_match(s->srv->opts.exclude, p, strlen(p), 0))
		return serve_files_retry(s, WIRE_RETRY_GONE);
	r = fs_open_beneath(s->srv->opts.rootfd, p, O_RDONLY | O_NONBLOCK, 0,
	    &s->fd);
	if (r != 0) {
		s->fd = -1;
		return serve_files_retry(s, r == -AR_EIO && errno != ENOENT &&
		    errno != ENOTDIR && errno != ELOOP ?
		    WIRE_RETRY_UNREADABLE : WIRE_RETRY_GONE);
	}
	if (fstat(s->fd, &s->st0) != 0)
		return serve_files_retry(s, WIRE_RETRY_UNREADABLE);
	if (!S_ISREG(s->st0.st_mode))
		return serve_files_retry(s, WIRE_RETRY_GONE);
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (hash_init(&s->hash) != 0)
		return -AR_ENOMEM;
	/* The block list comes with the read: a later append of this
	 * file costs its tail (serve-append.c). */
	if (s->srv->cachefd >= 0 && (uint64_t)s->st0.st_size >=
	    SERVE_FILES_CACHE_MIN && (uint64_t)s->st0.st_size <=
	    BLOCKS_MAX_FILE) {
		s->ablk = calloc(1, sizeof(*s->ablk));
		if (s->ablk != NULL && blocks_init(s->ablk) != 0) {
			free(s->ablk);
			s->ablk = NULL;
		}
	}
	r = serve_files_put_file(s);
	if (r != 0)
		return r;
	s->sent = 0;
	s->fstate = SERVE_FILES_SENDING;
	return 0;
}

/* All bytes are out: check the file did not change, queue T or R. */
static int
serve_files_finish(struct server_stream *s, uint64_t size,
    const uint8_t *hash)
{
	struct server *srv = s->srv;
	struct wire_trailer t;
	struct stat st1, st2;
	int dirfd;
	const char *base;

	assert(s->fd >= 0);
	/* Same inode still at the path, same size and mtime as at open. */
	if (fstat(s->fd, &st1) != 0 || !serve_files_same(&s->st0, &st1) ||
	    size != (uint64_t)s->st0.st_size)
		return serve_files_retry(s, WIRE_RETRY_CHANGED);
	if (fs_open_parent(srv->opts.rootfd, serve_files_path(s), &dirfd,
	    &base) != 0)
		return serve_files_retry(s, WIRE_RETRY_GONE);
	if (fstatat(dirfd, base, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !serve_files_same(&s->st0, &st2)) {
		close(dirfd);
		return serve_files_retry(s, WIRE_RETRY_CHANGED);
	}
	close(dirfd);
	t.size = size;
	memcpy(t.hash, hash, HASH_LEN);
	if (s->ablk != NULL && s->ablk->size == size &&
	    blocks_end(s->ablk) == 0)
		serve_append_cache_put(srv, serve_files_path(s), &s->st0,
		    s->ablk, 0);
	serve_files_close(s);
	assert(s->rphase < SERVER_PHASES);
	pthread_mutex_lock(&srv->lock);
	srv->stats.files[s->rphase]++;
	metrics_add(s->kind == SERVER_STREAM_FILES ?
	    METRICS_SERVED_FILES_WHOLE : METRICS_SERVED_FILES_DELTA, 1);
	if (s->rphase == SERVER_PHASE_COMPARE && srv->stats.ncompare_only <
	    SERVER_COMPARE_ONLY)
		snprintf(srv->stats.compare_only[srv->stats.ncompare_only++],
		    sizeof(srv->stats.compare_only[0]), "%s",
		    serve_files_path(s));
	pthread_mutex_unlock(&srv->lock);
	s->fstate = SERVE_FILES_DONE;
	return server_stream_put(s, wire_put_trailer(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, &t));
}

/* How far ahead of what it sends a whole file is asked of the disk. */
#define SERVE_FILES_AHEAD (UINT64_C(8) << 20)
/*
 * WIRE_V_FIDELITY: a hole at s->sent (SEEK_DATA says where data starts
 * again) goes as an O frame, hashed as the zeros it reads as; *data_end
 * is where the data at s->sent ends (SEEK_HOLE). 1 when an O frame was
 * queued, 0 when data comes first, or a retry's error.
 */
static int
serve_files_hole(struct server_stream *s, uint64_t *data_end)
{
	static const uint8_t zeros[65536];
	uint64_t size = (uint64_t)s->st0.st_size, len, done;
	off_t off;
	size_t n;
	int r;

	*data_end = size;
	off = lseek(s->fd, (off_t)s->sent, SEEK_DATA);
	if (off < 0 && errno != ENXIO)
		return 0;	/* no hole information: all data */
	len = (off < 0 || (uint64_t)off > size ? size : (uint64_t)off) -
	    s->sent;
	if (len == 0) {
		off = lseek(s->fd, (off_t)s->sent, SEEK_HOLE);
		if (off > 0 && (uint64_t)off > s->sent &&
		    (uint64_t)off < size)
			*data_end = (uint64_t)off;
		return 0;
	}
	if (len > WIRE_HOLE_MAX)
		len = WIRE_HOLE_MAX;
	r = server_stream_put(s, wire_put_hole(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, len));
	if (r != 0)
		return r;
	for (done = 0; done < len; done += n) {
		n = len - done < sizeof(zeros) ? (size_t)(len - done) :
		    sizeof(zeros);
		hash_update(&s->hash, zeros, n);
		/* The block cache hashes the bytes as read, holes too. */
		if (s->ablk != NULL && blocks_update(s->ablk, zeros, n) != 0)
			serve_append_free(s);
	}
	s->sent += len;
	return 1;
}

/*
 * One run of len bytes read at s->sent, at p (p >= out + out_len +
 * WIRE_HDR): hashed as read, added to the block list, then queued at
 * out + out_len as a D frame (moved down behind its header) or, for
 * zeros, as an O frame (written over them, once hashed).
 */
static int
serve_files_put_run(struct server_stream *s, const uint8_t *p, size_t len,
    int zero)
{
	uint8_t *at = s->out + s->out_len;

	/* Behind a data run an O frame may start right at its zeros. */
	assert(p >= at + (zero ? 0 : WIRE_HDR) && len <= WIRE_DATA_CHUNK);
	hash_update(&s->hash, p, len);
	if (s->ablk != NULL && blocks_update(s->ablk, p, len) != 0)
		serve_append_free(s);	/* no cache entry this time */
	s->sent += len;
	if (zero)
		return server_stream_put(s, wire_put_hole(at,
		    sizeof(s->out) - s->out_len, len));
	if (p != at + WIRE_HDR)
		memmove(at + WIRE_HDR, p, len);
	wire_put_data_hdr(at, (uint32_t)len);
	s->out_len += WIRE_HDR + len;
	return 0;
}

/*
 * WIRE_V_FIDELITY: the n bytes read at s->sent (at out + out_len +
 * WIRE_HDR) go as D frames for their data and an O frame for each run of
 * whole aligned blocks of zeros, as rsync -S writes them. So a hole
 * stays a hole where the file system does not show it (NFSv3, sshfs,
 * ramfs: SEEK_DATA calls it all data), a file written with zeros (a
 * preallocated image or database) arrives sparse, and the zeros do not
 * travel. The frames are packed in place: an O frame (13 bytes) takes
 * the place of at least a block, so each data run only moves down, and
 * at most n bytes are moved in all.
 */
static int
serve_files_put_runs(struct server_stream *s, size_t n)
{
	const uint8_t *buf = s->out + s->out_len + WIRE_HDR;
	uint64_t off = s->sent;
	size_t pos = 0, start, blk;
	int zero, r;

	while (pos < n) {
		start = pos;
		zero = fs_zero_block(buf, n, pos, off, &blk);
		for (pos += blk; pos < n && fs_zero_block(buf, n, pos, off,
		    &blk) == zero; pos += blk)
			;
		r = serve_files_put_run(s, buf + start, pos - start, zero);
		if (r != 0)
			return r;
	}
	return 0;
}

/* Queue the next D frame of a whole file, or its end. */
static int
serve_files_data(struct server_stream *s)
{
	uint8_t hash[HASH_LEN];
	uint64_t left, data_end;
	size_t want = WIRE_DATA_CHUNK;
	ssize_t n;
	int r;

	assert(s->fd >= 0 && s->sent <= (uint64_t)s->st0.st_size);
	assert(sizeof(s->out) - s->out_len >= WIRE_HDR + WIRE_DATA_CHUNK);
	left = (uint64_t)s->st0.st_size - s->sent;
	if (left < want)
		want = (size_t)left;
	if (want == 0) {
		/* Grown since open? Then it changed. */
		uint8_t probe;

		n = pread(s->fd, &probe, 1, s->sent);
		if (n != 0)
			return serve_files_retry(s, WIRE_RETRY_CHANGED);
		hash_final(&s->hash, hash);
		return serve_files_finish(s, s->sent, hash);
	}
	if (s->version >= WIRE_V_FIDELITY) {
		r = serve_files_hole(s, &data_end);
		if (r != 0)
			return r < 0 ? r : 0;
		if (data_end - s->sent < want)
			want = (size_t)(data_end - s->sent);
	}
	n = fs_pread_full(s->fd, s->out + s->out_len + WIRE_HDR, want,
	    s->sent);
	if (n < 0)
		return serve_files_retry(s, WIRE_RETRY_UNREADABLE);
	if (n == 0)	/* shrunk since open */
		return serve_files_retry(s, WIRE_RETRY_CHANGED);
	/* Keep the disk busy ahead of us: readahead alone waits for each
	 * chunk's pread on a cold file. */
	if (s->sent + (uint64_t)n + SERVE_FILES_AHEAD < (uint64_t)s->st0.st_size)
		(void)posix_fadvise(s->fd, (off_t)(s->sent + (uint64_t)n +
		    SERVE_FILES_AHEAD), (off_t)n, POSIX_FADV_WILLNEED);
	if (s->sums) {
		hash_update(&s->hash, s->out + s->out_len + WIRE_HDR,
		    (size_t)n);
		s->sent += (uint64_t)n;
		s->slice += (uint64_t)n;
		return 0;	/* read and hashed, not sent */
	}
	if (s->version >= WIRE_V_FIDELITY)
		return serve_files_put_runs(s, (size_t)n);
	return serve_files_put_run(s, s->out + s->out_len + WIRE_HDR,
	    (size_t)n, 0);
}

/* Queue the next D frame of a delta, or its end. */
static int
serve_files_delta_data(struct server_stream *s)
{
	uint8_t hash[HASH_LEN];
	uint64_t size;
	ssize_t n;

	assert(s->gen != NULL);
	assert(sizeof(s->out) - s->out_len >= WIRE_HDR + WIRE_DATA_CHUNK);
	n = delta_gen_read(s->gen, s->out + s->out_len + WIRE_HDR,
	    WIRE_DATA_CHUNK);
	if (n < 0)
		return serve_files_retry(s, WIRE_RETRY_UNREADABLE);
	if (n > 0) {
		wire_put_data_hdr(s->out + s->out_len, (uint32_t)n);
		s->out_len += WIRE_HDR + (size_t)n;
		return 0;
	}
	delta_gen_result(s->gen, &size, hash);
	return serve_files_finish(s, size, hash);
}

static void
serve_files_advance(struct server_stream *s)
{
	s->paths_off += strlen(serve_files_path(s)) + 1;
	s->cur++;
	s->answered++;
	s->fstate = SERVE_FILES_NEXT;
}

int
serve_files_produce(struct server_stream *s)
{
	int r = 0;

	assert(s->kind == SERVER_STREAM_FILES ||
	    s->kind == SERVER_STREAM_DELTA);
	s->slice = 0;
	while (r == 0 && !s->finished && s->out_len < SERVE_FILES_FILL &&
	    s->slice < SERVE_FILES_SUMS_SLICE) {
		switch (s->fstate) {
		case SERVE_FILES_NEXT:
			if (s->cur == s->npaths) {
				r = server_stream_put(s, wire_put_end(s->out +
				    s->out_len, sizeof(s->out) - s->out_len,
				    s->answered));
				s->finished = 1;
				break;
			}
			if (s->kind == SERVER_STREAM_FILES) {
				r = serve_files_open(s);
				break;
			}
			if (s->gen == NULL) {
				/* The signature was refused or the file
				 * could not be opened at upload's end. */
				r = serve_files_retry(s, WIRE_RETRY_GONE);
				break;
			}
			s->fstate = SERVE_FILES_SENDING;
			r = serve_files_put_file(s);
			break;
		case SERVE_FILES_SENDING:
			r = s->kind == SERVER_STREAM_FILES ?
			    serve_files_data(s) : serve_files_delta_data(s);
			break;
		case SERVE_FILES_DONE:
			serve_files_advance(s);
			break;
		}
	}
	return r;
}

/* ---------------------------------------------------------------- */
/* Requests */

enum MHD_Result
serve_files_manifest(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq)
{
	const char *path;
	int r;

	path = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "path");
	if (path == NULL)
		path = "";
	if (strlen(path) > WIRE_PATH_MAX || !wire_path_valid(path,
	    strlen(path)))
		return server_reply_text(c, MHD_HTTP_BAD_REQUEST,
		    "invalid path");
	rq->stream = server_stream_new(srv, SERVER_STREAM_MANIFEST);
	if (rq->stream == NULL)
		return MHD_NO;
	r = manifest_new_at(srv->opts.rootfd, path, strlen(path),
	    &rq->stream->manifest);
	if (r == 0) {
		manifest_set_exclude(rq->stream->manifest, srv->opts.exclude);
		manifest_set_hidden(rq->stream->manifest,
		    srv->opts.xattrs_hidden);
		r = manifest_set_version(rq->stream->manifest, rq->version);
	}
	if (r == -AR_EPROTO || (r == -AR_EIO && (errno == ENOENT ||
	    errno == ENOTDIR)))
		return server_reply_text(c, MHD_HTTP_NOT_FOUND,
		    "no such directory");
	if (r != 0)
		return server_reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot read the tree");
	return server_reply_stream(c, rq);
}

int
serve_files_begin(struct server *srv, struct server_request *rq)
{
	rq->stream = server_stream_new(srv, SERVER_STREAM_FILES);
	if (rq->stream == NULL)
		return -AR_ENOMEM;
	rq->stream->version = rq->version;
	rq->body_max = SERVE_FILES_MAX_BODY;
	return 0;
}

int
serve_files_sums_begin(struct server *srv, struct server_request *rq)
{
	int r;

	r = serve_files_begin(srv, rq);
	if (r == 0)
		rq->stream->sums = 1;
	return r;
}

/* A frame of a /v1/files body: collect the requested paths. */
int
serve_files_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct server_request *rq = arg;
	struct server_stream *s = rq->stream;
	struct wire_req req;
	size_t need;

	if (type != WIRE_REQ || wire_get_req(p, len, &req) != 0) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed "
		    "request frame");
		return -AR_EPROTO;
	}
	if (s->npaths == SERVE_FILES_MAX) {
		server_request_fail(rq, MHD_HTTP_CONTENT_TOO_LARGE, "more "
		    "than %d files in one request", SERVE_FILES_MAX);
		return -AR_ENOMEM;
	}
	need = rq->paths_len + req.path_len + 1;
	if (util_grow(&s->paths, &rq->paths_cap, need, 1, 4096) != 0) {
		server_request_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory");
		return -AR_ENOMEM;
	}
	memcpy(s->paths + rq->paths_len, req.path, req.path_len + 1u);
	rq->paths_len = need;
	s->npaths++;
	return 0;
}

void
serve_files_end(struct server *srv, struct server_request *rq)
{
	(void)srv;
	if (rq->stream->npaths == 0)
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "no file "
		    "requested");
}

int
serve_files_delta_begin(struct server *srv, struct server_request *rq)
{
	rq->stream = server_stream_new(srv, SERVER_STREAM_DELTA);
	if (rq->stream == NULL ||
	    delta_loadsig_new(srv->opts.cfg->max_signature_size,
	    &rq->loadsig) != 0)
		return -AR_ENOMEM;
	rq->body_max = srv->opts.cfg->max_signature_size +
	    SERVE_FILES_DELTA_SLACK;
	return 0;
}

/*
 * The N frame arrived: take one of the max_deltas slots and open the
 * file now, so that the signature is bounded by the file's size as it
 * arrives (delta_loadsig_bound). Each slot holds a signature in memory
 * until its delta is sent. Without a slot, or without the file, the
 * signature is read and dropped and the answer is R: the standby then
 * fetches the file whole.
 */
static void
serve_files_delta_open(struct server_request *rq)
{
	struct server_stream *s = rq->stream;
	struct server *srv = s->srv;
	char esc[LOG_ESC_MAX];
	unsigned busy;
	uint64_t held;
	int r;

	pthread_mutex_lock(&srv->lock);
	busy = srv->ndeltas;
	held = srv->sig_bytes;
	if (busy < srv->opts.cfg->max_deltas) {
		srv->ndeltas++;
		s->delta_slot = 1;
	}
	pthread_mutex_unlock(&srv->lock);
	if (!s->delta_slot) {
		log_verbose("%s: delta of '%s' answered with a retry: %u "
		    "deltas (max_deltas) hold %llu signature bytes", rq->peer,
		    log_escape(s->paths, strlen(s->paths), esc, sizeof(esc)),
		    busy, (unsigned long long)held);
		rq->sig_skip = 1;
		return;
	}
	if (exclude_match(srv->opts.exclude, s->paths, strlen(s->paths), 0)) {
		rq->sig_skip = 1;
		return;
	}
	r = fs_open_beneath(srv->opts.rootfd, s->paths, O_RDONLY | O_NONBLOCK,
	    0, &s->fd);
	if (r != 0 || fstat(s->fd, &s->st0) != 0 ||
	    !S_ISREG(s->st0.st_mode)) {
		/* Answered with R: the standby retries or re-lists. */
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		rq->sig_skip = 1;
		return;
	}
	delta_loadsig_bound(rq->loadsig, (uint64_t)s->st0.st_size);
}

/*
 * The signature was refused: one with more blocks than the file needs
 * (an honest standby's basis may be much bigger than what the file has
 * become) is dropped and answered with R, so the file is sent whole;
 * anything else fails the request with the reason.
 */
static int
serve_files_delta_refused(struct server_request *rq, int r)
{
	enum delta_refusal why = delta_loadsig_refusal(rq->loadsig);
	char msg[sizeof(rq->why)];

	delta_loadsig_why(rq->loadsig, msg, sizeof(msg));
	if (why == DELTA_REFUSAL_TOO_MANY) {
		log_verbose("%s: %s: answered with a retry", rq->peer, msg);
		delta_loadsig_free(rq->loadsig);
		rq->loadsig = NULL;
		rq->sig_skip = 1;
		return 0;
	}
	server_request_fail(rq, why == DELTA_REFUSAL_TOO_LARGE ?
	    MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s", msg);
	return r;
}

/* A frame of a /v1/delta body: the N frame, then signature data. */
int
serve_files_delta_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len)
{
	struct server_request *rq = arg;
	struct server_stream *s = rq->stream;
	struct wire_req req;
	int r;

	if (!rq->got_req) {
		if (type != WIRE_REQ || wire_get_req(p, len, &req) != 0) {
			server_request_fail(rq, MHD_HTTP_BAD_REQUEST,
			    "malformed delta request");
			return -AR_EPROTO;
		}
		assert(s->paths == NULL);
		s->paths = malloc(req.path_len + 1u);
		if (s->paths == NULL)
			return -AR_ENOMEM;
		memcpy(s->paths, req.path, req.path_len + 1u);
		s->npaths = 1;
		rq->got_req = 1;
		serve_files_delta_open(rq);
		return 0;
	}
	if (type != WIRE_DATA) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "unexpected "
		    "frame in a signature");
		return -AR_EPROTO;
	}
	if (rq->sig_skip)
		return 0;
	r = delta_loadsig_feed(rq->loadsig, p, len);
	if (r != 0)
		return serve_files_delta_refused(rq, r);
	return 0;
}

/* The whole delta request arrived: load the signature, open the file. */
void
serve_files_delta_end(struct server *srv, struct server_request *rq)
{
	struct server_stream *s = rq->stream;
	rs_signature_t *sig = NULL;
	int r;

	if (!rq->got_req) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "empty delta "
		    "request");
		return;
	}
	if (rq->sig_skip)
		return;		/* s->gen stays NULL: answered with R */
	r = delta_loadsig_finish(rq->loadsig, &sig);
	if (r != 0) {
		serve_files_delta_refused(rq, r);
		return;
	}
	assert(s->fd >= 0 && s->delta_slot);
	s->sig_bytes = delta_loadsig_bytes(rq->loadsig);
	pthread_mutex_lock(&srv->lock);
	srv->sig_bytes += s->sig_bytes;
	pthread_mutex_unlock(&srv->lock);
	r = delta_gen_new(sig, s->fd, &s->gen);
	if (r != 0) {
		close(s->fd);
		s->fd = -1;
		s->gen = NULL;
		return;
	}
	/* The new version's block list comes with the read, as for a
	 * whole file: its next change in place costs its changed blocks
	 * (serve-append.c). */
	if (srv->cachefd >= 0 && rq->version >= WIRE_V_BLOCKS &&
	    (uint64_t)s->st0.st_size >= SERVE_FILES_CACHE_MIN &&
	    (uint64_t)s->st0.st_size <= BLOCKS_MAX_FILE) {
		s->ablk = calloc(1, sizeof(*s->ablk));
		if (s->ablk != NULL && blocks_init(s->ablk) != 0) {
			free(s->ablk);
			s->ablk = NULL;
		}
		if (s->ablk != NULL)
			delta_gen_set_blocks(s->gen, s->ablk);
	}
}

/* The body was good: stream the answer (files or delta). */
enum MHD_Result
serve_files_reply(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq)
{
	(void)srv;
	delta_loadsig_free(rq->loadsig);
	rq->loadsig = NULL;
	return server_reply_stream(c, rq);
}
