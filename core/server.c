/*
 * server.c: the daemon behind server.h. It owns the listening socket and
 * libmicrohttpd with its connection limits, authenticates every request,
 * routes it through one table of {method, path, handlers}, reads its
 * body under the route's limit, answers the hello, and runs the streamed
 * answers that serve-files.c and serve-changes.c fill (server-int.h).
 * With TLS, it asks every client for a certificate and checks it
 * (tls.h) before any handler sees a request of that connection.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "changes.h"
#include "compress.h"
#include "delta.h"
#include "blocks.h"
#include "error.h"
#include "fs.h"
#include "gen.h"
#include "guard.h"
#include "idnames.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "server-int.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

/* Bytes MHD asks a stream callback for at a time. */
#define SERVER_BLOCK (256u * 1024)
/* ... of an answer that comes at the rate of the changes (a batch, an
 * append's tail): libmicrohttpd clears the block of every response, and
 * 256 KiB per append was a tenth of the primary's memset. */
#define SERVER_BLOCK_SMALL (32u * 1024)

/* How often the reaper looks for connections past header_timeout. */
#define SERVER_REAP_MS 250
/* Its log line about them: at most one per this long. */
#define SERVER_REAP_LOG_MS 10000

/*
 * One connection (its socket context). With TLS, what its peer was
 * found to be, once: the certificate cannot change on it, as TLS 1.3 has
 * no renegotiation. Until its first request is authenticated it must
 * get there within header_timeout, or the reaper shuts its socket down
 * (slowloris: 64 connections sending a header line every 10 s stayed
 * open past idle_timeout and locked real standbys out).
 */
struct server_conn {
	int checked;
	int refused;
	char why[WIRE_MSG_MAX / 2];	/* the X frame's message */
	int fd;			/* libmicrohttpd's; valid while linked */
	uint64_t start_ms;
	int authed;		/* a request of it was authenticated */
	int reaped;		/* shut down by the reaper */
	char pin[PIN_TEXT_LEN + 1];	/* the peer's key, "" without TLS */
	int uid_checked;	/* no token: the local user was looked at */
	int uid_refused;
	char uid_why[160];
	struct server_conn *prev, *next;	/* srv->conns, conn_lock */
};

/* ---------------------------------------------------------------- */
/* Streamed answers */

void
server_stream_free(void *cls)
{
	struct server_stream *s = cls;

	if (s == NULL)
		return;
	if (s->delta_slot) {
		pthread_mutex_lock(&s->srv->lock);
		assert(s->srv->ndeltas > 0 &&
		    s->srv->sig_bytes >= s->sig_bytes);
		s->srv->ndeltas--;
		s->srv->sig_bytes -= s->sig_bytes;
		pthread_mutex_unlock(&s->srv->lock);
	}
	manifest_free(s->manifest);
	if (s->fd >= 0)
		close(s->fd);
	hash_release(&s->hash);
	delta_gen_free(s->gen);
	serve_append_free(s);
	changes_free(s->changes);
	idnames_sent_free(s->names);
	compress_out_free(s->z);
	free(s->paths);
	free(s);
}

struct server_stream *
server_stream_new(struct server *srv, enum server_stream_kind kind)
{
	struct server_stream *s = malloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	/* A calloc would clear out[] too: a memset of 288 KiB per request
	 * once malloc serves blocks this size from the heap. */
	memset(s, 0, offsetof(struct server_stream, out));
	s->kind = kind;
	s->srv = srv;
	s->fd = -1;
	pthread_mutex_lock(&srv->lock);
	s->rphase = srv->phase;
	pthread_mutex_unlock(&srv->lock);
	return s;
}

int
server_stream_put(struct server_stream *s, int n)
{
	if (n < 0)
		return n;
	s->out_len += (size_t)n;
	assert(s->out_len <= sizeof(s->out));
	return 0;
}

int
server_stream_put_entry(struct server_stream *s, uint8_t frame, int type,
    const struct stat *st, const char *path, size_t len, const char *target,
    size_t target_len)
{
	struct wire_entry *e;
	int r;

	assert(frame == WIRE_FILE || frame == WIRE_STATE ||
	    frame == WIRE_ATTRS);
	assert(len <= WIRE_PATH_MAX);
	assert(target_len <= WIRE_TARGET_MAX);
	assert(target != NULL || target_len == 0);
	/* Two 4 KiB strings: not on the stack of a pool thread. */
	e = malloc(sizeof(*e));
	if (e == NULL)
		return -AR_ENOMEM;
	manifest_entry_from_stat(e, type, st);
	memcpy(e->name, path, len);
	e->name[len] = '\0';
	e->name_len = (uint16_t)len;
	if (target_len > 0) {
		memcpy(e->target, target, target_len);
		e->target[target_len] = '\0';
		e->target_len = (uint16_t)target_len;
	}
	r = server_stream_put(s, wire_put_entry(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, frame, e));
	free(e);
	return r;
}

/*
 * bwlimit of the primary, for all standbys together: a transfer sends a
 * hundredth of a second of rate at a time and waits out its debt before
 * it does. The wait holds this server thread (libmicrohttpd's internal
 * polling mode cannot be told "later" from here), so its other
 * connections wait at most about that long between two pieces.
 */
