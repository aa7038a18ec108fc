/*
 * serve-changes.c: GET /v1/changes (PROTOCOL.md "Continuous
 * replication"). It reads the standby's position, records it as the
 * acknowledgement that trims the spool, holds the request as a long-poll
 * until the primary releases more, and answers one coalesced batch, G
 * (compare everything) for a position it cannot serve, or, from a
 * rescue, the final batch (a whole compare, then C) and C again once the
 * standby holds it.
 */
#include <assert.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include "changes.h"
#include "config.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "idnames.h"
#include "log.h"
#include "manifest.h"
#include "query.h"
#include "server-int.h"
#include "spool.h"
#include "util.h"
#include "walk.h"
#include "xattr.h"

/* Touched paths (and renames) in one answer to /v1/changes. */
#define SERVE_CHANGES_MAX 4096
/* Fill the stream's output up to about this before handing it out. */
#define SERVE_CHANGES_FILL 16384

/* The K frame: path is gone (or never served). */
static int
serve_changes_put_gone(struct server_stream *s, const char *path, size_t len)
{
	return server_stream_put(s, wire_put_pathop(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, WIRE_GONE_PATH, path, len, NULL, 0));
}

/* The S frame: compare the subtree at path ("" the whole tree). */
static int
serve_changes_put_rescan(struct server_stream *s, const char *path,
    size_t len)
{
	return server_stream_put(s, wire_put_pathop(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, WIRE_RESCAN, path, len, NULL, 0));
}

/* WIRE_V_FIDELITY: the Y frame of dirfd/name (NULL: dirfd) before its
 * U or A frame, when it has xattrs; WIRE_V_NAMES: then the I frames of
 * the ids of st and of its ACLs this batch has not named yet. */
static int
serve_changes_put_xattrs(struct server_stream *s, int dirfd,
    const char *name, const char *path, size_t len, const struct stat *st)
{
	struct xattr_set *xs;
	int n;

	if (s->version < WIRE_V_FIDELITY)
		return 0;
	if (s->version >= WIRE_V_NAMES && s->names == NULL &&
	    idnames_sent_new(&s->names) != 0)
		return -AR_ENOMEM;
	/* 200 KiB: not on the stack of a pool thread. */
	xs = malloc(sizeof(*xs));
	if (xs == NULL)
		return -AR_ENOMEM;
	n = manifest_put_xattrs(s->out + s->out_len,
	    sizeof(s->out) - s->out_len, dirfd, name, path, len, xs,
	    s->srv->opts.xattrs_hidden);
	n = server_stream_put(s, n);
	if (n == 0 && s->names != NULL)
		n = server_stream_put(s, idnames_put(s->names,
		    (uint32_t)st->st_uid, (uint32_t)st->st_gid, xs,
		    s->out + s->out_len, sizeof(s->out) - s->out_len));
	free(xs);
	return n;
}

/*
 * path cannot be reached: a directory above it is gone, or is no
 * directory any more. When the batch touches that directory itself, its
 * own frame says what became of it. When it does not, what moved or
 * removed it is not in the journal yet (the file system runs ahead of
 * the watcher): a K frame would make the standby delete path with all
 * it holds there, and the rename journaled next would move the rest
 * without it (a deep tree renamed twice lost its files so). The standby
 * compares the deepest directory above path that is still one instead:
 * the root at worst.
 */
static int
serve_changes_put_unreachable(struct server_stream *s, const char *path,
    size_t len)
{
	char up[LIMIT_PATH_MAX + 1];
	struct stat st;
	const char *base;
	size_t l = len;
	int dirfd, isdir;

	assert(len <= LIMIT_PATH_MAX);	/* a spool record's path */
	while (l > 0) {
		while (l > 0 && path[l - 1] != '/')
			l--;
		if (l == 0)
			break;
		l--;		/* path[0, l) is a directory above it */
		if (changes_has(s->changes, path, l))
			return 0;
		memcpy(up, path, l);
		up[l] = '\0';
		if (fs_open_parent(s->srv->opts.rootfd, up, &dirfd, &base) !=
		    0)
			continue;
		isdir = fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode);
		close(dirfd);
		if (isdir)
			return serve_changes_put_rescan(s, path, l);
	}
	return serve_changes_put_rescan(s, "", 0);
}

