#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <time.h>

#include "changes.h"
#include "delta.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "gen.h"
#include "guard.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "server.h"
#include "spool.h"
#include "walk.h"

/* Requests in one /v1/files body, and the body's size. */
#define SERVER_MAX_FILES 1024
#define SERVER_MAX_FILES_BODY (1u << 20)
/* Bytes MHD asks a stream callback for at a time. */
#define SERVER_BLOCK (256u * 1024)
/* Our pending output: one data frame plus the largest metadata frame. */
#define STREAM_OUT (WIRE_HDR + WIRE_DATA_CHUNK + 32768)

/* Touched paths (and renames) in one answer to /v1/changes. */
#define SERVER_CHANGES_MAX 4096
/* Longest long-poll a standby may ask for. */
#define SERVER_WAIT_MAX_MS 60000

struct request;

struct server {
	struct MHD_Daemon *mhd;
	int listen_fd;
	struct server_opts opts;
	char generation[WIRE_GEN_LEN + 1];
	pthread_mutex_t lock;		/* released, waiters, stopping */
	uint64_t released;		/* changes standbys may see */
	struct request *waiters;	/* suspended long-polls */
	int stopping;
	int phase;			/* rescue: 0 spool, 1 compare */
	struct server_stats stats;	/* under lock */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- */
/* Streamed answers */

enum stream_kind {
	STREAM_MANIFEST,	/* GET /v1/manifest */
	STREAM_FILES,		/* POST /v1/files: whole files in order */
	STREAM_DELTA,		/* POST /v1/delta: one librsync delta */
	STREAM_CHANGES,		/* GET /v1/changes: one coalesced batch */
	STREAM_GONE,		/* GET /v1/changes: full compare needed */
	STREAM_FINAL,		/* rescue: compare everything, then C */
	STREAM_COMPLETE,	/* rescue: the standby holds it all: C */
};

/* What is being sent of the current file. */
enum file_state {
	FILE_NONE,		/* open the next one */
	FILE_SENDING,		/* F sent, D frames going out */
	FILE_DONE,		/* everything sent for this request */
};

struct stream {
	enum stream_kind kind;
	struct server *srv;
	uint8_t out[STREAM_OUT];
	size_t out_len, out_pos;
	int finished;		/* nothing more after out drains */

	struct manifest *manifest;

	/* files and delta */
	char *paths;		/* NUL-separated request paths */
	size_t npaths, cur;
	size_t paths_off;	/* offset of the current path in paths */
	enum file_state fstate;
	int fd;
	struct stat st0;	/* stat at open */
	struct hash_ctx hash;
	uint64_t sent;
	uint64_t answered;
	struct delta_gen *gen;

	int rphase;		/* rescue phase when the answer began */

	/* changes */
	struct changes *changes;
	uint64_t upto;		/* the position after this batch */
	int phase;		/* 0 renames, 1 paths, 2 end */
	size_t idx;
};

static void
stream_free(void *cls)
{
	struct stream *s = cls;

	if (s == NULL)
		return;
	manifest_free(s->manifest);
	if (s->fd >= 0)
		close(s->fd);
	hash_release(&s->hash);
	delta_gen_free(s->gen);
	changes_free(s->changes);
	free(s->paths);
	free(s);
}

static struct stream *
stream_new(struct server *srv, enum stream_kind kind)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->kind = kind;
	s->srv = srv;
	s->fd = -1;
	pthread_mutex_lock(&srv->lock);
	s->rphase = srv->phase;
	pthread_mutex_unlock(&srv->lock);
	return s;
}

static int
put(struct stream *s, int n)
{
	if (n < 0)
		return n;
	s->out_len += (size_t)n;
	return 0;
}

static const char *
cur_path(const struct stream *s)
{
	return s->paths + s->paths_off;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    S_ISREG(b->st_mode);
}

static void
file_close(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	hash_release(&s->hash);
	delta_gen_free(s->gen);
	s->gen = NULL;
}

static int
put_retry(struct stream *s, uint32_t reason)
{
	const char *p = cur_path(s);
	char esc[LOG_ESC_MAX];

	log_verbose("retry '%s': %s", log_escape(p, strlen(p), esc,
	    sizeof(esc)), reason == WIRE_RETRY_CHANGED ? "changed while "
	    "sent" : reason == WIRE_RETRY_GONE ? "gone" : "unreadable");
	file_close(s);
	s->fstate = FILE_DONE;
	return put(s, wire_put_retry(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, reason, p, strlen(p)));
}