static size_t
server_stream_pace(struct server *srv, size_t n)
{
	uint64_t piece = srv->bw.rate / 100;

	if (piece < SERVER_PACE_MIN)
		piece = SERVER_PACE_MIN;
	if (n > piece)
		n = (size_t)piece;
	(void)rate_wait(rate_take(&srv->bw, 0), NULL);
	(void)rate_take(&srv->bw, n);
	return n;
}

static ssize_t
server_stream_run(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct server_stream *s = cls;
	int transfer = s->kind == SERVER_STREAM_FILES ||
	    s->kind == SERVER_STREAM_DELTA || s->kind == SERVER_STREAM_APPEND;
	size_t n;
	int r;

	(void)pos;
	assert(s->out_pos <= s->out_len);
	if (s->out_pos == s->out_len) {
		s->out_pos = s->out_len = 0;
		if (s->kind == SERVER_STREAM_MANIFEST) {
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
			r = s->kind == SERVER_STREAM_APPEND ?
			    serve_append_produce(s) : transfer ?
			    serve_files_produce(s) : serve_changes_produce(s);
			if (r != 0) {
				log_error("stream: %s", ar_strerror(r));
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			/* A sums answer that hashed a slice of a big
			 * file has nothing to send yet: called again. */
			if (s->out_len == 0 && s->sums && !s->finished)
				return 0;
			if (s->out_len == 0)
				return MHD_CONTENT_READER_END_OF_STREAM;
		}
	}
	n = s->out_len - s->out_pos;
	if (n > max)
		n = max;
	if (transfer && s->srv->bw.rate != 0)
		n = server_stream_pace(s->srv, n);
	memcpy(buf, s->out + s->out_pos, n);
	s->out_pos += n;
	if (transfer) {
		assert(s->rphase < SERVER_PHASES);
		pthread_mutex_lock(&s->srv->lock);
		s->srv->stats.bytes[s->rphase] += n;
		pthread_mutex_unlock(&s->srv->lock);
		metrics_add(s->kind == SERVER_STREAM_FILES ?
		    METRICS_SERVED_BYTES_WHOLE : s->kind ==
		    SERVER_STREAM_APPEND ? (s->ablocks ?
		    METRICS_SERVED_BYTES_BLOCKS : METRICS_SERVED_BYTES_APPEND) :
		    METRICS_SERVED_BYTES_DELTA, n);
		/* A long transfer is a live standby too. */
		if (s->srv->opts.role == WIRE_ROLE_RESCUE)
			(void)server_notify(s->srv, SERVER_EV_CONTACT, NULL);
	}
	return (ssize_t)n;
}

/* The plain body, as the zstd stream's source: bytes, 0, or an error. */
static ssize_t
server_stream_plain(void *arg, uint8_t *buf, size_t max)
{
	ssize_t n = server_stream_run(arg, 0, (char *)buf, max);

	if (n == MHD_CONTENT_READER_END_OF_STREAM)
		return 0;
	return n < 0 ? -AR_EIO : n;
}

/* Every entry from libmicrohttpd may touch the tree or the spool: each
 * is a guarded stretch (guard.h), so a hung mount under a rescue shows. */
static ssize_t
server_stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct server_stream *s = cls;
	ssize_t n;

	guard_enter("serving a transfer");
	if (s->z == NULL) {
		n = server_stream_run(cls, pos, buf, max);
	} else {
		n = compress_out_read(s->z, server_stream_plain, s,
		    (uint8_t *)buf, max);
		if (n == 0)
			n = MHD_CONTENT_READER_END_OF_STREAM;
		else if (n < 0)
			n = MHD_CONTENT_READER_END_WITH_ERROR;
	}
	guard_leave();
	return n;
}

/* An answer of GET /v1/changes: a batch, or where the standby stands. */
static int
server_stream_changes(const struct server_stream *s)
{
	return s->kind == SERVER_STREAM_CHANGES ||
	    s->kind == SERVER_STREAM_GONE || s->kind == SERVER_STREAM_FINAL ||
	    s->kind == SERVER_STREAM_COMPLETE;
}

/*
 * Such an answer is small (SERVE_CHANGES_FILL, a Z frame at its end):
 * make its first fill now, before it is queued; finished then says
 * whether that is all of it. 0, or -1 when it cannot be made (the
 * connection is closed, as a failure in the callback would close it).
 */
static int
server_stream_whole(struct server_stream *s)
{
	int r;

	guard_enter("serving a transfer");
	r = serve_changes_produce(s);
	guard_leave();
	if (r != 0) {
		log_error("stream: %s", ar_strerror(r));
		return -1;
	}
	return 0;
}

/*
 * compress = zstd (compress.h): the standby asked for it, the version
 * has it, and the answer is a listing or file data (a batch of changes
 * is small and must not wait for a compressor's block). A malformed ask
 * is answered plain, which the standby reads all the same.
 */
static int
server_stream_zstd(struct MHD_Connection *c, struct server_request *rq,
    struct server_stream *s)
{
	const char *v;
	int level;