/* The U frame (with S for a directory to rescan) or K frame that tells
 * the current state of path. */
static int
serve_changes_put_state(struct server_stream *s, const char *path,
    size_t len, int rescan)
{
	char target[WIRE_TARGET_MAX + 1];
	struct stat st;
	const char *base;
	int dirfd, type, r;
	ssize_t tl = 0;

	if (fs_open_parent(s->srv->opts.rootfd, path, &dirfd, &base) != 0)
		return serve_changes_put_unreachable(s, path, len);
	/* Excluded as what it is now: a pattern for directories does not
	 * hide a file of that name. Special files only from the version
	 * that carries them. */
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
	    S_ISLNK(st.st_mode) || (s->version >= WIRE_V_FIDELITY &&
	    walk_special_of(st.st_mode) != 0)) ||
	    exclude_match(s->srv->opts.exclude, path, len,
	    S_ISDIR(st.st_mode))) {
		close(dirfd);
		return serve_changes_put_gone(s, path, len);
	}
	type = S_ISREG(st.st_mode) ? WALK_FILE : S_ISDIR(st.st_mode) ?
	    WALK_DIR : S_ISLNK(st.st_mode) ? WALK_LINK :
	    walk_special_of(st.st_mode);
	if (type == WALK_LINK) {
		tl = readlinkat(dirfd, base, target, WIRE_TARGET_MAX);
		if (tl <= 0) {
			close(dirfd);
			return serve_changes_put_gone(s, path, len);
		}
	}
	/* A name of a hard-link group: which others it has, only a
	 * manifest of the whole tree can tell. */
	if (s->version >= WIRE_V_FIDELITY && type == WALK_FILE &&
	    st.st_nlink > 1) {
		close(dirfd);
		return serve_changes_put_rescan(s, "", 0);
	}
	r = serve_changes_put_xattrs(s, dirfd, base, path, len, &st);
	close(dirfd);
	if (r != 0)
		return r;
	r = server_stream_put_entry(s, WIRE_STATE, type, &st, path, len,
	    type == WALK_LINK ? target : NULL, (size_t)tl);
	if (r == 0 && rescan && type == WALK_DIR)
		r = serve_changes_put_rescan(s, path, len);
	return r;
}

/* The A frame: the root's own state, which every batch may change (its
 * mtime moves with each name created or removed at the top). */
static int
serve_changes_put_root(struct server_stream *s)
{
	struct stat st;

	int r;

	if (fstat(s->srv->opts.rootfd, &st) != 0)
		return -AR_EIO;
	r = serve_changes_put_xattrs(s, s->srv->opts.rootfd, NULL, "", 0,
	    &st);
	if (r != 0)
		return r;
	return server_stream_put_entry(s, WIRE_ATTRS, WALK_DIR, &st, "", 0,
	    NULL, 0);
}

/* G and C: the payload of Z (a position), under another type. A rescue's
 * final batch (FINAL) asks for a whole compare first. */
static int
serve_changes_put_position(struct server_stream *s)
{
	int n = 0;

	assert(s->out_len == 0);
	if (s->kind == SERVER_STREAM_FINAL)
		n = wire_put_pathop(s->out, sizeof(s->out), WIRE_RESCAN, "", 0,
		    NULL, 0);
	if (n < 0)
		return n;
	s->out_len = (size_t)n;
	n = wire_put_end(s->out + s->out_len, sizeof(s->out) - s->out_len,
	    s->upto);
	if (n < 0)
		return n;
	s->out[s->out_len] = s->kind == SERVER_STREAM_GONE ? WIRE_GONE :
	    WIRE_COMPLETE;
	s->out_len += (size_t)n;
	s->finished = 1;
	return 0;
}

/* W: the payload of a Z frame, another type. */
static int
serve_changes_put_when(struct server_stream *s)
{
	int n;

	n = wire_put_end(s->out + s->out_len, sizeof(s->out) - s->out_len,
	    s->oldest_ns);
	if (n < 0)
		return n;
	s->out[s->out_len] = WIRE_WHEN;
	s->out_len += (size_t)n;
	return 0;
}

