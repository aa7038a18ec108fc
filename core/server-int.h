/*
 * server-int.h: what the three files of the server share, and nothing
 * else includes.
 *
 *   server.c         the daemon: listening socket, libmicrohttpd and its
 *                    connection limits, authentication, the routing
 *                    table, request lifecycle, hello, streamed answers
 *   serve-files.c    GET /v1/manifest, POST /v1/files, POST /v1/delta
 *   serve-changes.c  GET /v1/changes: batches from the spool, long-polls,
 *                    and a rescue's final batch
 */
#ifndef ASYNCREP_SERVER_INT_H
#define ASYNCREP_SERVER_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "auth.h"
#include "blocks.h"
#include "hash.h"
#include "pin.h"
#include "query.h"
#include "rate.h"
#include "server.h"
#include "wire.h"

struct blocks;
struct changes;
struct compress_out;
struct delta_gen;
struct delta_loadsig;
struct manifest;
struct server_request;

/* Our pending output: one data frame plus the largest metadata frame. */
#define SERVER_STREAM_OUT (WIRE_HDR + WIRE_DATA_CHUNK + 32768)
/* Standbys remembered as sent to compare while the spool cannot record;
 * one forgotten is sent again: a compare too many, never one too few. */
#define SERVER_SENT_MAX 64
/* Under bwlimit, the smallest piece of a transfer sent at once. */
#define SERVER_PACE_MIN 4096
/* Standby ids a primary without a standbys list accepts (ack files). */
#define SERVER_IDS_MAX 64

/* A standby sent to compare the whole tree (G) while the spool could
 * not record. */
struct server_sent {
	char id[QUERY_ID_MAX + 1];
	uint64_t pos;		/* the released position it stood at */
	uint64_t lost;		/* server.lost when its G was made */
	uint64_t stamp;		/* for replacing the oldest */
};

struct server {
	struct MHD_Daemon *mhd;
	int listen_fd;
	struct server_opts opts;
	char generation[WIRE_GEN_LEN + 1];
	pthread_mutex_t lock;		/* released, waiters, stopping,
					 * phase, stats */
	uint64_t released;		/* changes standbys may see */
	struct server_request *waiters;	/* suspended long-polls */
	int stopping;
	enum server_phase phase;
	struct server_stats stats;
	/* the primary's spool cannot record (server_unrecorded) */
	int unrecorded;
	uint64_t lost;			/* changes it could not record */
	struct server_sent sent[SERVER_SENT_MAX];
	size_t nsent;
	uint64_t sent_stamp;
	struct rate bw;			/* bwlimit: file data to all standbys */
	/* Delta answers holding a signature in memory (max_deltas), and
	 * the signature bytes they hold. */
	unsigned ndeltas;
	uint64_t sig_bytes;
	/* Failed authentications per address (auth_backoff_*). */
	pthread_mutex_t backoff_lock;
	struct auth_backoff backoff;
	/* Open connections (struct server_conn, server.c), those not yet
	 * authenticated, and the thread that closes those too slow. */
	pthread_mutex_t conn_lock;
	pthread_cond_t conn_cond;
	struct server_conn *conns;
	unsigned nunauth;
	/* Ids seen in /v1/changes when no standbys list is set: at most
	 * SERVER_IDS_MAX (under lock). */
	char ids[SERVER_IDS_MAX][QUERY_ID_MAX + 1];
	size_t nids;
	int reaper_stop;
	int reaper_started;
	pthread_t reaper;
	int cachefd;			/* the block cache, or -1 */
	struct blocks_mem *blocksmem;	/* its entries kept, or NULL */
};

/* ---------------------------------------------------------------- */
/* Streamed answers (server.c runs them, the serve-*.c fill them) */

enum server_stream_kind {
	SERVER_STREAM_MANIFEST,	/* GET /v1/manifest */
	SERVER_STREAM_FILES,	/* POST /v1/files: whole files in order */
	SERVER_STREAM_DELTA,	/* POST /v1/delta: one librsync delta */
	SERVER_STREAM_APPEND,	/* POST /v1/append: one file's tail */
	SERVER_STREAM_CHANGES,	/* GET /v1/changes: one coalesced batch */
	SERVER_STREAM_GONE,	/* GET /v1/changes: full compare needed */
	SERVER_STREAM_FINAL,	/* rescue: compare everything, then C */
	SERVER_STREAM_COMPLETE,	/* rescue: the standby holds it all: C */
};