/* Open the current path for sending and queue its F frame. */
static int
file_open(struct stream *s)
{
	struct wire_entry *e;
	const char *p = cur_path(s);
	int r;

	/* Excluded is never served, even when asked for by name. */
	if (exclude_match(s->srv->opts.exclude, p, strlen(p), 0))
		return put_retry(s, WIRE_RETRY_GONE);
	r = fs_open_beneath(s->srv->opts.rootfd, p, O_RDONLY | O_NONBLOCK, 0,
	    &s->fd);
	if (r != 0) {
		s->fd = -1;
		return put_retry(s, r == -AR_EIO && errno != ENOENT &&
		    errno != ENOTDIR && errno != ELOOP ?
		    WIRE_RETRY_UNREADABLE : WIRE_RETRY_GONE);
	}
	if (fstat(s->fd, &s->st0) != 0)
		return put_retry(s, WIRE_RETRY_UNREADABLE);
	if (!S_ISREG(s->st0.st_mode))
		return put_retry(s, WIRE_RETRY_GONE);
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (hash_init(&s->hash) != 0)
		return -AR_ENOMEM;
	e = malloc(sizeof(*e));
	if (e == NULL)
		return -AR_ENOMEM;
	manifest_entry_from_stat(e, WALK_FILE, &s->st0);
	e->name_len = (uint16_t)strlen(p);
	memcpy(e->name, p, e->name_len + 1u);
	r = put(s, wire_put_entry(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, WIRE_FILE, e));
	free(e);
	if (r != 0)
		return r;
	s->sent = 0;
	s->fstate = FILE_SENDING;
	return 0;
}

/* All bytes are out: check the file did not change, queue T or R. */
static int
file_finish(struct stream *s, uint64_t size, const uint8_t *hash)
{
	struct wire_trailer t;
	struct stat st1, st2;
	int dirfd;
	const char *base;

	/* Same inode still at the path, same size and mtime as at open. */
	if (fstat(s->fd, &st1) != 0 || !same_file(&s->st0, &st1) ||
	    size != (uint64_t)s->st0.st_size)
		return put_retry(s, WIRE_RETRY_CHANGED);
	if (fs_open_parent(s->srv->opts.rootfd, cur_path(s), &dirfd,
	    &base) != 0)
		return put_retry(s, WIRE_RETRY_GONE);
	if (fstatat(dirfd, base, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !same_file(&s->st0, &st2)) {
		close(dirfd);
		return put_retry(s, WIRE_RETRY_CHANGED);
	}
	close(dirfd);
	t.size = size;
	memcpy(t.hash, hash, HASH_LEN);
	file_close(s);
	pthread_mutex_lock(&s->srv->lock);
	s->srv->stats.files[s->rphase]++;
	if (s->rphase == 1 && s->srv->stats.ncompare_only < 8)
		snprintf(s->srv->stats.compare_only[
		    s->srv->stats.ncompare_only++], 128, "%s", cur_path(s));
	pthread_mutex_unlock(&s->srv->lock);
	s->fstate = FILE_DONE;
	return put(s, wire_put_trailer(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, &t));
}

/* Queue the next D frame of a whole file, or its end. */
static int
file_data(struct stream *s)
{
	uint8_t hash[HASH_LEN];
	uint64_t left = (uint64_t)s->st0.st_size - s->sent;
	size_t want = WIRE_DATA_CHUNK;
	ssize_t n;

	if (left < want)
		want = (size_t)left;
	if (want == 0) {
		/* Grown since open? Then it changed. */
		uint8_t probe;

		n = pread(s->fd, &probe, 1, s->sent);
		if (n != 0)
			return put_retry(s, WIRE_RETRY_CHANGED);
		hash_final(&s->hash, hash);
		return file_finish(s, s->sent, hash);
	}
	n = fs_pread_full(s->fd, s->out + s->out_len + WIRE_HDR, want,
	    s->sent);
	if (n < 0)
		return put_retry(s, WIRE_RETRY_UNREADABLE);
	if (n == 0)	/* shrunk since open */
		return put_retry(s, WIRE_RETRY_CHANGED);
	hash_update(&s->hash, s->out + s->out_len + WIRE_HDR, (size_t)n);
	wire_put_data_hdr(s->out + s->out_len, (uint32_t)n);
	s->out_len += WIRE_HDR + (size_t)n;
	s->sent += (uint64_t)n;
	return 0;
}

/* Queue the next D frame of a delta, or its end. */
static int
answer_delta_data(struct stream *s)
{
	uint8_t hash[HASH_LEN];
	uint64_t size;
	ssize_t n;

	n = delta_gen_read(s->gen, s->out + s->out_len + WIRE_HDR,
	    WIRE_DATA_CHUNK);
	if (n < 0)
		return put_retry(s, WIRE_RETRY_UNREADABLE);
	if (n > 0) {
		wire_put_data_hdr(s->out + s->out_len, (uint32_t)n);
		s->out_len += WIRE_HDR + (size_t)n;
		return 0;
	}
	delta_gen_result(s->gen, &size, hash);
	return file_finish(s, size, hash);
}

static int
advance(struct stream *s)
{
	s->paths_off += strlen(cur_path(s)) + 1;
	s->cur++;
	s->answered++;
	s->fstate = FILE_NONE;
	return 0;
}

/* Produce the next frames of a files or delta stream into s->out. */
static int
produce_files(struct stream *s)
{
	int r = 0;

	while (r == 0 && !s->finished && s->out_len < WIRE_HDR + 16384) {
		switch (s->fstate) {
		case FILE_NONE:
			if (s->cur == s->npaths) {
				r = put(s, wire_put_end(s->out + s->out_len,
				    sizeof(s->out) - s->out_len, s->answered));
				s->finished = 1;
				break;
			}
			if (s->kind == STREAM_DELTA && s->gen == NULL) {
				/* The signature was refused or the file
				 * could not be opened at upload's end. */
				r = put_retry(s, WIRE_RETRY_GONE);
				break;
			}
			if (s->kind == STREAM_FILES)
				r = file_open(s);
			else
				s->fstate = FILE_SENDING;
			if (r == 0 && s->kind == STREAM_DELTA) {
				struct wire_entry *e = malloc(sizeof(*e));
				const char *p = cur_path(s);

				if (e == NULL)
					return -AR_ENOMEM;
				manifest_entry_from_stat(e, WALK_FILE, &s->st0);
				e->name_len = (uint16_t)strlen(p);
				memcpy(e->name, p, e->name_len + 1u);
				r = put(s, wire_put_entry(s->out + s->out_len,
				    sizeof(s->out) - s->out_len, WIRE_FILE, e));
				free(e);
			}
			break;
		case FILE_SENDING:
			r = s->kind == STREAM_FILES ? file_data(s) :
			    answer_delta_data(s);
			break;
		case FILE_DONE:
			r = advance(s);
			break;
		}
	}
	return r;
}

/* The S frame, U frame or K frame that tells the current state of path. */
static int
put_state(struct stream *s, const char *path, size_t len, int rescan)
{
	struct wire_entry *e;
	struct stat st;
	const char *base;
	int dirfd, type, r;
	ssize_t tl;

	if (exclude_match(s->srv->opts.exclude, path, len, 0) ||
	    fs_open_parent(s->srv->opts.rootfd, path, &dirfd, &base) != 0)
		return put(s, wire_put_pathop(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, WIRE_GONE_PATH, path, len,
		    NULL, 0));
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
	    S_ISLNK(st.st_mode))) {
		close(dirfd);
		return put(s, wire_put_pathop(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, WIRE_GONE_PATH, path, len,
		    NULL, 0));
	}
	e = malloc(sizeof(*e));
	if (e == NULL) {
		close(dirfd);
		return -AR_ENOMEM;
	}
	type = S_ISREG(st.st_mode) ? WALK_FILE : S_ISDIR(st.st_mode) ?
	    WALK_DIR : WALK_LINK;
	manifest_entry_from_stat(e, type, &st);
	memcpy(e->name, path, len);
	e->name[len] = '\0';
	e->name_len = (uint16_t)len;
	if (type == WALK_LINK) {
		tl = readlinkat(dirfd, base, e->target, WIRE_TARGET_MAX);
		if (tl <= 0) {
			free(e);
			close(dirfd);
			return put(s, wire_put_pathop(s->out + s->out_len,
			    sizeof(s->out) - s->out_len, WIRE_GONE_PATH, path,
			    len, NULL, 0));
		}
		e->target[tl] = '\0';
		e->target_len = (uint16_t)tl;
	}
	close(dirfd);
	r = put(s, wire_put_entry(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, WIRE_STATE, e));
	free(e);
	if (r == 0 && rescan && type == WALK_DIR)
		r = put(s, wire_put_pathop(s->out + s->out_len,
		    sizeof(s->out) - s->out_len, WIRE_RESCAN, path, len, NULL,
		    0));
	return r;
}

