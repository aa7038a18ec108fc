/*
 * follow.c: sync --follow. Compare once when no position is saved for
 * the primary's generation, then long-poll for batches of changes, apply
 * each (apply.c), make it durable and only then save the position, which
 * acknowledges it at the next poll; reconnect with exponential backoff
 * and jitter. A rescue's complete-mark ends the loop.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "state.h"
#include "syncer.h"
#include "util.h"
#include "wire.h"

/* How long the primary may hold a long-poll. */
#define FOLLOW_WAIT_MS 10000
/* ... while a lane is in flight: how soon its end is acknowledged. */
#define FOLLOW_LANE_WAIT_MS 100
/* A position saved less than this ago is put off (the primary's acks
 * are written at the same pace, SPOOL_ACK_BUSY_MS). */
#define FOLLOW_SAVE_BUSY_MS 1000
/* ... and while one is, how soon an idle long-poll comes back to save
 * it. */
#define FOLLOW_SAVE_WAIT_MS 1000
#define FOLLOW_BACKOFF_MIN_MS 100
#define FOLLOW_BACKOFF_MAX_MS 10000

/* How a batch of changes ended: its last frame. */
enum follow_batch_end {
	FOLLOW_END_NONE,	/* no end frame (yet) */
	FOLLOW_END_UPTO,	/* Z: the batch runs up to upto */
	FOLLOW_END_GONE,	/* G: the primary does not hold our position */
	FOLLOW_END_COMPLETE,	/* C: a rescue ends the generation at upto */
};

struct follow_batch_ctx {
	enum follow_batch_end end;
	uint64_t upto;		/* the position after the batch */
	int asked_all;		/* an S frame asks to compare the whole tree */
	uint64_t oldest_ns;	/* W: when its first change was recorded */
};

/* The framing of a batch of changes, checked as it is stored. */
static int
follow_check_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct fetch_stored_ctx *st = arg;
	struct follow_batch_ctx *bc = st->arg;

	if (st->ended)
		return sync_fail(st->s, -AR_EPROTO, "primary sent data after "
		    "the end of a batch");
	switch (type) {
	case WIRE_RESCAN:
		/* Its path, "" or not; malformed, apply_frame refuses it. */
		if (wire_get_pathop(p, len, type, &st->s->op) == 0 &&
		    st->s->op.path_len == 0)
			bc->asked_all = 1;
		return 0;
	case WIRE_MOVE:
	case WIRE_STATE:
	case WIRE_GONE_PATH:
		return 0;
	case WIRE_WHEN:
		if (client_version(st->s->client) < WIRE_V_OPS ||
		    wire_get_end(p, len, &bc->oldest_ns) != 0)
			return sync_fail(st->s, -AR_EPROTO, "unexpected or "
			    "malformed W frame in a batch");
		return 0;
	case WIRE_ATTRS:
	case WIRE_XATTRS:
		/* Checked and applied by apply_dirattr. */
		return 0;
	case WIRE_IDNAME:
		/* Decoded and learnt by apply_frame. */
		return sync_idname_count(st);
	case WIRE_END:
	case WIRE_GONE:
	case WIRE_COMPLETE:
		if (wire_get_end(p, len, &bc->upto) != 0)
			return sync_fail(st->s, -AR_EPROTO, "malformed end of "
			    "a batch");
		st->ended = 1;
		bc->end = type == WIRE_GONE ? FOLLOW_END_GONE :
		    type == WIRE_COMPLETE ? FOLLOW_END_COMPLETE :
		    FOLLOW_END_UPTO;
		return 0;
	default:
		return sync_fail(st->s, -AR_EPROTO, "unexpected frame (type "
		    "0x%02x) in a batch of changes", type);
	}
}

/* The line that tells the operator to promote this standby. */
static void
follow_log_complete(const char *gen, uint64_t seq)
{
	log_info("the replica is complete: a rescue closed generation %s at "
	    "change %llu", gen, (unsigned long long)seq);
}

/* Compare everything, then stand at the position hello reported. */
static int
follow_full(struct syncer *s)
{
	int r;

	r = sync_hello(s);
	if (r != 0)
		return r;
	log_info("comparing the whole tree with generation %s",
	    s->hello_gen);
	metrics_set_standby_state(METRICS_SB_COMPARING);
	r = sync_compare(s, "", 1);
	if (r == 0)
		r = sync_make_durable(s);
	if (r == 0)
		r = state_position_save(&s->state, s->hello_gen,
		    s->hello_seq, s->msg, s->msglen);
	if (r == 0) {
		sync_metrics_applied(s->hello_seq);
		metrics_set_standby_state(METRICS_SB_FOLLOWING);
		metrics_set(METRICS_BEHIND_NS, 0);
	}
	if (r == 0)
		r = sync_save_skipped(s);
	return r;
}