	/* A sums answer is a few frames per file, and pauses while it
	 * hashes (server_stream_run returns 0): plain. */
	if (rq->version < WIRE_V_COMPRESS || s->sums || (s->kind !=
	    SERVER_STREAM_MANIFEST && s->kind != SERVER_STREAM_FILES &&
	    s->kind != SERVER_STREAM_DELTA))
		return 0;
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, COMPRESS_HDR_ASK);
	if (v == NULL)
		return 0;
	if (compress_parse(v, &level) != 0) {
		log_warn("%s: malformed %s header: answered uncompressed",
		    rq->peer, COMPRESS_HDR_ASK);
		return 0;
	}
	return compress_out_new(&s->z, level) == 0;
}

/* ---------------------------------------------------------------- */
/* Requests */

int
server_notify(struct server *srv, int ev, const char *id)
{
	if (srv->opts.event == NULL)
		return 1;
	return srv->opts.event(srv->opts.event_arg, ev, id);
}

static void
server_request_free(struct server_request *rq)
{
	assert(!rq->suspended);
	wire_reader_release(&rq->reader);
	server_stream_free(rq->stream);
	delta_loadsig_free(rq->loadsig);
	free(rq);
}

void
server_request_fail(struct server_request *rq, int status, const char *fmt,
    ...)
{
	va_list ap;

	if (rq->status != 0)
		return;		/* keep the first reason */
	rq->status = status;
	va_start(ap, fmt);
	vsnprintf(rq->why, sizeof(rq->why), fmt, ap);
	va_end(ap);
}

enum MHD_Result
server_reply_text(struct MHD_Connection *c, int status, const char *text)
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

enum MHD_Result
server_reply_stream(struct MHD_Connection *c, struct server_request *rq)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int zstd, small;

	assert(rq->stream != NULL);
	zstd = server_stream_zstd(c, rq, rq->stream);
	small = rq->stream->kind == SERVER_STREAM_CHANGES ||
	    (rq->stream->kind == SERVER_STREAM_APPEND &&
	    !rq->stream->ablocks);
	resp = NULL;
	if (!zstd && server_stream_changes(rq->stream)) {
		if (server_stream_whole(rq->stream) != 0)
			return MHD_NO;
#if MHD_VERSION >= 0x00097302
		/* Made whole here: it goes out with its length, header and
		 * body at once, and no last chunk follows in a round of its
		 * own for the standby to wait for. */
		if (rq->stream->finished)
			resp =
			    MHD_create_response_from_buffer_with_free_callback_cls(
			    rq->stream->out_len, rq->stream->out,
			    server_stream_free, rq->stream);
#endif
	}
	/* The rest, or all of it: what is made already goes first. */
	if (resp == NULL)
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    small ? SERVER_BLOCK_SMALL : SERVER_BLOCK,
		    server_stream_cb, rq->stream, server_stream_free);
	if (resp == NULL)
		return MHD_NO;
	rq->stream = NULL;	/* owned by the response now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/x-asyncrep");
	if (zstd)
		MHD_add_response_header(resp, COMPRESS_HDR_ENCODING, "zstd");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Frames held in buf (n bytes, or a negative error), under HTTP status. */
static enum MHD_Result
server_reply_frames(struct MHD_Connection *c, int status, const uint8_t *buf,
    int n)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (n < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer((size_t)n, (void *)buf,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/x-asyncrep");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* An X frame with code err and message msg, under HTTP status. */
enum MHD_Result
server_reply_error(struct MHD_Connection *c, int status, int err,
    const char *msg)
{
	uint8_t buf[WIRE_HDR + 6 + WIRE_MSG_MAX];

	return server_reply_frames(c, status, buf, wire_put_error(buf,
	    sizeof(buf), (uint32_t)err, msg));
}

static enum MHD_Result
server_reply_hello(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq)
{
	struct wire_hello h;
	uint8_t buf[256];
	char msg[128];

	memset(&h, 0, sizeof(h));
	if (wire_version_pick(rq->offer_lo, rq->offer_hi, WIRE_VERSION_MIN,
	    WIRE_VERSION_MAX, &h.version) != 0) {
		snprintf(msg, sizeof(msg), "this server speaks protocol "
		    "versions %d to %d, the standby offered %u to %u",
		    WIRE_VERSION_MIN, WIRE_VERSION_MAX, rq->offer_lo,
		    rq->offer_hi);
		log_warn("%s: %s", rq->peer, msg);
		/* A version 1 standby reads only a version 1 hello: one
		 * that names our lowest version, which it refuses. */
		if (rq->offer_hi > 1)
			return server_reply_error(c, MHD_HTTP_OK,
			    AR_EVERSION, msg);
		h.version = WIRE_VERSION_MIN;
	} else if (h.version >= 2) {
		h.vmin = WIRE_VERSION_MIN;
		h.vmax = WIRE_VERSION_MAX;
	}
	h.role = (uint32_t)srv->opts.role;
	memcpy(h.generation, srv->generation, sizeof(h.generation));
	snprintf(h.server, sizeof(h.server), "asyncrep %s", PACKAGE_VERSION);
	pthread_mutex_lock(&srv->lock);
	h.seq = srv->released;
	/* While the spool cannot record, a standby that compares stands
	 * one before the end of the journal: coming back to the end through
	 * the journal's last batch then shows that its compare is complete
	 * (serve_changes_reply). */
	if (srv->unrecorded && h.seq > 0)
		h.seq--;
	pthread_mutex_unlock(&srv->lock);
	return server_reply_frames(c, MHD_HTTP_OK, buf, wire_put_hello(buf,
	    sizeof(buf), &h));
}

/*
 * The protocol version of a request (PROTOCOL.md "Versions"): a hello
 * carries the standby's range, every other request the version chosen;
 * no header is a version 1 peer. Returns 0, or answers the request
 * (400) and returns -1.
 */
static int
server_request_version(struct MHD_Connection *c, struct server_request *rq,
    enum MHD_Result *answer)
{
	const char *v;
	char msg[128];

	rq->version = 1;
	rq->offer_lo = rq->offer_hi = 1;
	if (rq->route->negotiates) {
		v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    WIRE_HDR_VERSIONS);
		if (v == NULL || wire_versions_parse(v, &rq->offer_lo,
		    &rq->offer_hi) == 0)
			return 0;
		log_warn("%s: malformed %s header", rq->peer,
		    WIRE_HDR_VERSIONS);
		*answer = server_reply_text(c, MHD_HTTP_BAD_REQUEST,
		    "malformed " WIRE_HDR_VERSIONS " header");
		return -1;
	}
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, WIRE_HDR_VERSION);
	if (v == NULL)
		return 0;
	if (wire_version_parse(v, &rq->version) != 0) {
		log_warn("%s: malformed %s header", rq->peer, WIRE_HDR_VERSION);
		*answer = server_reply_text(c, MHD_HTTP_BAD_REQUEST,
		    "malformed " WIRE_HDR_VERSION " header");
		return -1;
	}
	if (rq->version < WIRE_VERSION_MIN || rq->version > WIRE_VERSION_MAX) {
		snprintf(msg, sizeof(msg), "protocol version %u asked; this "
		    "server speaks versions %d to %d", rq->version,
		    WIRE_VERSION_MIN, WIRE_VERSION_MAX);
		log_warn("%s: %s", rq->peer, msg);
		*answer = server_reply_error(c, MHD_HTTP_BAD_REQUEST,
		    AR_EVERSION, msg);
		return -1;
	}
	return 0;
}