int
serve_changes_produce(struct server_stream *s)
{
	const char *p, *p2;
	size_t len, len2;
	int r = 0, rescan;

	if (s->kind == SERVER_STREAM_GONE || s->kind == SERVER_STREAM_FINAL ||
	    s->kind == SERVER_STREAM_COMPLETE)
		return serve_changes_put_position(s);
	assert(s->kind == SERVER_STREAM_CHANGES && s->changes != NULL);
	while (r == 0 && !s->finished && s->out_len < SERVE_CHANGES_FILL) {
		switch (s->step) {
		case SERVE_CHANGES_RENAMES:
			if (changes_full(s->changes)) {
				r = serve_changes_put_rescan(s, "", 0);
				s->step = SERVE_CHANGES_END;
				break;
			}
			if (s->idx == changes_nrenames(s->changes)) {
				s->step = SERVE_CHANGES_PATHS;
				s->idx = 0;
				break;
			}
			changes_rename(s->changes, s->idx++, &p, &len, &p2,
			    &len2);
			r = server_stream_put(s, wire_put_pathop(s->out +
			    s->out_len, sizeof(s->out) - s->out_len, WIRE_MOVE,
			    p, len, p2, len2));
			break;
		case SERVE_CHANGES_PATHS:
			if (s->idx == changes_npaths(s->changes)) {
				s->step = SERVE_CHANGES_ROOT;
				break;
			}
			if (changes_path(s->changes, s->idx++, &p, &len,
			    &rescan))
				r = serve_changes_put_state(s, p, len, rescan);
			break;
		case SERVE_CHANGES_ROOT:
			s->step = SERVE_CHANGES_END;
			if (s->version >= WIRE_V_FIDELITY)
				r = serve_changes_put_root(s);
			break;
		case SERVE_CHANGES_END:
			if (s->oldest_ns != 0) {
				r = serve_changes_put_when(s);
				if (r != 0)
					break;
			}
			r = server_stream_put(s, wire_put_end(s->out +
			    s->out_len, sizeof(s->out) - s->out_len, s->upto));
			s->finished = 1;
			break;
		}
	}
	return r;
}

/* ---------------------------------------------------------------- */
/* Requests */

/* Parse since, wait, id, gen and ack of a /v1/changes request; the
 * long-poll runs from now. */
static int
serve_changes_args(struct MHD_Connection *c, struct server_request *rq)
{
	const char *ack;
	int r;

	r = query_changes_parse(
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "gen"),
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id"),
	    &rq->q);
	if (r != 0)
		return r;
	/* ack= came with the lanes: a peer of an older version that
	 * sends it is broken, and its position would mean nothing. */
	ack = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ack");
	if (ack != NULL && rq->version < WIRE_V_LANES)
		return -AR_EPROTO;
	r = query_changes_ack(ack, &rq->q);
	if (r != 0)
		return r;
	rq->deadline_ms = util_mono_ms() + rq->q.wait_ms;
	return 0;
}

/* Gather records (since, released] into a batch; upto is where the
 * standby stands once it applied it. */
struct serve_changes_gather {
	struct changes *ch;
	uint64_t upto;
	uint64_t oldest_ns;	/* time_ns of the first record taken */
};

static int
serve_changes_gather_rec(void *arg, const struct spool_rec *r)
{
	struct serve_changes_gather *g = arg;
	int e;

	/* A full batch stops spool_read before r (its non-zero return
	 * that is no error); the standby asks for the rest next. */
	if (!changes_room(g->ch))
		return 1;
	e = changes_add(g->ch, r);
	if (e != 0)
		return e;
	if (g->oldest_ns == 0)
		g->oldest_ns = r->time_ns;
	g->upto = r->seq;
	return 0;
}

/* Answer G, C or the final batch: a position, no changes to read. */
static enum MHD_Result
serve_changes_position(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq, enum server_stream_kind kind, uint64_t seq)
{
	assert(kind == SERVER_STREAM_GONE || kind == SERVER_STREAM_FINAL ||
	    kind == SERVER_STREAM_COMPLETE);
	rq->stream = server_stream_new(srv, kind);
	if (rq->stream == NULL)
		return MHD_NO;
	rq->stream->upto = seq;
	return server_reply_stream(c, rq);
}