/*
 * Save the acknowledged position: pos, or below the oldest batch with a
 * lane still in flight (SPOOL.md: every change up to it is durable).
 * Only once the data is durable; only when it moved.
 */
static int
follow_save_now(struct syncer *s, uint64_t ack)
{
	int r;

	s->save_pending = 0;
	if (ack == s->lane_saved)
		return 0;
	r = state_position_save(&s->state, s->hello_gen, ack, s->msg,
	    s->msglen);
	if (r == 0) {
		s->lane_saved = ack;
		s->saved_ms = util_mono_ms();
	}
	return r;
}

static int
follow_save(struct syncer *s, uint64_t pos)
{
	uint64_t ack = lane_ack(s, pos);
	int r;

	/* A lane joined with its batch still to be asked again (a later
	 * change of its file was put off): nothing from that batch on is
	 * acknowledged until it has been. */
	if (s->lane_rewind < ack)
		ack = s->lane_rewind;

	r = sync_make_durable(s);
	if (r != 0)
		return r;
	if (ack == s->lane_saved) {
		s->save_pending = 0;
		return 0;
	}
	/*
	 * The data is durable, the position file only says where to start
	 * again: from a primary, with nothing in flight, it is saved at
	 * most once a second (two fsyncs per batch at 20 appends a second
	 * were a third of the standby's CPU). A crash before the save
	 * starts again a second back: every step is idempotent. The ack
	 * the primary trims by stays at the position file meanwhile
	 * (follow_batch), so that it still holds where we start again.
	 */
	if (s->hello_role == WIRE_ROLE_PRIMARY && lane_busy(s) == 0 &&
	    util_mono_ms() - s->saved_ms < FOLLOW_SAVE_BUSY_MS) {
		s->save_pending = 1;
		s->save_ack = ack;
		return 0;
	}
	return follow_save_now(s, ack);
}

/* The position put off, if any, when its second is up (or now). */
static int
follow_save_pending(struct syncer *s, int now)
{
	if (!s->save_pending || (!now && util_mono_ms() - s->saved_ms <
	    FOLLOW_SAVE_BUSY_MS))
		return 0;
	return follow_save_now(s, s->save_ack);
}

/* A lane's file moved while it was sent, or changed again meanwhile:
 * its batch is asked again (every step is idempotent). */
static void
follow_rewind(struct syncer *s, uint64_t *pos)
{
	if (s->lane_rewind < *pos) {
		log_verbose("a file of a lane moved or changed while it was "
		    "sent: asking again from change %llu",
		    (unsigned long long)s->lane_rewind);
		*pos = s->lane_rewind;
	}
	s->lane_rewind = UINT64_MAX;
}

/* The lanes that finished: joined, and the position they held back
 * saved. */
static int
follow_reap(struct syncer *s, uint64_t *pos)
{
	int r, busy = lane_busy(s);

	if (busy == 0)
		return 0;
	r = lane_reap(s, &s->lane_rewind);
	if (r != 0)
		return r;
	follow_rewind(s, pos);
	if (lane_busy(s) == busy)
		return 0;
	return follow_save(s, *pos);
}

/*
 * Fetch one batch after pos and apply it; *pos moves past it. *complete
 * is set when a rescue said that we hold all of its generation.
 */