static void
server_peer_name(struct MHD_Connection *c, char *out, size_t outlen)
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

/* ---------------------------------------------------------------- */
/* Routing */

/* Every request the protocol has (PROTOCOL.md "Requests"). */
static const struct server_route server_routes[] = {
	{ .method = MHD_HTTP_METHOD_GET, .path = "/v1/hello",
	  .negotiates = 1, .reply = server_reply_hello },
	{ .method = MHD_HTTP_METHOD_GET, .path = "/v1/manifest",
	  .reply = serve_files_manifest },
	{ .method = MHD_HTTP_METHOD_POST, .path = "/v1/files",
	  .begin = serve_files_begin, .frame = serve_files_frame,
	  .end = serve_files_end, .reply = serve_files_reply },
	{ .method = MHD_HTTP_METHOD_POST, .path = "/v1/delta",
	  .begin = serve_files_delta_begin, .frame = serve_files_delta_frame,
	  .end = serve_files_delta_end, .reply = serve_files_reply },
	{ .method = MHD_HTTP_METHOD_POST, .path = "/v1/append",
	  .begin = serve_append_begin, .frame = serve_append_frame,
	  .end = serve_append_end, .reply = serve_files_reply },
	{ .method = MHD_HTTP_METHOD_POST, .path = "/v1/blocks",
	  .min_version = WIRE_V_BLOCKS,
	  .begin = serve_append_blocks_begin, .frame = serve_append_frame,
	  .end = serve_append_end, .reply = serve_files_reply },
	{ .method = MHD_HTTP_METHOD_GET, .path = "/v1/changes",
	  .reply = serve_changes_reply },
	{ .method = MHD_HTTP_METHOD_POST, .path = "/v1/sums",
	  .min_version = WIRE_V_OPS,
	  .begin = serve_files_sums_begin, .frame = serve_files_frame,
	  .end = serve_files_end, .reply = serve_files_reply },
};

/* The row for url, or NULL. A path has one method: *method_ok says
 * whether it is the one asked for. */
static const struct server_route *
server_route_find(const char *url, const char *method, int *method_ok)
{
	size_t i;

	for (i = 0; i < sizeof(server_routes) / sizeof(server_routes[0]);
	    i++) {
		if (strcmp(url, server_routes[i].path) == 0) {
			*method_ok = strcmp(method,
			    server_routes[i].method) == 0;
			return &server_routes[i];
		}
	}
	return NULL;
}

/*
 * With TLS, whether the connection's client certificate is one we trust
 * (tls_peer_check), decided on its first request and kept: 0, or -1 with
 * the refusal (403, an X frame naming the key seen) queued in *answer.
 */
static int
server_peer_check(struct server *srv, struct MHD_Connection *c,
    struct server_request *rq, enum MHD_Result *answer)
{
	const union MHD_ConnectionInfo *ci;
	struct server_conn *sc;
	char pin[PIN_TEXT_LEN + 1], why[160];
	void *session = NULL;