/*
 * While the spool cannot record, a standby at the end of the journal may
 * lack changes that nothing recorded: it is sent to compare the whole
 * tree (G) unless it was sent at this position already and no change was
 * lost since. Its compare leaves it one before the end (the hello says
 * so), so it is back at the end only through the journal's last batch,
 * after a complete compare; one restarted halfway holds the end, past
 * the hello's position, and compares at its hello. Returns 1 when G is
 * the answer (and remembers it), else 0 with rq->lost_seen set: the
 * request may wait until more is lost. Under srv->lock.
 */
static int
serve_changes_unrecorded(struct server *srv, struct server_request *rq)
{
	struct server_sent *e = NULL, *oldest = NULL;
	size_t i;

	rq->lost_seen = srv->lost;
	if (!srv->unrecorded || rq->q.since != srv->released)
		return 0;
	for (i = 0; i < srv->nsent && e == NULL; i++) {
		if (strcmp(srv->sent[i].id, rq->q.id) == 0)
			e = &srv->sent[i];
		else if (oldest == NULL || srv->sent[i].stamp < oldest->stamp)
			oldest = &srv->sent[i];
	}
	if (e != NULL && e->pos == rq->q.since && e->lost >= srv->lost) {
		rq->lost_seen = e->lost;
		return 0;
	}
	if (e == NULL) {
		e = srv->nsent < SERVER_SENT_MAX ? &srv->sent[srv->nsent++] :
		    oldest;
		assert(e != NULL);
		memcpy(e->id, rq->q.id, sizeof(e->id));
	}
	e->pos = rq->q.since;
	e->lost = srv->lost;
	e->stamp = ++srv->sent_stamp;
	return 1;
}

/*
 * A rescue serves its journal up to `released`, then one last batch: a
 * compare of the whole tree and C at released + 1. A standby asking for
 * changes after released + 1 holds everything: the rescue is complete.
 */
static enum MHD_Result
serve_changes_rescue(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq, uint64_t released)
{
	uint64_t final = released + 1;

	/* The caller answered every other position with G. */
	assert(rq->q.since == final || rq->q.since == released);
	if (rq->q.since == final && rq->q.ack != final) {
		/* A big file of an earlier batch is still in flight: that
		 * is no confirmation (the standby waits for its lanes before
		 * the compare, so this is a broken or mixed-up peer). */
		log_warn("%s: standby '%s' asks past change %llu but holds "
		    "only %llu durably: it compares again", rq->peer,
		    rq->q.id, (unsigned long long)final,
		    (unsigned long long)rq->q.ack);
		return serve_changes_position(c, srv, rq, SERVER_STREAM_GONE,
		    released);
	}
	if (rq->q.since == final) {
		if (server_notify(srv, SERVER_EV_CONFIRM, rq->q.id))
			return serve_changes_position(c, srv, rq,
			    SERVER_STREAM_COMPLETE, final);
		/* Anyone with the token can ask this: only the standby
		 * that applied the final batch counts. One that did so
		 * under an earlier rescue compares again, and confirms. */
		log_warn("%s: standby '%s' asks to confirm change %llu but "
		    "was not sent the final batch: it compares again",
		    rq->peer, rq->q.id, (unsigned long long)final);
		return serve_changes_position(c, srv, rq, SERVER_STREAM_GONE,
		    released);
	}
	pthread_mutex_lock(&srv->lock);
	srv->phase = SERVER_PHASE_COMPARE;
	pthread_mutex_unlock(&srv->lock);
	rq->final_batch = 1;
	(void)server_notify(srv, SERVER_EV_COMPARE, rq->q.id);
	return serve_changes_position(c, srv, rq, SERVER_STREAM_FINAL, final);
}

/* Record rq's acknowledged position in the spool; busy: a batch was
 * waiting for it (spool_ack_busy). */
static void
serve_changes_ack(struct server *srv, struct server_request *rq, int busy)
{
	int r;

	r = busy ? spool_ack_busy(srv->opts.spool, rq->q.id, rq->q.ack) :
	    spool_ack(srv->opts.spool, rq->q.id, rq->q.ack);
	/* The spool says once why it cannot save acks. */
	if (r != 0 && r != -AR_EIO)
		log_warn("%s: cannot record the position of '%s': %s",
		    rq->peer, rq->q.id, ar_strerror(r));
}

void
serve_changes_completed(struct server *srv, struct server_request *rq)
{
	if (!rq->ack_after || srv->opts.spool == NULL)
		return;
	rq->ack_after = 0;
	serve_changes_ack(srv, rq, 1);
}