/* Produce the next frames of a changes batch into s->out. */
static int
produce_changes(struct stream *s)
{
	const char *p, *p2;
	size_t len, len2;
	int r = 0, rescan;

	if (s->kind == STREAM_GONE || s->kind == STREAM_FINAL ||
	    s->kind == STREAM_COMPLETE) {
		/* G and C have the payload of Z: a position. */
		int n = 0;

		if (s->kind == STREAM_FINAL)
			n = wire_put_pathop(s->out, sizeof(s->out), WIRE_RESCAN,
			    "", 0, NULL, 0);
		if (n < 0)
			return n;
		s->out_len = (size_t)n;
		n = wire_put_end(s->out + s->out_len, sizeof(s->out) -
		    s->out_len, s->upto);
		if (n < 0)
			return n;
		s->out[s->out_len] = s->kind == STREAM_GONE ? WIRE_GONE :
		    WIRE_COMPLETE;
		s->out_len += (size_t)n;
		s->finished = 1;
		return 0;
	}
	while (r == 0 && !s->finished && s->out_len < 16384) {
		if (s->phase == 0 && changes_full(s->changes)) {
			r = put(s, wire_put_pathop(s->out + s->out_len,
			    sizeof(s->out) - s->out_len, WIRE_RESCAN, "", 0,
			    NULL, 0));
			s->phase = 2;
		} else if (s->phase == 0) {
			if (s->idx == changes_nrenames(s->changes)) {
				s->phase = 1;
				s->idx = 0;
				continue;
			}
			changes_rename(s->changes, s->idx++, &p, &len, &p2,
			    &len2);
			r = put(s, wire_put_pathop(s->out + s->out_len,
			    sizeof(s->out) - s->out_len, WIRE_MOVE, p, len, p2,
			    len2));
		} else if (s->phase == 1) {
			if (s->idx == changes_npaths(s->changes)) {
				s->phase = 2;
				continue;
			}
			if (changes_path(s->changes, s->idx++, &p, &len,
			    &rescan))
				r = put_state(s, p, len, rescan);
		} else {
			r = put(s, wire_put_end(s->out + s->out_len,
			    sizeof(s->out) - s->out_len, s->upto));
			s->finished = 1;
		}
	}
	return r;
}