	if (!srv->opts.auth->tls.enabled)
		return 0;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sc = ci != NULL ? ci->socket_context : NULL;
	if (sc == NULL) {
		*answer = MHD_NO;	/* out of memory at its start */
		return -1;
	}
	if (!sc->checked) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_GNUTLS_SESSION);
		if (ci != NULL)
			session = ci->tls_session;
		sc->checked = 1;
		sc->refused = tls_peer_check(&srv->opts.auth->tls, session, pin,
		    why, sizeof(why)) != 0;
		if (!sc->refused)
			memcpy(sc->pin, pin, sizeof(sc->pin));
		if (sc->refused && pin[0] != '\0')
			snprintf(sc->why, sizeof(sc->why), "the %s refused the "
			    "standby's key %s: %s", srv->opts.role ==
			    WIRE_ROLE_RESCUE ? "rescue" : "primary", pin, why);
		else if (sc->refused)
			snprintf(sc->why, sizeof(sc->why), "the %s refused the "
			    "standby: %s", srv->opts.role == WIRE_ROLE_RESCUE ?
			    "rescue" : "primary", why);
		if (sc->refused) {
			log_warn("%s: %s", rq->peer, sc->why);
			metrics_add(METRICS_AUTH_FAILURES, 1);
		}
	}
	if (!sc->refused) {
		memcpy(rq->pin, sc->pin, sizeof(rq->pin));
		return 0;
	}
	*answer = server_reply_error(c, MHD_HTTP_FORBIDDEN, AR_EAUTH,
	    sc->why);
	return -1;
}

/* A request of c was authenticated: no deadline for c any more. */
static void
server_conn_authed(struct server *srv, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct server_conn *sc;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sc = ci != NULL ? ci->socket_context : NULL;
	if (sc == NULL)
		return;
	pthread_mutex_lock(&srv->conn_lock);
	if (!sc->authed) {
		sc->authed = 1;
		srv->nunauth--;
	}
	pthread_mutex_unlock(&srv->conn_lock);
}

/*
 * The token, if one is configured. An address that failed too often is
 * refused (429) for a while without its token being looked at, so that
 * guessing is slow (8,084 guesses in 3 s were made on one connection);
 * log lines about an address are rate-limited (auth_backoff_*).
 */
static int
server_request_auth(struct server *srv, struct MHD_Connection *c,
    struct server_request *rq, const char *url, enum MHD_Result *answer)
{
	char why[160];
	uint64_t now = util_mono_ms(), wait_ms, held;
	int log, r, ok;

	if (!srv->opts.auth->enabled)
		return 0;
	pthread_mutex_lock(&srv->backoff_lock);
	r = auth_backoff_check(&srv->backoff, rq->peer, now, &wait_ms, &log,
	    &held);
	pthread_mutex_unlock(&srv->backoff_lock);
	if (r != 0) {
		if (log)
			log_warn("%s: refused for %llu ms after failed "
			    "authentications (%llu such lines held back)",
			    rq->peer, (unsigned long long)wait_ms,
			    (unsigned long long)held);
		snprintf(why, sizeof(why), "too many failed authentications "
		    "from %s: retry in %llu ms", rq->peer,
		    (unsigned long long)wait_ms);
		*answer = server_reply_text(c, MHD_HTTP_TOO_MANY_REQUESTS,
		    why);
		return -1;
	}
	ok = auth_check(srv->opts.auth, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	pthread_mutex_lock(&srv->backoff_lock);
	if (ok)
		auth_backoff_ok(&srv->backoff, rq->peer);
	else
		auth_backoff_fail(&srv->backoff, rq->peer, now, &log, &held);
	pthread_mutex_unlock(&srv->backoff_lock);
	if (ok)
		return 0;
	metrics_add(METRICS_AUTH_FAILURES, 1);
	if (log)
		log_warn("%s: %s: bad or missing token (%llu such lines held "
		    "back)", rq->peer, url, (unsigned long long)held);
	*answer = server_reply_text(c, MHD_HTTP_UNAUTHORIZED,
	    "bad or missing token");
	return -1;
}

/*
 * Without a token and without TLS, the server listens on loopback only,
 * and a peer is a user of this host: anyone could read every file. So
 * the owner of the peer's socket (auth_peer_uid) must be root, the
 * server's own user or the owner of data_dir; decided on the first
 * request of a connection and kept.
 */
static int
server_local_check(struct server *srv, struct MHD_Connection *c,
    struct server_request *rq, enum MHD_Result *answer)
{
	const union MHD_ConnectionInfo *ci, *ai;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct server_conn *sc;
	struct stat st;
	uint32_t uid;

	if (srv->opts.auth->enabled || srv->opts.auth->tls.enabled)
		return 0;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sc = ci != NULL ? ci->socket_context : NULL;
	if (sc == NULL) {
		*answer = MHD_NO;
		return -1;
	}
	if (!sc->uid_checked) {
		sc->uid_checked = 1;
		ai = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ai == NULL || ai->client_addr == NULL || sc->fd < 0 ||
		    getsockname(sc->fd, (struct sockaddr *)&local,
		    &llen) != 0 || auth_peer_uid(ai->client_addr,
		    (struct sockaddr *)&local, &uid) != 0) {
			sc->uid_refused = 1;
			snprintf(sc->uid_why, sizeof(sc->uid_why), "the %s has "
			    "no token and cannot tell which local user "
			    "connects (sock_diag): set auth_token_file",
			    srv->opts.role == WIRE_ROLE_RESCUE ? "rescue" :
			    "primary");
		} else if (uid != 0 && uid != (uint32_t)geteuid() &&
		    (fstat(srv->opts.rootfd, &st) != 0 ||
		    uid != (uint32_t)st.st_uid)) {
			sc->uid_refused = 1;
			snprintf(sc->uid_why, sizeof(sc->uid_why), "the %s has "
			    "no token: only root, its own user or the owner of "
			    "data_dir may connect from this host, not uid %lu",
			    srv->opts.role == WIRE_ROLE_RESCUE ? "rescue" :
			    "primary", (unsigned long)uid);
		}
		if (sc->uid_refused)
			log_warn("%s: %s", rq->peer, sc->uid_why);
	}
	if (!sc->uid_refused)
		return 0;
	*answer = server_reply_error(c, MHD_HTTP_FORBIDDEN, AR_EAUTH,
	    sc->uid_why);
	return -1;
}