static int
follow_batch(struct syncer *s, uint64_t *pos, int *complete)
{
	struct follow_batch_ctx bc;
	uint64_t t0, ack;
	char url[256];
	size_t i;
	int r, n, fd = -1;

	memset(&bc, 0, sizeof(bc));
	s->hold = 0;
	r = follow_reap(s, pos);
	if (r == 0)
		r = follow_save_pending(s, 0);
	if (r != 0)
		return r;
	/* Not past the position file while its save is put off: the
	 * primary trims by the ack, and a crash starts again from the
	 * file. */
	ack = lane_ack(s, *pos);
	if (s->save_pending && s->lane_saved < ack)
		ack = s->lane_saved;
	if (client_version(s->client) >= WIRE_V_LANES)
		n = snprintf(url, sizeof(url), "/v1/changes?since=%llu&"
		    "ack=%llu&wait=%d&id=%s&gen=%s", (unsigned long long)*pos,
		    (unsigned long long)ack, lane_busy(s) > 0 ?
		    FOLLOW_LANE_WAIT_MS : s->save_pending ?
		    FOLLOW_SAVE_WAIT_MS : FOLLOW_WAIT_MS, s->id,
		    s->hello_gen);
	else
		n = snprintf(url, sizeof(url), "/v1/changes?since=%llu&"
		    "wait=%d&id=%s&gen=%s", (unsigned long long)*pos,
		    s->save_pending ? FOLLOW_SAVE_WAIT_MS : FOLLOW_WAIT_MS,
		    s->id, s->hello_gen);
	/* id and generation are bounded (and URL-safe) by construction. */
	assert(n > 0 && (size_t)n < sizeof(url));
	(void)n;
	r = fetch_stored(s, url, STATE_SCRATCH_CHANGES, follow_check_frame,
	    &bc, "batch", &fd);
	if (r != 0)
		return r;
	assert(bc.end != FOLLOW_END_NONE);	/* fetch_stored checked */
	if (bc.end == FOLLOW_END_GONE) {
		log_info("the primary does not hold our position %llu any "
		    "more", (unsigned long long)*pos);
		/* The compare of everything comes after what is in flight
		 * (and finds what moved while it was). */
		r = lane_wait_all(s, NULL);
		s->save_pending = 0;	/* the compare saves its own */
		if (r == 0)
			r = follow_full(s);
		if (r == 0)
			s->lane_saved = s->hello_seq;
		if (r == 0)
			*pos = s->hello_seq;
		close(fd);
		return r;
	}
	if (bc.end == FOLLOW_END_COMPLETE && bc.upto == *pos &&
	    lane_busy(s) == 0) {
		/* The rescue saw that we hold its final position (and we
		 * said so: nothing is in flight, ack = since). */
		close(fd);
		if (state_inplace_pending(&s->state) > 0)
			return sync_fail(s, -AR_ESTATE, "an in-place update "
			    "is still pending in state_dir/inplace: the "
			    "replica is not complete until a restarted sync "
			    "has written it");
		r = follow_save_pending(s, 1);
		if (r == 0)
			r = state_gen_close(&s->state, s->hello_gen, *pos,
			    s->msg, s->msglen);
		if (r == 0)
			follow_log_complete(s->hello_gen, *pos);
		*complete = r == 0;
		return r;
	}
	metrics_standby_contact();
	if (bc.upto == *pos) {
		close(fd);
		metrics_set(METRICS_BEHIND_NS, 0);
		return 0;	/* the long-poll ended with nothing */
	}
	/* Until it is durable, the standby is as far behind as the
	 * oldest change of the batch. */
	metrics_set(METRICS_BEHIND_NS, bc.oldest_ns);
	t0 = util_mono_ns();
	if (bc.upto < *pos)
		r = sync_fail(s, -AR_EPROTO, "primary moved our position "
		    "back");
	s->full = 0;
	s->lane_base = *pos;
	if (r == 0)
		r = fetch_replay(s, fd, apply_frame);
	if (r == 0)
		r = fetch_flush_all(s);
	/* A compare comes after what is in flight: it sees the files in
	 * place, and a rescue's final one (S "") is confirmed only once
	 * nothing is in flight. */
	if (r == 0 && (s->full || s->nrescan > 0))
		r = lane_wait_all(s, &s->lane_rewind);
	/* Held to max_delete only when the primary asked for it: a
	 * compare that repairs the batch (a failed rename of a name at the
	 * top is a compare of all) deletes what the primary deleted. */
	if (r == 0 && s->full)
		r = sync_compare(s, "", bc.asked_all);
	for (i = 0; r == 0 && !s->full && i < s->nrescan; i++)
		r = sync_compare(s, s->rescan[i], 0);
	if (r == 0 && !s->o->dry_run)
		r = fetch_replay(s, fd, apply_dirattr);
	for (i = 0; i < s->nrescan; i++)
		free(s->rescan[i]);
	s->nrescan = 0;
	close(fd);
	if (r == 0)
		r = sync_make_durable(s);
	if (r == 0 && s->hold) {
		s->hold = 0;
		log_verbose("a file moved while it was sent: asking again "
		    "from change %llu", (unsigned long long)*pos);
		/* A lane joined meanwhile may want an earlier batch. */
		follow_rewind(s, pos);
		return 0;
	}
	if (r == 0)
		r = follow_save(s, bc.upto);
	if (r == 0)
		r = sync_save_skipped(s);
	if (r == 0) {
		assert(bc.upto > *pos);
		log_verbose("applied changes %llu..%llu%s",
		    (unsigned long long)*pos + 1,
		    (unsigned long long)bc.upto, lane_busy(s) > 0 ?
		    " (a lane is still in flight)" : "");
		sync_metrics_applied(bc.upto);
		metrics_add(METRICS_BATCHES, 1);
		metrics_observe_apply(util_mono_ns() - t0);
		metrics_set(METRICS_BEHIND_NS, 0);
		*pos = bc.upto;
		follow_rewind(s, pos);
	}
	if (s->o->itemize != NULL)
		fflush(s->o->itemize);
	return r;
}

/* One connection's worth of following: until *stop, an error, or
 * *complete. */