static void event(struct server *srv, int ev);
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max);

static ssize_t
stream_run(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t n;
	int r;

	(void)pos;
	if (s->out_pos == s->out_len) {
		s->out_pos = s->out_len = 0;
		if (s->kind == STREAM_MANIFEST) {
			ssize_t m = manifest_read(s->manifest, s->out,
			    sizeof(s->out));

			if (m < 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			if (m == 0)
				return MHD_CONTENT_READER_END_OF_STREAM;
			s->out_len = (size_t)m;
		} else {
			if (s->finished)
				return MHD_CONTENT_READER_END_OF_STREAM;
			r = s->kind == STREAM_FILES || s->kind == STREAM_DELTA ?
			    produce_files(s) : produce_changes(s);
			if (r != 0) {
				log_error("stream: %s", ar_strerror(r));
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			if (s->out_len == 0)
				return MHD_CONTENT_READER_END_OF_STREAM;
		}
	}
	n = s->out_len - s->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_pos, n);
	s->out_pos += n;
	if (s->kind == STREAM_FILES || s->kind == STREAM_DELTA) {
		pthread_mutex_lock(&s->srv->lock);
		s->srv->stats.bytes[s->rphase] += n;
		pthread_mutex_unlock(&s->srv->lock);
		/* A long transfer is a live standby too. */
		if (s->srv->opts.role == WIRE_ROLE_RESCUE)
			event(s->srv, SERVER_EV_CONTACT);
	}
	return (ssize_t)n;
}

/* ---------------------------------------------------------------- */
/* Requests */

enum route {
	ROUTE_HELLO,
	ROUTE_MANIFEST,
	ROUTE_FILES,
	ROUTE_DELTA,
	ROUTE_CHANGES,
};

/* Per-request state, from the first call of the handler to completion. */
struct request {
	enum route route;
	int status;		/* HTTP status of an error seen, or 0 */
	char why[160];		/* its explanation, sent as the body */
	struct wire_reader reader;
	uint64_t body;		/* bytes of body received */
	struct stream *stream;	/* built while the body arrives */
	size_t paths_len, paths_cap;
	int got_req;		/* delta: the N frame was seen */
	struct delta_loadsig *loadsig;
	char peer[64];

	/* GET /v1/changes: the standby's position and its long-poll */
	struct MHD_Connection *conn;
	int parsed;
	int acked;
	uint64_t since;
	uint64_t deadline_ms;
	char gen[WIRE_GEN_LEN + 1];
	char id[65];
	int suspended;
	struct request *next_waiter;
};

static void
request_free(struct request *rq)
{
	wire_reader_release(&rq->reader);
	stream_free(rq->stream);
	delta_loadsig_free(rq->loadsig);
	free(rq);
}

static void
request_fail(struct request *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
request_fail(struct request *rq, int status, const char *fmt, ...)
{
	va_list ap;

	if (rq->status != 0)
		return;		/* keep the first reason */
	rq->status = status;
	va_start(ap, fmt);
	vsnprintf(rq->why, sizeof(rq->why), fmt, ap);
	va_end(ap);
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, int status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char body[256];

	snprintf(body, sizeof(body), "%s\n", text);
	resp = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_stream(struct MHD_Connection *c, struct request *rq)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    SERVER_BLOCK, stream_cb, rq->stream, stream_free);
	if (resp == NULL)
		return MHD_NO;
	rq->stream = NULL;	/* owned by the response now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/x-asyncrep");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_hello(struct MHD_Connection *c, struct server *srv)
{
	struct wire_hello h;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	uint8_t buf[256];
	int n;

	memset(&h, 0, sizeof(h));
	h.version = WIRE_VERSION;
	h.role = (uint32_t)srv->opts.role;
	memcpy(h.generation, srv->generation, sizeof(h.generation));
	snprintf(h.server, sizeof(h.server), "asyncrep %s", PACKAGE_VERSION);
	pthread_mutex_lock(&srv->lock);
	h.seq = srv->released;
	pthread_mutex_unlock(&srv->lock);
	n = wire_put_hello(buf, sizeof(buf), &h);
	if (n < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer((size_t)n, buf,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/x-asyncrep");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A frame of a /v1/files body: collect the requested paths. */
static int
files_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct request *rq = arg;
	struct stream *s = rq->stream;
	struct wire_req req;
	size_t need;

	if (type != WIRE_REQ || wire_get_req(p, len, &req) != 0) {
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed request "
		    "frame");
		return -AR_EPROTO;
	}
	if (s->npaths == SERVER_MAX_FILES) {
		request_fail(rq, MHD_HTTP_CONTENT_TOO_LARGE, "more than %d "
		    "files in one request", SERVER_MAX_FILES);
		return -AR_ENOMEM;
	}
	need = rq->paths_len + req.path_len + 1;
	if (need > rq->paths_cap) {
		size_t ncap = rq->paths_cap ? rq->paths_cap * 2 : 4096;
		char *n;

		while (ncap < need)
			ncap *= 2;
		n = realloc(s->paths, ncap);
		if (n == NULL) {
			request_fail(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "out of memory");
			return -AR_ENOMEM;
		}
		s->paths = n;
		rq->paths_cap = ncap;
	}
	memcpy(s->paths + rq->paths_len, req.path, req.path_len + 1u);
	rq->paths_len = need;
	s->npaths++;
	return 0;
}