/* First call of a request: headers only. Route and authenticate before
 * any body is accepted. */
static enum MHD_Result
server_request_begin(struct server *srv, struct MHD_Connection *c,
    const char *url, const char *method, void **req_cls)
{
	struct server_request *rq;
	const struct server_route *route;
	enum MHD_Result answer = MHD_NO;
	char esc[256];
	int method_ok = 0;

	rq = calloc(1, sizeof(*rq));
	if (rq == NULL)
		return MHD_NO;
	*req_cls = rq;
	server_peer_name(c, rq->peer, sizeof(rq->peer));
	/* The peer's key first, before a rescue counts the call. */
	if (server_peer_check(srv, c, rq, &answer) != 0)
		return answer;
	route = server_route_find(url, method, &method_ok);
	if (route == NULL) {
		log_warn("%s: %s %s: unknown path", rq->peer,
		    log_escape(method, strlen(method), esc, 32),
		    log_escape(url, strlen(url), esc + 32,
		    sizeof(esc) - 32));
		return server_reply_text(c, MHD_HTTP_NOT_FOUND,
		    "unknown path");
	}
	rq->route = route;
	if (!method_ok) {
		log_warn("%s: %s: wrong method", rq->peer, url);
		return server_reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "wrong method");
	}
	if (server_request_auth(srv, c, rq, url, &answer) != 0 ||
	    server_local_check(srv, c, rq, &answer) != 0)
		return answer;
	server_conn_authed(srv, c);
	metrics_add(METRICS_REQUESTS, 1);
	if (server_request_version(c, rq, &answer) != 0)
		return answer;
	/* As a server of an older version would answer. */
	if (rq->version < route->min_version) {
		log_warn("%s: %s: not in protocol version %u", rq->peer, url,
		    rq->version);
		return server_reply_text(c, MHD_HTTP_NOT_FOUND,
		    "unknown path");
	}
	/* A rescue counts a call as a sign of a live standby only once it
	 * proved to be one: a stray request must not stretch --timeout. */
	if (srv->opts.role == WIRE_ROLE_RESCUE)
		(void)server_notify(srv, SERVER_EV_CONTACT, NULL);
	if (route->frame != NULL) {
		assert(route->begin != NULL);
		if (route->begin(srv, rq) != 0 ||
		    wire_reader_init(&rq->reader,
		    WIRE_HDR + WIRE_DATA_CHUNK) != 0)
			return MHD_NO;
		assert(rq->stream != NULL && rq->body_max > 0);
	}
	return MHD_YES;
}

/* A piece of the body: split it into frames for the route. */
static enum MHD_Result
server_request_body(struct server_request *rq, const char *upload,
    size_t n)
{
	int r;

	if (rq->route->frame == NULL) {
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST,
		    "unexpected body");
		return MHD_YES;
	}
	if (rq->status != 0)
		return MHD_YES;	/* discard; answered at the end */
	rq->body += n;
	if (rq->body > rq->body_max) {
		server_request_fail(rq, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body too large");
		return MHD_YES;
	}
	r = wire_reader_feed(&rq->reader, upload, n, rq->route->frame, rq);
	if (r != 0)
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "malformed "
		    "request body");
	return MHD_YES;
}

static enum MHD_Result
server_handle_run(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	struct server *srv = cls;
	struct server_request *rq = *req_cls;
	size_t n;

	(void)version;
	if (rq == NULL)
		return server_request_begin(srv, c, url, method, req_cls);
	/* libmicrohttpd calls again only when the first call queued no
	 * answer, which an unknown path has; refuse it all the same. */
	if (rq->route == NULL)
		return MHD_NO;
	if (*upload_size > 0) {
		n = *upload_size;
		*upload_size = 0;
		return server_request_body(rq, upload, n);
	}
	/* The request is complete. */
	if (rq->status == 0 && rq->route->frame != NULL &&
	    !wire_reader_idle(&rq->reader))
		server_request_fail(rq, MHD_HTTP_BAD_REQUEST, "truncated "
		    "request body");
	if (rq->status == 0 && rq->route->end != NULL)
		rq->route->end(srv, rq);
	if (rq->status != 0) {
		log_warn("%s: %s: %s", rq->peer, url, rq->why);
		return server_reply_text(c, rq->status, rq->why);
	}
	return rq->route->reply(c, srv, rq);
}

static enum MHD_Result
server_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **req_cls)
{
	enum MHD_Result r;

	guard_enter("answering a request");
	r = server_handle_run(cls, c, url, method, version, upload,
	    upload_size, req_cls);
	guard_leave();
	return r;
}

