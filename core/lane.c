/*
 * lane.c: big transfers of sync --follow in lanes of their own
 * (PROTOCOL.md "Lanes"). A file whose fetch is at least lane_min_size
 * is received by a thread of its own, on a connection of its own, into
 * its temp file, verified, made durable and renamed into place, while
 * the follow loop goes on asking for and applying later batches on the
 * main connection. The loop keeps the acknowledged position below the
 * oldest batch with a transfer still in flight (lane_ack), waits for a
 * lane before it applies a rename, deletion or state that touches the
 * lane's path, and applies the attributes of the lane's directory once
 * more after the rename. A later state of the lane's file itself (a file
 * still) does not wait: it is put off, and once the lane is done the
 * loop asks again from the lane's batch, which looks at the file anew.
 * At most LANE_MAX lanes run; a further big file waits for the oldest.
 *
 * A lane's thread owns its struct syncer (sub): its client, batch,
 * retries, statistics and message. It shares, read-only, the options,
 * the configuration, the exclusions and the data directory's fd with the
 * loop. Everything else in struct lane belongs to the loop's thread;
 * `finished` is the one field both touch.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "fs.h"
#include "log.h"
#include "syncer.h"
#include "wire.h"

/* Where a lane is, as the follow loop sees it. */
enum lane_state {
	LANE_FREE,		/* no transfer */
	LANE_RUNNING,		/* its thread receives path */
};

#define LANE_MSG_MAX 1024

struct lane {
	enum lane_state state;
	pthread_t thread;
	atomic_int finished;	/* the thread is done: join it */
	volatile sig_atomic_t abort;	/* the loop cancels the transfer */
	struct syncer sub;
	struct sync_stats st;
	char msg[LANE_MSG_MAX];
	char path[WIRE_PATH_MAX + 1];
	size_t len;
	uint64_t size;
	int existed;
	int delta;		/* rebuild from a delta against our copy */
	uint64_t base;		/* the position before the batch that named
				 * it: what stays acknowledged meanwhile */
	uint64_t started;	/* order of starting, for the oldest */
	int result;		/* the thread's */
	int redo;		/* a later U of its file was put off: its
				 * batch is asked again once it is done */
	int have_dirattr;	/* attributes of its directory to apply
				 * once more after its rename */
	struct wire_entry dirattr;
};

/* ---------------------------------------------------------------- */
/* The thread */

static void *
lane_thread(void *arg)
{
	struct lane *l = arg;
	struct syncer *sub = &l->sub;
	enum clone_outcome co = CLONE_UNTRIED;
	int r = 0, whole = 1;

	/* Changed in place: perhaps only some of its blocks, into a clone
	 * of the copy (clone.c), here beside later batches. */
	if (l->existed)
		r = clone_file(sub, l->path, l->len, &co);
	if (r == 0 && (co == CLONE_DONE || co == CLONE_LATER))
		whole = 0;
	else if (r == 0 && l->delta) {
		r = fetch_delta_file(sub, l->path, l->len, &whole);
		if (r == 0 && whole)
			l->existed = 1;
	}
	if (r == 0 && whole)
		r = fetch_batch_add(sub, l->path, l->len, l->size,
		    l->existed);
	if (r == 0 && whole)
		r = fetch_flush_all(sub);
	fetch_batch_clear(sub);
	l->result = r;
	atomic_store_explicit(&l->finished, 1, memory_order_release);
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Paths */

/* 1 if a is b or an ancestor of b (a, b of lengths alen, blen). */
static int
lane_covers(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen == 0)
		return 1;
	if (alen > blen || memcmp(a, b, alen) != 0)
		return 0;
	return alen == blen || b[alen] == '/';
}

/* The parent of path, as a length ("" = 0). */
static size_t
lane_parent_len(const char *path, size_t len)
{
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len > 0 ? len - 1 : 0;
}

/* ---------------------------------------------------------------- */
/* The loop's side */

int
lane_init(struct syncer *s)
{
	size_t i;

	if (s->lanes != NULL)
		return 0;
	s->lanes = calloc(LANE_MAX, sizeof(*s->lanes));
	if (s->lanes == NULL)
		return -AR_ENOMEM;
	for (i = 0; i < LANE_MAX; i++)
		s->lanes[i].state = LANE_FREE;
	return 0;
}

void
lane_free(struct syncer *s)
{
	lane_cancel_all(s);
	free(s->lanes);
	s->lanes = NULL;
}

int
lane_busy(const struct syncer *s)
{
	size_t i;
	int n = 0;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++)
		n += s->lanes[i].state == LANE_RUNNING;
	return n;
}