/* A frame of a /v1/delta body: the N frame, then signature data. */
static int
answer_delta_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct request *rq = arg;
	struct stream *s = rq->stream;
	struct wire_req req;
	int r;

	if (!rq->got_req) {
		if (type != WIRE_REQ || wire_get_req(p, len, &req) != 0) {
			request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed "
			    "delta request");
			return -AR_EPROTO;
		}
		s->paths = malloc(req.path_len + 1u);
		if (s->paths == NULL)
			return -AR_ENOMEM;
		memcpy(s->paths, req.path, req.path_len + 1u);
		s->npaths = 1;
		rq->got_req = 1;
		return 0;
	}
	if (type != WIRE_DATA) {
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "unexpected frame in "
		    "a signature");
		return -AR_EPROTO;
	}
	r = delta_loadsig_feed(rq->loadsig, p, len);
	if (r != 0) {
		request_fail(rq, r == -AR_ENOMEM ? MHD_HTTP_CONTENT_TOO_LARGE :
		    MHD_HTTP_BAD_REQUEST, "%s", r == -AR_ENOMEM ?
		    "signature too large" : "malformed signature");
		return r;
	}
	return 0;
}

/* The whole delta request arrived: load the signature, open the file. */
static void
answer_delta_prepare(struct server *srv, struct request *rq)
{
	struct stream *s = rq->stream;
	rs_signature_t *sig = NULL;
	int r;

	if (!rq->got_req) {
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "empty delta request");
		return;
	}
	r = delta_loadsig_finish(rq->loadsig, &sig);
	if (r != 0) {
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed signature");
		return;
	}
	if (exclude_match(srv->opts.exclude, s->paths, strlen(s->paths), 0)) {
		rs_free_sumset(sig);
		return;
	}
	r = fs_open_beneath(srv->opts.rootfd, s->paths, O_RDONLY | O_NONBLOCK,
	    0, &s->fd);
	if (r != 0 || fstat(s->fd, &s->st0) != 0 ||
	    !S_ISREG(s->st0.st_mode)) {
		/* Answered with R: the standby retries or re-lists. */
		rs_free_sumset(sig);
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		return;
	}
	r = delta_gen_new(sig, s->fd, &s->gen);
	if (r != 0) {
		close(s->fd);
		s->fd = -1;
		s->gen = NULL;
	}
}

static void
peer_name(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char host[INET6_ADDRSTRLEN] = "?";

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)sa)->sin_addr, host, sizeof(host));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    (const void *)sa)->sin6_addr, host, sizeof(host));
	}
	snprintf(out, outlen, "%s", host);
}

static enum MHD_Result
reply_manifest(struct MHD_Connection *c, struct server *srv,
    struct request *rq)
{
	const char *path;
	int r;

	path = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "path");
	if (path == NULL)
		path = "";
	if (strlen(path) > WIRE_PATH_MAX || !wire_path_valid(path,
	    strlen(path)))
		return reply_text(c, MHD_HTTP_BAD_REQUEST, "invalid path");
	rq->stream = stream_new(srv, STREAM_MANIFEST);
	if (rq->stream == NULL)
		return MHD_NO;
	r = manifest_new_at(srv->opts.rootfd, path, strlen(path),
	    &rq->stream->manifest);
	if (r == 0)
		manifest_set_exclude(rq->stream->manifest, srv->opts.exclude);
	if (r == -AR_EPROTO || (r == -AR_EIO && (errno == ENOENT ||
	    errno == ENOTDIR)))
		return reply_text(c, MHD_HTTP_NOT_FOUND, "no such directory");
	if (r != 0)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot read the tree");
	return reply_stream(c, rq);
}