/* What is being sent of the current request of a files or delta answer. */
enum serve_files_state {
	SERVE_FILES_NEXT,	/* start the next request (or end with Z) */
	SERVE_FILES_SENDING,	/* F sent, D frames going out */
	SERVE_FILES_DONE,	/* T or R sent for this request */
};

/* Where a batch of changes stands. */
enum serve_changes_step {
	SERVE_CHANGES_RENAMES,	/* M frames, in order */
	SERVE_CHANGES_PATHS,	/* U, K and S frames of the touched paths */
	SERVE_CHANGES_ROOT,	/* A frame of the root (WIRE_V_FIDELITY on) */
	SERVE_CHANGES_END,	/* Z, the position after the batch */
};

struct idnames_sent;

struct server_stream {
	enum server_stream_kind kind;
	struct server *srv;
	uint32_t version;	/* the request's protocol version */
	size_t out_len, out_pos;
	int finished;		/* nothing more after out drains */
	enum server_phase rphase;	/* rescue phase when the answer began */
	struct compress_out *z;	/* the body goes out as zstd, or NULL */

	struct manifest *manifest;
	struct idnames_sent *names;	/* changes, WIRE_V_NAMES: ids named */

	/* files and delta */
	char *paths;		/* NUL-separated request paths */
	size_t npaths, cur;
	size_t paths_off;	/* offset of the current path in paths */
	enum serve_files_state fstate;
	int fd;
	struct stat st0;	/* stat at open */
	struct hash_ctx hash;
	uint64_t sent;
	uint64_t answered;
	struct delta_gen *gen;
	int sums;		/* /v1/sums: F and T, the data not sent */
	uint64_t slice;		/* bytes it read in this call (sums) */
	int delta_slot;		/* counted in srv->ndeltas */
	uint64_t sig_bytes;	/* counted in srv->sig_bytes */

	/* append (serve-append.c) */
	uint64_t abase;		/* the size the standby holds */
	uint8_t aroot[32];	/* and its root */
	uint32_t aretry;	/* answer R with this reason, or 0 */
	uint64_t anext;		/* offset of the next block to send */
	struct blocks *ablk;	/* the new version's list, open at anext */
	uint8_t *abuf;		/* one block's bytes */
	uint32_t aflags;	/* the cache entry's flags */
	struct blocks_disk adisk; /* the cache file ablk came from */
	/* the changed-blocks path (/v1/blocks, WIRE_V_BLOCKS) */
	int ablocks;		/* this is a /v1/blocks answer */
	struct blocks *aold;	/* the cached list of the standby's version */
	uint64_t abuf_off;	/* file offset of abuf's bytes */
	size_t abuf_len;	/* bytes in abuf */
	uint64_t asent;		/* blocks sent */

	/* changes */
	struct changes *changes;
	uint64_t upto;		/* the position after this batch */
	enum serve_changes_step step;
	size_t idx;
	uint64_t oldest_ns;	/* recording time of the batch's first
				 * change, for a W frame (v6 on); 0: none */

	/* Last: server_stream_new zeroes what comes before it, not these
	 * 288 KiB, which are written before they are read. */
	uint8_t out[SERVER_STREAM_OUT];
};

struct server_stream *server_stream_new(struct server *srv,
    enum server_stream_kind kind);
void server_stream_free(void *cls);
/* Account for n bytes a wire_put_* wrote at out + out_len (or its error). */
int server_stream_put(struct server_stream *s, int n);
/* Queue an F or U frame (frame) for path, of type (WALK_*) and stat st;
 * target is a symlink's, NULL otherwise. */
int server_stream_put_entry(struct server_stream *s, uint8_t frame, int type,
    const struct stat *st, const char *path, size_t len, const char *target,
    size_t target_len);

/* ---------------------------------------------------------------- */
/* Requests */

struct server_route;

/* Per-request state, from the first call of the handler to completion. */
struct server_request {
	const struct server_route *route;
	uint32_t version;	/* protocol version of this request (>= 1) */
	uint32_t offer_lo, offer_hi;	/* hello: the standby's range */
	int status;		/* HTTP status of an error seen, or 0 */
	char why[160];		/* its explanation, sent as the body */
	struct wire_reader reader;
	uint64_t body;		/* bytes of body received */
	uint64_t body_max;	/* bytes of body accepted */
	struct server_stream *stream;	/* built while the body arrives */
	size_t paths_len, paths_cap;
	int got_req;		/* delta: the N frame was seen */
	int sig_skip;		/* delta: signature ignored, answer R */
	struct delta_loadsig *loadsig;
	char peer[64];
	char pin[PIN_TEXT_LEN + 1];	/* its TLS key, "" without TLS */