/* Count the ack files, and whether id has one. */
struct serve_changes_ids {
	const char *id;
	size_t n;
	int known;
};

static void
serve_changes_ids_cb(void *arg, const char *id, uint64_t seq,
    uint64_t mtime_ns)
{
	struct serve_changes_ids *k = arg;

	(void)seq;
	(void)mtime_ns;
	k->n++;
	if (strcmp(id, k->id) == 0)
		k->known = 1;
}

/*
 * May rq name itself rq->q.id? With a standbys list, only a listed id,
 * and one listed with a pin only from that key: an id decides what is
 * trimmed (its ack) and what a rescue completes. Without a list, any id
 * until SERVER_IDS_MAX of them have ack files (3,000 made requests four
 * times slower). 0, or -AR_EAUTH with the reason in why.
 */
static int
serve_changes_id(struct server *srv, struct server_request *rq, char *why,
    size_t whylen)
{
	char id[LIMIT_ID_MAX + 1], pin[PIN_TEXT_LEN + 1];
	const char *list = srv->opts.cfg->standbys;
	struct serve_changes_ids k;
	size_t i;

	/* A rescue completes the ids of its --standby: the operator named
	 * them. */
	for (i = 0; i < srv->opts.nids; i++) {
		if (strcmp(srv->opts.ids[i], rq->q.id) == 0)
			return 0;
	}
	if (list != NULL) {
		/* The list was checked when it was set. */
		while (config_ids_next_pin(&list, id, pin) == 1) {
			if (strcmp(id, rq->q.id) != 0)
				continue;
			if (pin[0] == '\0' || strcasecmp(pin, rq->pin) == 0)
				return 0;
			snprintf(why, whylen, "standby id '%s' is bound to "
			    "the key %s, not %s", rq->q.id, pin,
			    rq->pin[0] != '\0' ? rq->pin : "none (no TLS)");
			return -AR_EAUTH;
		}
		snprintf(why, whylen, "standby id '%s' is not in the "
		    "standbys list of the %s", rq->q.id,
		    srv->opts.role == WIRE_ROLE_RESCUE ? "rescue" : "primary");
		return -AR_EAUTH;
	}
	if (srv->opts.role != WIRE_ROLE_PRIMARY || srv->opts.spool == NULL)
		return 0;
	pthread_mutex_lock(&srv->lock);
	for (i = 0; i < srv->nids; i++) {
		if (strcmp(srv->ids[i], rq->q.id) == 0) {
			pthread_mutex_unlock(&srv->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	memset(&k, 0, sizeof(k));
	k.id = rq->q.id;
	if (spool_acks(srv->opts.spool, serve_changes_ids_cb, &k) != 0)
		k.known = 1;	/* cannot tell: the spool says why */
	if (!k.known && k.n >= SERVER_IDS_MAX) {
		snprintf(why, whylen, "standby id '%s': %d standbys already "
		    "have positions on the primary; list the ids in its "
		    "standbys key", rq->q.id, SERVER_IDS_MAX);
		return -AR_EAUTH;
	}
	pthread_mutex_lock(&srv->lock);
	for (i = 0; i < srv->nids; i++) {
		if (strcmp(srv->ids[i], rq->q.id) == 0)
			break;
	}
	if (i == srv->nids && srv->nids < SERVER_IDS_MAX)
		memcpy(srv->ids[srv->nids++], rq->q.id, sizeof(srv->ids[0]));
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

enum MHD_Result
serve_changes_reply(struct MHD_Connection *c, struct server *srv,
    struct server_request *rq)
{
	char why[WIRE_MSG_MAX / 2];
	struct serve_changes_gather g;
	uint64_t released;
	int r, stopping, compare, rescue = srv->opts.role == WIRE_ROLE_RESCUE;

	if (!rq->parsed) {
		if (serve_changes_args(c, rq) != 0) {
			log_warn("%s: /v1/changes: malformed arguments",
			    rq->peer);
			return server_reply_text(c, MHD_HTTP_BAD_REQUEST,
			    "malformed arguments");
		}
		if (serve_changes_id(srv, rq, why, sizeof(why)) != 0) {
			log_warn("%s: /v1/changes: %s", rq->peer, why);
			return server_reply_error(c, MHD_HTTP_FORBIDDEN,
			    AR_EAUTH, why);
		}
		rq->parsed = 1;
		rq->conn = c;
		/* The standby named itself: it has called the rescue. */
		if (rescue)
			(void)server_notify(srv, SERVER_EV_CONTACT, rq->q.id);
	}
	assert(!rq->suspended);
	pthread_mutex_lock(&srv->lock);
	released = srv->released;
	stopping = srv->stopping;
	compare = strcmp(rq->q.gen, srv->generation) == 0 &&
	    serve_changes_unrecorded(srv, rq);
	pthread_mutex_unlock(&srv->lock);
	/* Another generation, or a position this spool never had; or
	 * changes the spool could not record. */
	if (srv->opts.spool == NULL ||
	    strcmp(rq->q.gen, srv->generation) != 0 ||
	    rq->q.since > released + (uint64_t)rescue || compare)
		return serve_changes_position(c, srv, rq, SERVER_STREAM_GONE,
		    released);
	if (rescue && rq->q.since >= released)
		return serve_changes_rescue(c, srv, rq, released);
	/* Asking for changes after `since` says everything up to it is
	 * durable on the standby (up to `ack` when it says so: a lane is
	 * still sending an earlier change): the acknowledgement that
	 * trims. */
	if (!rq->acked && srv->opts.role == WIRE_ROLE_PRIMARY) {
		rq->acked = 1;
		/* Not two fsyncs per request at the rate of the changes
		 * (3 ms on a busy host, 57 ms measured beside a big file's
		 * writeback): put off while the file is new, and written by
		 * the pump's tick once it is a second old. A batch that is
		 * ready does not wait even for that: its ack is recorded
		 * once the answer went out (an ack only ever lags, and the
		 * standby's next request acknowledges as much). Not a first
		 * ack: its file makes the id one of the standbys counted
		 * (serve_changes_id), at once. A request that neither finds
		 * a batch nor waits is recorded at once. */
		if (rq->q.since < released &&
		    spool_ack_held(srv->opts.spool, rq->q.id))
			rq->ack_after = 1;
		else
			serve_changes_ack(srv, rq, rq->q.since < released ||
			    rq->q.wait_ms > 0);
	}
	if (rq->q.since == released && !stopping &&
	    util_mono_ms() < rq->deadline_ms) {
		pthread_mutex_lock(&srv->lock);
		/* A release since we looked would find no waiter to wake:
		 * look again under the lock that queues us. */
		if (srv->released == rq->q.since && !srv->stopping &&
		    !(srv->unrecorded && srv->lost > rq->lost_seen)) {
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
	rq->stream = server_stream_new(srv, SERVER_STREAM_CHANGES);
	if (rq->stream == NULL ||
	    changes_new(SERVE_CHANGES_MAX, &rq->stream->changes) != 0)
		return MHD_NO;
	rq->stream->version = rq->version;
	g.ch = rq->stream->changes;
	g.upto = rq->q.since;
	g.oldest_ns = 0;
	r = spool_read(srv->opts.spool, rq->q.since, released,
	    serve_changes_gather_rec, &g);
	if (r == -AR_ESTATE) {
		server_stream_free(rq->stream);
		rq->stream = NULL;
		return serve_changes_position(c, srv, rq, SERVER_STREAM_GONE,
		    released);
	}
	if (r < 0) {
		log_error("%s: reading the spool: %s", rq->peer,
		    ar_strerror(r));
		return server_reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot read the spool");
	}
	assert(g.upto >= rq->q.since && g.upto <= released);
	rq->stream->upto = g.upto;
	/* The standby's lag in seconds: how old what it gets is. */
	if (rq->version >= WIRE_V_OPS && g.upto > rq->q.since)
		rq->stream->oldest_ns = g.oldest_ns;
	return server_reply_stream(c, rq);
}

void
serve_changes_wake(struct server *srv)
{
	struct server_request **pp, *rq;
	uint64_t now = util_mono_ms();

	pthread_mutex_lock(&srv->lock);
	pp = &srv->waiters;
	while (*pp != NULL) {
		rq = *pp;
		assert(rq->suspended && rq->conn != NULL);
		if (srv->stopping || srv->released > rq->q.since ||
		    (srv->unrecorded && srv->lost > rq->lost_seen) ||
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