/* Parse since, wait, id and gen of a /v1/changes request. */
static int
changes_args(struct MHD_Connection *c, struct request *rq)
{
	const char *v;
	char *end;
	unsigned long long n;
	size_t i, len;

	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	rq->since = n;
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	n = 0;
	if (v != NULL) {
		if (*v < '0' || *v > '9')
			return -1;
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno != 0 || *end != '\0' || n > SERVER_WAIT_MAX_MS)
			return -1;
	}
	rq->deadline_ms = now_ms() + n;
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "gen");
	if (v == NULL || strlen(v) != WIRE_GEN_LEN || !gen_valid(v))
		return -1;
	memcpy(rq->gen, v, WIRE_GEN_LEN + 1);
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
	if (v == NULL)
		return -1;
	len = strlen(v);
	if (len == 0 || len >= sizeof(rq->id))
		return -1;
	for (i = 0; i < len; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return -1;
	}
	memcpy(rq->id, v, len + 1);
	return 0;
}

/* Gather records (since, released] into a batch; upto is where the
 * standby stands once it applied it. */
struct gather {
	struct changes *ch;
	uint64_t upto;
};

static int
gather_rec(void *arg, const struct spool_rec *r)
{
	struct gather *g = arg;
	int full;

	full = changes_add(g->ch, r);
	if (full != 0)
		return full;	/* 1: the batch is full; stop before r */
	g->upto = r->seq;
	return 0;
}

static enum MHD_Result reply_position(struct MHD_Connection *c,
    struct server *srv, struct request *rq, enum stream_kind kind,
    uint64_t seq);

static enum MHD_Result
reply_gone(struct MHD_Connection *c, struct server *srv, struct request *rq,
    uint64_t seq)
{
	return reply_position(c, srv, rq, STREAM_GONE, seq);
}

static void
event(struct server *srv, int ev)
{
	if (srv->opts.event != NULL)
		srv->opts.event(srv->opts.event_arg, ev);
}

/*
 * A rescue serves its journal up to `released`, then one last batch: a
 * compare of the whole tree and C at released + 1. A standby asking for
 * changes after released + 1 holds everything: the rescue is complete.
 */
static enum MHD_Result
reply_rescue(struct MHD_Connection *c, struct server *srv, struct request *rq,
    uint64_t released)
{
	uint64_t final = released + 1;

	if (rq->since == final) {
		event(srv, SERVER_EV_COMPLETE);
		return reply_position(c, srv, rq, STREAM_COMPLETE, final);
	}
	if (rq->since == released) {
		pthread_mutex_lock(&srv->lock);
		srv->phase = 1;
		pthread_mutex_unlock(&srv->lock);
		event(srv, SERVER_EV_COMPARE);
		return reply_position(c, srv, rq, STREAM_FINAL, final);
	}
	return MHD_NO;	/* not reached: the caller handles the rest */
}

static enum MHD_Result
reply_position(struct MHD_Connection *c, struct server *srv,
    struct request *rq, enum stream_kind kind, uint64_t seq)
{
	rq->stream = stream_new(srv, kind);
	if (rq->stream == NULL)
		return MHD_NO;
	rq->stream->upto = seq;
	return reply_stream(c, rq);
}

static enum MHD_Result
reply_changes(struct MHD_Connection *c, struct server *srv,
    struct request *rq)
{
	struct gather g;
	uint64_t released;
	int r, stopping;

	if (!rq->parsed) {
		if (changes_args(c, rq) != 0) {
			log_warn("%s: /v1/changes: malformed arguments",
			    rq->peer);
			return reply_text(c, MHD_HTTP_BAD_REQUEST,
			    "malformed arguments");
		}
		rq->parsed = 1;
		rq->conn = c;
	}
	pthread_mutex_lock(&srv->lock);
	released = srv->released;
	stopping = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	/* Another generation, or a position this spool never had. */
	if (srv->opts.spool == NULL || strcmp(rq->gen, srv->generation) != 0 ||
	    rq->since > released + (srv->opts.role == WIRE_ROLE_RESCUE))
		return reply_gone(c, srv, rq, released);
	if (srv->opts.role == WIRE_ROLE_RESCUE && rq->since >= released)
		return reply_rescue(c, srv, rq, released);
	/* Asking for changes after `since` says everything up to it is
	 * durable on the standby: the acknowledgement that trims. */
	if (!rq->acked && srv->opts.role == WIRE_ROLE_PRIMARY) {
		rq->acked = 1;
		r = spool_ack(srv->opts.spool, rq->id, rq->since);
		if (r != 0)
			log_warn("%s: cannot record the position of '%s': %s",
			    rq->peer, rq->id, ar_strerror(r));
	}
	if (rq->since == released && !stopping &&
	    now_ms() < rq->deadline_ms) {
		pthread_mutex_lock(&srv->lock);
		/* A release since we looked would find no waiter to wake:
		 * look again under the lock that queues us. */
		if (srv->released == rq->since && !srv->stopping) {
			rq->suspended = 1;
			rq->next_waiter = srv->waiters;
			srv->waiters = rq;
			MHD_suspend_connection(c);
			pthread_mutex_unlock(&srv->lock);
			return MHD_YES;
		}
		released = srv->released;
		pthread_mutex_unlock(&srv->lock);
	}
	rq->stream = stream_new(srv, STREAM_CHANGES);
	if (rq->stream == NULL ||
	    changes_new(SERVER_CHANGES_MAX, &rq->stream->changes) != 0)
		return MHD_NO;
	g.ch = rq->stream->changes;
	g.upto = rq->since;
	r = spool_read(srv->opts.spool, rq->since, released, gather_rec, &g);
	if (r == -AR_ESTATE) {
		stream_free(rq->stream);
		rq->stream = NULL;
		return reply_gone(c, srv, rq, released);
	}
	if (r < 0) {
		log_error("%s: reading the spool: %s", rq->peer,
		    ar_strerror(r));
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot read the spool");
	}
	rq->stream->upto = g.upto;
	return reply_stream(c, rq);
}