static void
server_completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct server_request *rq = *req_cls;

	(void)c;
	guard_enter("closing a request");
	/* Only a final batch that went out whole lets its standby
	 * confirm: the confirmation is the answer to it. */
	if (rq != NULL && rq->final_batch &&
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		(void)server_notify(cls, SERVER_EV_FINAL_SENT, rq->q.id);
	if (rq != NULL)
		serve_changes_completed(cls, rq);
	if (rq != NULL)
		server_request_free(rq);
	*req_cls = NULL;
	guard_leave();
}

/*
 * A connection starts (before a TLS handshake) or ends. It is tracked
 * until its first authenticated request (server_conn_authed). With TLS,
 * libmicrohttpd asks a client for a certificate only when given a trust
 * store, which pins are not: ask for one here, and let the check decide
 * (a client without one gets a 403 it can read, not a failed handshake).
 * The reaper shuts sockets down under conn_lock, and CLOSED comes
 * before libmicrohttpd closes the socket, so it never touches a
 * descriptor that was closed and reused.
 */
static void
server_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct server_conn *sc = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (sc == NULL)
			return;
		pthread_mutex_lock(&srv->conn_lock);
		if (sc->prev != NULL)
			sc->prev->next = sc->next;
		else
			srv->conns = sc->next;
		if (sc->next != NULL)
			sc->next->prev = sc->prev;
		if (!sc->authed)
			srv->nunauth--;
		pthread_mutex_unlock(&srv->conn_lock);
		free(sc);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci != NULL && ci->tls_session != NULL)
		gnutls_certificate_server_set_request(ci->tls_session,
		    GNUTLS_CERT_REQUEST);
	sc = calloc(1, sizeof(struct server_conn));
	*socket_context = sc;
	if (sc == NULL)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	sc->fd = ci != NULL ? ci->connect_fd : -1;
	sc->start_ms = util_mono_ms();
	pthread_mutex_lock(&srv->conn_lock);
	sc->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = sc;
	srv->conns = sc;
	srv->nunauth++;
	pthread_mutex_unlock(&srv->conn_lock);
}

/*
 * Accept a connection only while fewer than max_connections minus a
 * quarter of them are waiting to authenticate: the rest are kept for
 * standbys that proved who they are.
 */
static enum MHD_Result
server_conn_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct server *srv = cls;
	unsigned max = srv->opts.cfg->max_connections, limit;
	int ok;

	(void)addr;
	(void)len;
	limit = max - max / 4;
	pthread_mutex_lock(&srv->conn_lock);
	ok = srv->nunauth < limit;
	pthread_mutex_unlock(&srv->conn_lock);
	return ok ? MHD_YES : MHD_NO;
}

/* Shut down the connections not authenticated within header_timeout. */
static void *
server_conn_reaper(void *arg)
{
	struct server *srv = arg;
	uint64_t limit_ms = srv->opts.cfg->header_timeout_ns / 1000000u;
	uint64_t now, logged = 0, closed = 0;
	struct server_conn *sc;
	struct timespec ts;

	pthread_mutex_lock(&srv->conn_lock);
	while (!srv->reaper_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SERVER_REAP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&srv->conn_cond, &srv->conn_lock,
		    &ts);
		now = util_mono_ms();
		for (sc = srv->conns; sc != NULL; sc = sc->next) {
			if (sc->authed || sc->reaped || sc->fd < 0 ||
			    now - sc->start_ms < limit_ms)
				continue;
			(void)shutdown(sc->fd, SHUT_RDWR);
			sc->reaped = 1;
			closed++;
		}
		if (closed > 0 && (logged == 0 ||
		    now - logged >= SERVER_REAP_LOG_MS)) {
			log_warn("closed %llu connection(s) that did not "
			    "authenticate within header_timeout (%llu ms)",
			    (unsigned long long)closed,
			    (unsigned long long)limit_ms);
			closed = 0;
			logged = now;
		}
	}
	pthread_mutex_unlock(&srv->conn_lock);
	return NULL;
}

static void server_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
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
/* The daemon */