int
lane_wanted(const struct syncer *s, uint64_t size)
{
	return s->lanes != NULL && s->lane_ok && !s->o->dry_run &&
	    s->cfg->lane_min_size > 0 && size >= s->cfg->lane_min_size &&
	    client_version(s->client) >= WIRE_V_LANES;
}

uint64_t
lane_ack(const struct syncer *s, uint64_t pos)
{
	size_t i;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		if (s->lanes[i].state == LANE_RUNNING &&
		    s->lanes[i].base < pos)
			pos = s->lanes[i].base;
	}
	return pos;
}

/* The directory attributes the loop kept for after l's rename. */
static int
lane_dirattr_apply(struct syncer *s, struct lane *l)
{
	const char *base;
	int dirfd, r;

	if (!l->have_dirattr)
		return 0;
	l->have_dirattr = 0;
	if (l->dirattr.name_len == 0)
		return sync_root_attrs(s, &l->dirattr);
	if (fs_open_parent(s->rootfd, l->dirattr.name, &dirfd, &base) != 0)
		return 0;	/* gone since: a later batch says so */
	r = sync_dir_attrs(s, dirfd, base, l->dirattr.name,
	    l->dirattr.name_len, &l->dirattr);
	close(dirfd);
	return r;
}

/*
 * Join l's thread and account for it: its statistics, the directory
 * attributes kept for it; an error of the transfer becomes the loop's
 * (the session starts again from the acknowledged position, which is
 * below l's batch); a file gone from its path while sent (sub.hold)
 * sets *rewind to l's batch, which the loop asks for again.
 */
static int
lane_join(struct syncer *s, struct lane *l, uint64_t *rewind)
{
	struct syncer *sub = &l->sub;
	int r;

	assert(l->state == LANE_RUNNING);
	pthread_join(l->thread, NULL);
	r = l->result;
	s->st->files_whole += l->st.files_whole;
	s->st->files_delta += l->st.files_delta;
	s->st->files_failed += l->st.files_failed;
	s->st->file_bytes += l->st.file_bytes;
	if (sub->changed)
		s->changed = 1;
	if (r == 0 && (sub->hold || l->redo) && rewind != NULL &&
	    l->base < *rewind)
		*rewind = l->base;
	if (r != 0 && r != -AR_ESIGNAL)
		sync_fail(s, r, "%s", l->msg[0] != '\0' ? l->msg :
		    ar_strerror(r));
	else if (r == 0) {
		log_verbose("'%s' received in its lane",
		    sync_esc(l->path, l->len));
		r = lane_dirattr_apply(s, l);
	}
	if (sub->client != NULL) {
		uint64_t sent, received;

		client_traffic(sub->client, &sent, &received);
		s->lane_sent += sent;
		s->lane_received += received;
		client_free(sub->client);
	}
	sub->client = NULL;
	free(sub->batch.items);
	free(sub->retry);
	sub->batch.items = NULL;
	sub->retry = NULL;
	l->state = LANE_FREE;
	return r;
}

int
lane_reap(struct syncer *s, uint64_t *rewind)
{
	size_t i;
	int r = 0, e;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		struct lane *l = &s->lanes[i];

		if (l->state != LANE_RUNNING ||
		    !atomic_load_explicit(&l->finished, memory_order_acquire))
			continue;
		e = lane_join(s, l, rewind);
		if (r == 0)
			r = e;
	}
	return r;
}

int
lane_wait_all(struct syncer *s, uint64_t *rewind)
{
	size_t i;
	int r = 0, e;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		if (s->lanes[i].state != LANE_RUNNING)
			continue;
		e = lane_join(s, &s->lanes[i], rewind);
		if (r == 0)
			r = e;
	}
	return r;
}

void
lane_cancel_all(struct syncer *s)
{
	size_t i;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		if (s->lanes[i].state == LANE_RUNNING)
			s->lanes[i].abort = 1;
	}
	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		if (s->lanes[i].state == LANE_RUNNING) {
			/* Its temp file goes with it (fetch_batch_clear). */
			s->lanes[i].have_dirattr = 0;
			(void)lane_join(s, &s->lanes[i], NULL);
		}
	}
}

int
lane_wait_path(struct syncer *s, const char *path, size_t len,
    enum lane_touch how, uint64_t *rewind)
{
	size_t i;
	int r = 0, e, hit;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		struct lane *l = &s->lanes[i];

		if (l->state != LANE_RUNNING)
			continue;
		/* The lane's file itself, or something above or beneath
		 * it; a directory above it that stays a directory (the U
		 * that comes before every change next to it) leaves it be. */
		hit = lane_covers(path, len, l->path, l->len) ||
		    lane_covers(l->path, l->len, path, len);
		if (hit && how == LANE_TOUCH_DIR_STATE && len < l->len)
			hit = 0;
		if (!hit)
			continue;
		log_verbose("'%s' waits for the lane receiving '%s'",
		    sync_esc(path, len), sync_esc(l->path, l->len));
		e = lane_join(s, l, rewind);
		if (r == 0)
			r = e;
	}
	return r;
}