static enum MHD_Result
handle_run(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	struct server *srv = cls;
	struct request *rq = *req_cls;
	char esc[256];
	int post, r;

	(void)version;
	if (rq == NULL) {
		/* First call: headers only. Route and authenticate before
		 * any body is accepted. */
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*req_cls = rq;
		peer_name(c, rq->peer, sizeof(rq->peer));
		/* A rescue counts every call as a sign of a live standby. */
		if (srv->opts.role == WIRE_ROLE_RESCUE)
			event(srv, SERVER_EV_CONTACT);
		post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
		if (strcmp(url, "/v1/hello") == 0)
			rq->route = ROUTE_HELLO;
		else if (strcmp(url, "/v1/manifest") == 0)
			rq->route = ROUTE_MANIFEST;
		else if (strcmp(url, "/v1/files") == 0)
			rq->route = ROUTE_FILES;
		else if (strcmp(url, "/v1/delta") == 0)
			rq->route = ROUTE_DELTA;
		else if (strcmp(url, "/v1/changes") == 0)
			rq->route = ROUTE_CHANGES;
		else {
			log_warn("%s: %s %s: unknown path", rq->peer,
			    log_escape(method, strlen(method), esc, 32),
			    log_escape(url, strlen(url), esc + 32,
			    sizeof(esc) - 32));
			return reply_text(c, MHD_HTTP_NOT_FOUND,
			    "unknown path");
		}
		if (post != (rq->route == ROUTE_FILES ||
		    rq->route == ROUTE_DELTA) || (!post &&
		    strcmp(method, MHD_HTTP_METHOD_GET) != 0)) {
			log_warn("%s: %s: wrong method", rq->peer, url);
			return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "wrong method");
		}
		if (!auth_check(srv->opts.auth, MHD_lookup_connection_value(c,
		    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))) {
			log_warn("%s: %s: bad or missing token", rq->peer,
			    url);
			return reply_text(c, MHD_HTTP_UNAUTHORIZED,
			    "bad or missing token");
		}
		if (rq->route == ROUTE_FILES || rq->route == ROUTE_DELTA) {
			rq->stream = stream_new(srv, rq->route == ROUTE_FILES ?
			    STREAM_FILES : STREAM_DELTA);
			if (rq->stream == NULL ||
			    wire_reader_init(&rq->reader,
			    WIRE_HDR + WIRE_DATA_CHUNK) != 0)
				return MHD_NO;
			if (rq->route == ROUTE_DELTA &&
			    delta_loadsig_new(srv->opts.cfg->max_signature_size,
			    &rq->loadsig) != 0)
				return MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;
		uint64_t limit = rq->route == ROUTE_FILES ?
		    SERVER_MAX_FILES_BODY :
		    srv->opts.cfg->max_signature_size + 65536;

		*upload_size = 0;
		if (rq->route != ROUTE_FILES && rq->route != ROUTE_DELTA) {
			request_fail(rq, MHD_HTTP_BAD_REQUEST, "unexpected "
			    "body");
			return MHD_YES;
		}
		if (rq->status != 0)
			return MHD_YES;	/* discard; answered at the end */
		rq->body += n;
		if (rq->body > limit) {
			request_fail(rq, MHD_HTTP_CONTENT_TOO_LARGE,
			    "request body too large");
			return MHD_YES;
		}
		r = wire_reader_feed(&rq->reader, upload, n,
		    rq->route == ROUTE_FILES ? files_frame : answer_delta_frame, rq);
		if (r != 0)
			request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed "
			    "request body");
		return MHD_YES;
	}
	/* The request is complete. */
	if (rq->status == 0 && rq->stream != NULL &&
	    !wire_reader_idle(&rq->reader))
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "truncated request "
		    "body");
	if (rq->status == 0 && rq->route == ROUTE_FILES &&
	    rq->stream->npaths == 0)
		request_fail(rq, MHD_HTTP_BAD_REQUEST, "no file requested");
	if (rq->status == 0 && rq->route == ROUTE_DELTA)
		answer_delta_prepare(srv, rq);
	if (rq->status != 0) {
		log_warn("%s: %s: %s", rq->peer, url, rq->why);
		return reply_text(c, rq->status, rq->why);
	}
	switch (rq->route) {
	case ROUTE_HELLO:
		return reply_hello(c, srv);
	case ROUTE_MANIFEST:
		return reply_manifest(c, srv, rq);
	case ROUTE_CHANGES:
		return reply_changes(c, srv, rq);
	case ROUTE_FILES:
	case ROUTE_DELTA:
		delta_loadsig_free(rq->loadsig);
		rq->loadsig = NULL;
		return reply_stream(c, rq);
	}
	return MHD_NO;
}