static int
server_bind_listen(const struct config_addr *addr, int *fdp, char *err,
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

/* A condition variable on the monotonic clock (the reaper's waits). */
static void
server_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

int
server_start(const struct server_opts *opts, struct server **out, char *err,
    size_t errlen)
{
	const struct config_primary *cfg = opts->cfg;
	const struct tls *tls = &opts->auth->tls;
	struct MHD_OptionItem tls_opts[4];
	struct server *srv;
	unsigned timeout_s;
	char own[PIN_TEXT_LEN + 1];
	int r;

	assert(opts->generation != NULL && gen_valid(opts->generation));
	assert(opts->role == WIRE_ROLE_PRIMARY ||
	    opts->role == WIRE_ROLE_RESCUE);
	r = auth_listen_check(opts->auth, &cfg->listen, cfg->tls.mode, err,
	    errlen);
	if (r != 0)
		return r;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -AR_ENOMEM;
	srv->opts = *opts;
	/* A cache that cannot be opened is no cache: appends then hash
	 * the standby's prefix from the file. */
	srv->cachefd = -1;
	if (opts->cache_dir != NULL && fs_open_dir(opts->cache_dir,
	    &srv->cachefd) != 0) {
		log_warn("block cache '%s': %s: not used", opts->cache_dir,
		    strerror(errno));
		srv->cachefd = -1;
	}
	/* Without it (out of memory), every use reads its entry. */
	if (srv->cachefd >= 0 && blocks_mem_new(&srv->blocksmem) != 0)
		srv->blocksmem = NULL;
	memcpy(srv->generation, opts->generation, WIRE_GEN_LEN);
	pthread_mutex_init(&srv->lock, NULL);
	rate_init(&srv->bw, cfg->bwlimit, NULL);
	pthread_mutex_init(&srv->backoff_lock, NULL);
	pthread_mutex_init(&srv->conn_lock, NULL);
	server_cond_init(&srv->conn_cond);
	srv->phase = SERVER_PHASE_SPOOL;
	srv->released = opts->spool != NULL ?
	    spool_durable_seq(opts->spool) : 0;
	r = server_bind_listen(&cfg->listen, &srv->listen_fd, err, errlen);
	if (r != 0) {
		rate_release(&srv->bw);
		if (srv->cachefd >= 0)
			close(srv->cachefd);
		blocks_mem_free(srv->blocksmem);
		free(srv);
		return r;
	}
	timeout_s = (unsigned)(cfg->timeout_ns / 1000000000u);
	if (timeout_s == 0)
		timeout_s = 1;
	/* The TLS options, or none (an array that only ends). */
	memset(tls_opts, 0, sizeof(tls_opts));
	tls_opts[0].option = MHD_OPTION_END;
	if (tls->enabled) {
		tls_opts[0] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert };
		tls_opts[1] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key };
		tls_opts[2] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
		tls_opts[3].option = MHD_OPTION_END;
	}
	srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    (tls->enabled ? MHD_USE_TLS : 0), 0,
	    server_conn_accept, srv, server_handle, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
	    MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, server_conn_notify, srv,
	    MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP%s "
		    "server", cfg->listen.text, tls->enabled ? "S" : "");
		close(srv->listen_fd);
		rate_release(&srv->bw);
		if (srv->cachefd >= 0)
			close(srv->cachefd);
		blocks_mem_free(srv->blocksmem);
		free(srv);
		return -AR_EBIND;
	}
	if (pthread_create(&srv->reaper, NULL, server_conn_reaper, srv) == 0)
		srv->reaper_started = 1;
	else
		log_warn("no thread to close connections past header_timeout: "
		    "%s", strerror(errno));
	if (tls->enabled) {
		pin_format(tls->own, own);
		log_info("TLS 1.3 on %s with key %s; standbys trusted by %s%s%s",
		    cfg->listen.text, own, tls->trust.n > 0 ? "pin" : "",
		    tls->trust.n > 0 && tls->ca != NULL ? " or " : "",
		    tls->ca != NULL ? "tls_ca" : "");
	}
	*out = srv;
	return 0;
}

void
server_get_stats(struct server *srv, struct server_stats *st)
{
	pthread_mutex_lock(&srv->lock);
	*st = srv->stats;
	pthread_mutex_unlock(&srv->lock);
}

unsigned
server_connections(struct server *srv)
{
	const union MHD_DaemonInfo *di;

	di = MHD_get_daemon_info(srv->mhd,
	    MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di != NULL ? di->num_connections : 0;
}

uint64_t
server_released(struct server *srv)
{
	uint64_t seq;

	pthread_mutex_lock(&srv->lock);
	seq = srv->released;
	pthread_mutex_unlock(&srv->lock);
	return seq;
}

void
server_release(struct server *srv, uint64_t seq)
{
	pthread_mutex_lock(&srv->lock);
	if (seq > srv->released)
		srv->released = seq;
	pthread_mutex_unlock(&srv->lock);
	serve_changes_wake(srv);
}

void
server_unrecorded(struct server *srv, uint64_t lost)
{
	pthread_mutex_lock(&srv->lock);
	srv->unrecorded = 1;
	if (lost > srv->lost)
		srv->lost = lost;
	pthread_mutex_unlock(&srv->lock);
	serve_changes_wake(srv);
}

void
server_recorded(struct server *srv, uint64_t seq)
{
	pthread_mutex_lock(&srv->lock);
	srv->unrecorded = 0;
	srv->nsent = 0;
	pthread_mutex_unlock(&srv->lock);
	server_release(srv, seq);
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
	serve_changes_wake(srv);
	assert(srv->waiters == NULL);
	if (srv->reaper_started) {
		pthread_mutex_lock(&srv->conn_lock);
		srv->reaper_stop = 1;
		pthread_cond_signal(&srv->conn_cond);
		pthread_mutex_unlock(&srv->conn_lock);
		pthread_join(srv->reaper, NULL);
	}
	MHD_stop_daemon(srv->mhd);
	pthread_mutex_destroy(&srv->lock);
	rate_release(&srv->bw);
	pthread_mutex_destroy(&srv->backoff_lock);
	pthread_cond_destroy(&srv->conn_cond);
	pthread_mutex_destroy(&srv->conn_lock);
	close(srv->listen_fd);
	if (srv->cachefd >= 0)
		close(srv->cachefd);
	blocks_mem_free(srv->blocksmem);
	free(srv);
}