int
lane_defer(struct syncer *s, const char *path, size_t len)
{
	size_t i;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		struct lane *l = &s->lanes[i];

		if (l->state == LANE_RUNNING && l->len == len &&
		    memcmp(l->path, path, len) == 0) {
			if (!l->redo)
				log_verbose("'%s' changed again while in its "
				    "lane: looked at again after it",
				    sync_esc(path, len));
			l->redo = 1;
			return 1;
		}
	}
	return 0;
}

void
lane_dirattr(struct syncer *s, const struct wire_entry *e)
{
	size_t i;

	for (i = 0; s->lanes != NULL && i < LANE_MAX; i++) {
		struct lane *l = &s->lanes[i];

		if (l->state == LANE_RUNNING &&
		    lane_parent_len(l->path, l->len) == e->name_len &&
		    memcmp(l->path, e->name, e->name_len) == 0) {
			l->dirattr = *e;
			l->have_dirattr = 1;
		}
	}
}

int
lane_start(struct syncer *s, const char *path, size_t len, uint64_t size,
    int existed, int delta)
{
	struct lane *l = NULL, *oldest = NULL;
	struct syncer *sub;
	size_t i;
	int r;

	assert(len > 0 && len <= WIRE_PATH_MAX);
	/* The same file in flight (a U of it in a rewound batch): its
	 * transfer ends first, then this one decides afresh. */
	r = lane_wait_path(s, path, len, LANE_TOUCH_PATH, &s->lane_rewind);
	if (r != 0)
		return r;
	for (i = 0; i < LANE_MAX && l == NULL; i++) {
		if (s->lanes[i].state == LANE_FREE)
			l = &s->lanes[i];
		else if (oldest == NULL ||
		    s->lanes[i].started < oldest->started)
			oldest = &s->lanes[i];
	}
	if (l == NULL) {
		/* Every lane is busy: the oldest ends first. */
		assert(oldest != NULL);
		r = lane_join(s, oldest, &s->lane_rewind);
		if (r != 0)
			return r;
		l = oldest;
	}
	memset(&l->st, 0, sizeof(l->st));
	l->msg[0] = '\0';
	memcpy(l->path, path, len);
	l->path[len] = '\0';
	l->len = len;
	l->size = size;
	l->existed = existed;
	l->delta = delta;
	l->base = s->lane_base;
	l->started = ++s->lane_count;
	l->result = 0;
	l->have_dirattr = 0;
	l->redo = 0;
	l->abort = 0;
	atomic_store_explicit(&l->finished, 0, memory_order_relaxed);
	sub = &l->sub;
	memset(sub, 0, sizeof(*sub));
	sub->o = s->o;
	sub->cfg = s->cfg;
	sub->st = &l->st;
	sub->rootfd = s->rootfd;
	sub->is_root = s->is_root;
	sub->blk.dirfd = -1;
	/* state_dir's descriptors, borrowed (the lane never releases its
	 * state): the block store names its entries under them. */
	sub->state.dirfd = s->state.dirfd;
	sub->state.lockfd = -1;
	sub->state.blocksfd = s->state.blocksfd;
	sub->state.inplacefd = s->state.inplacefd;
	sub->state.blocksmem = s->state.blocksmem;	/* locks itself */
	sub->msg = l->msg;
	sub->msglen = sizeof(l->msg);
	sub->exclude = s->exclude;
	sub->inplace = s->inplace;
	sub->names = s->names;		/* borrowed: it locks itself */
	sub->following = 1;
	memcpy(sub->id, s->id, sizeof(sub->id));
	r = client_new(s->cfg, s->o->auth, &sub->client);
	if (r == 0)
		r = client_set_version(sub->client, client_version(s->client));
	if (r != 0) {
		client_free(sub->client);
		sub->client = NULL;
		return sync_fail(s, r, "cannot open a lane's connection");
	}
	client_set_abort(sub->client, &l->abort);
	sync_pace(s, sub->client);	/* one bwlimit for every connection */
	if (pthread_create(&l->thread, NULL, lane_thread, l) != 0) {
		client_free(sub->client);
		sub->client = NULL;
		return sync_fail(s, -AR_ENOMEM, "cannot start a lane: %s",
		    strerror(errno));
	}
	l->state = LANE_RUNNING;
	log_verbose("'%s' (%llu bytes) goes to a lane of its own, after "
	    "change %llu", sync_esc(path, len), (unsigned long long)size,
	    (unsigned long long)l->base);
	return 0;
}