static int
follow_session(struct syncer *s, volatile sig_atomic_t *stop,
    int *complete)
{
	uint64_t pos;
	int r;

	r = sync_hello(s);
	if (r != 0)
		return r;
	/* A rescue's last position is one past its journal: the compare
	 * that closes the generation. */
	if (state_position_load(&s->state, s->hello_gen, &pos) != 0 ||
	    pos > s->hello_seq + (s->hello_role == WIRE_ROLE_RESCUE)) {
		r = follow_full(s);
		if (r != 0)
			return r;
		pos = s->hello_seq;
	}
	log_info("following %s from change %llu", s->cfg->primary.text,
	    (unsigned long long)pos);
	s->lane_saved = pos;
	s->save_pending = 0;
	s->saved_ms = 0;
	s->lane_rewind = UINT64_MAX;
	metrics_set(METRICS_APPLIED_SEQ, pos);
	metrics_set_standby_state(METRICS_SB_FOLLOWING);
	while (!*stop) {
		s->msg[0] = '\0';
		r = follow_batch(s, &pos, complete);
		if (r != 0 || *complete) {
			/* Still this generation's: what was put off. */
			if (r == 0)
				return follow_save_pending(s, 1);
			(void)follow_save_pending(s, 1);
			return r;
		}
		s->progress = 1;
		if (s->st->files_failed > 0) {
			/* Changed while sent: the primary's next record of
			 * them comes in a later batch. */
			s->st->files_failed = 0;
		}
	}
	return follow_save_pending(s, 1);
}

static void
follow_sleep_ms(unsigned ms, volatile sig_atomic_t *stop)
{
	struct timespec ts;

	while (ms > 0 && !*stop) {
		unsigned step = ms < 50 ? ms : 50;

		ts.tv_sec = 0;
		ts.tv_nsec = (long)step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

int
follow_run(struct syncer *s, volatile sig_atomic_t *stop)
{
	unsigned backoff = FOLLOW_BACKOFF_MIN_MS, jitter;
	char done_gen[WIRE_GEN_LEN + 1];
	uint64_t done_seq;
	int r, logged = 0, complete = 0, done;

	r = sync_open(s);
	if (r == 0)
		r = client_new(s->cfg, s->o->auth, &s->client);
	if (r == 0)
		r = lane_init(s);
	if (r != 0)
		return r;
	client_set_abort(s->client, stop);
	sync_pace(s, s->client);
	/* asyncrep status shows a full compare's progress from state_dir. */
	if (!s->o->dry_run)
		progress_save_to(&s->prog, s->state.dirfd);
	s->following = 1;
	/* A rescue completed us before: unless a server answers (a new
	 * generation to follow, or a rescue run again), we are done. */
	done = state_complete(&s->state, done_gen, &done_seq);
	while (!*stop) {
		s->msg[0] = '\0';
		s->hello_gen[0] = '\0';
		r = follow_session(s, stop, &complete);
		/* The next session starts from the acknowledged position,
		 * below whatever was in flight. */
		lane_cancel_all(s);
		if (complete) {
			assert(r == 0);
			break;	/* the generation is complete: done */
		}
		if (done && r != 0 && s->hello_gen[0] == '\0' &&
		    r != -AR_EFENCED && r != -AR_EAUTH &&
		    r != -AR_EVERSION) {
			log_verbose("%s", s->msg[0] ? s->msg :
			    ar_strerror(r));
			follow_log_complete(done_gen, done_seq);
			r = 0;
			break;
		}
		done = 0;	/* a server answered: follow it */
		metrics_set_standby_state(METRICS_SB_DISCONNECTED);
		metrics_standby_disconnected();
		/* It worked for a while: the next outage starts afresh. */
		if (s->progress) {
			backoff = FOLLOW_BACKOFF_MIN_MS;
			logged = 0;
			s->progress = 0;
		}
		if (*stop)
			break;
		if (r == -AR_EAUTH || r == -AR_EVERSION || r == -AR_EFENCED ||
		    r == -AR_ESTATE || r == -AR_ENOMEM || r == -AR_EINTERNAL ||
		    r == -AR_EMAXDELETE)
			break;
		/* Transient: the primary restarts, the network drops. */
		metrics_add(METRICS_RECONNECTS, 1);
		if (!logged || log_get_level() >= LOG_LVL_VERBOSE)
			log_warn("%s; retrying", s->msg[0] ? s->msg :
			    ar_strerror(r));
		logged = 1;
		if (getrandom(&jitter, sizeof(jitter), 0) !=
		    (ssize_t)sizeof(jitter))
			jitter = 0;
		follow_sleep_ms(backoff / 2 + jitter % (backoff / 2 + 1),
		    stop);
		backoff = backoff * 2 > FOLLOW_BACKOFF_MAX_MS ?
		    FOLLOW_BACKOFF_MAX_MS : backoff * 2;
	}
	if (*stop)
		r = 0;
	return r;
}