/* Every entry from libmicrohttpd may touch the tree or the spool: each
 * is a guarded stretch (guard.h), so a hung mount under a rescue shows. */
static ssize_t
stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n;

	guard_enter("serving a transfer");
	n = stream_run(cls, pos, buf, max);
	guard_leave();
	return n;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	enum MHD_Result r;

	guard_enter("answering a request");
	r = handle_run(cls, c, url, method, version, upload, upload_size,
	    req_cls);
	guard_leave();
	return r;
}

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	guard_enter("closing a request");
	if (*req_cls != NULL)
		request_free(*req_cls);
	*req_cls = NULL;
	guard_leave();
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512], esc[1024];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	log_warn("http: %s", log_escape(buf, n, esc, sizeof(esc)));
}

/* ---------------------------------------------------------------- */

static int
bind_listen(const struct config_addr *addr, int *fdp, char *err,
    size_t errlen)
{
	int fd, one = 1;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", addr->text,
		    strerror(errno));
		return -AR_EBIND;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Bind before the service address is up (a rescue starts before
	 * the virtual IP moves). */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 ||
	    listen(fd, 128) != 0) {
		snprintf(err, errlen, "listen %s: %s", addr->text,
		    strerror(errno));
		close(fd);
		return -AR_EBIND;
	}
	*fdp = fd;
	return 0;
}

int
server_start(const struct server_opts *opts, struct server **out, char *err,
    size_t errlen)
{
	const struct config_primary *cfg = opts->cfg;
	struct server *srv;
	unsigned timeout_s;
	int r;

	if (!opts->auth->enabled && !auth_addr_is_loopback(&cfg->listen.ss)) {
		snprintf(err, errlen, "listen %s: refusing a non-loopback "
		    "address without authentication: set auth_token_file",
		    cfg->listen.text);
		return -AR_ECONFIG;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -AR_ENOMEM;
	srv->opts = *opts;
	memcpy(srv->generation, opts->generation, WIRE_GEN_LEN);
	pthread_mutex_init(&srv->lock, NULL);
	srv->released = opts->spool != NULL ?
	    spool_durable_seq(opts->spool) : 0;
	r = bind_listen(&cfg->listen, &srv->listen_fd, err, errlen);
	if (r != 0) {
		free(srv);
		return r;
	}
	timeout_s = (unsigned)(cfg->timeout_ns / 1000000000u);
	if (timeout_s == 0)
		timeout_s = 1;
	srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, handle, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
	    MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP "
		    "server", cfg->listen.text);
		close(srv->listen_fd);
		free(srv);
		return -AR_EBIND;
	}
	*out = srv;
	return 0;
}

/* Resume the long-polls that have something to see or whose time is up;
 * all of them when stopping. */
static void
wake(struct server *srv)
{
	struct request **pp, *rq;
	uint64_t now = now_ms();

	pthread_mutex_lock(&srv->lock);
	pp = &srv->waiters;
	while (*pp != NULL) {
		rq = *pp;
		if (srv->stopping || srv->released > rq->since ||
		    now >= rq->deadline_ms) {
			*pp = rq->next_waiter;
			rq->next_waiter = NULL;
			rq->suspended = 0;
			MHD_resume_connection(rq->conn);
		} else
			pp = &rq->next_waiter;
	}
	pthread_mutex_unlock(&srv->lock);
}

void
server_get_stats(struct server *srv, struct server_stats *st)
{
	pthread_mutex_lock(&srv->lock);
	*st = srv->stats;
	pthread_mutex_unlock(&srv->lock);
}

void
server_release(struct server *srv, uint64_t seq)
{
	pthread_mutex_lock(&srv->lock);
	if (seq > srv->released)
		srv->released = seq;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
}

void
server_stop(struct server *srv)
{
	if (srv == NULL)
		return;
	/* Suspended connections must be resumed before the daemon stops. */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = 1;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
	MHD_stop_daemon(srv->mhd);
	pthread_mutex_destroy(&srv->lock);
	close(srv->listen_fd);
	free(srv);
}