	/* GET /v1/changes: the standby's position and its long-poll */
	struct MHD_Connection *conn;
	int parsed;		/* q and deadline_ms are set */
	int acked;		/* q.since was recorded in the spool */
	int ack_after;		/* ... once the answer went out
				 * (serve_changes_completed) */
	int final_batch;	/* the answer is a rescue's final batch */
	struct query_changes q;
	uint64_t deadline_ms;
	int suspended;		/* on srv->waiters */
	uint64_t lost_seen;	/* unrecorded: its compare covered this */
	struct server_request *next_waiter;
};

/*
 * One row of the routing table: the first call (headers only) finds the
 * row by path and method; begin (POST only) readies the body, whose
 * frames go to frame; end runs once the body is complete and may fail
 * the request; reply answers it (not called after a failure).
 */
struct server_route {
	const char *method;
	const char *path;
	int negotiates;		/* takes WIRE_HDR_VERSIONS, not _VERSION */
	uint32_t min_version;	/* added by this version: unknown below */
	int (*begin)(struct server *srv, struct server_request *rq);
	wire_frame_cb *frame;
	void (*end)(struct server *srv, struct server_request *rq);
	enum MHD_Result (*reply)(struct MHD_Connection *c, struct server *srv,
	    struct server_request *rq);
};

/* Remember the first error of a request; it is answered at the end. */
void server_request_fail(struct server_request *rq, int status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
enum MHD_Result server_reply_text(struct MHD_Connection *c, int status,
    const char *text);
/* An X frame with code err (enum ar_err) and msg, under HTTP status. */
enum MHD_Result server_reply_error(struct MHD_Connection *c, int status,
    int err, const char *msg);
/* Answer with rq->stream, which the response owns from now on. */
enum MHD_Result server_reply_stream(struct MHD_Connection *c,
    struct server_request *rq);
/* Tell the rescue about ev (enum server_event) of standby id (NULL:
 * not named); returns its answer, 1 without a rescue. */
int server_notify(struct server *srv, int ev, const char *id);

/* serve-files.c */
enum MHD_Result serve_files_manifest(struct MHD_Connection *c,
    struct server *srv, struct server_request *rq);
int serve_files_begin(struct server *srv, struct server_request *rq);
/* /v1/sums: a /v1/files request whose answer leaves out the D frames. */
int serve_files_sums_begin(struct server *srv, struct server_request *rq);
int serve_files_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len);
void serve_files_end(struct server *srv, struct server_request *rq);
int serve_files_delta_begin(struct server *srv, struct server_request *rq);
int serve_files_delta_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len);
void serve_files_delta_end(struct server *srv, struct server_request *rq);
enum MHD_Result serve_files_reply(struct MHD_Connection *c,
    struct server *srv, struct server_request *rq);
/* Produce the next frames of a files or delta answer into s->out. */
int serve_files_produce(struct server_stream *s);

/* serve-append.c */
int serve_append_begin(struct server *srv, struct server_request *rq);
int serve_append_blocks_begin(struct server *srv, struct server_request *rq);
int serve_append_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len);
void serve_append_end(struct server *srv, struct server_request *rq);
int serve_append_produce(struct server_stream *s);
void serve_append_free(struct server_stream *s);
/* Record b (ended), the list of the file at path of stat st, in the
 * block cache, with flags (enum blocks_flag). */
void serve_append_cache_put(struct server *srv, const char *path,
    const struct stat *st, const struct blocks *b, uint32_t flags);

/* serve-changes.c */
enum MHD_Result serve_changes_reply(struct MHD_Connection *c,
    struct server *srv, struct server_request *rq);
/* Produce the next frames of a changes answer (or G, C) into s->out. */
int serve_changes_produce(struct server_stream *s);
/* Resume the long-polls that have something to see or whose time is up;
 * all of them when stopping. */
void serve_changes_wake(struct server *srv);
/* The answer to rq ended (MHD's completion): the ack it put off. */
void serve_changes_completed(struct server *srv, struct server_request *rq);

#endif
