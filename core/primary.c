/*
 * primary.c: asyncrep watch put together: the spool, the watcher thread,
 * the pump thread (group commit and release) and the server, started and
 * stopped in order (primary.h).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "primary.h"
#include "reverify.h"
#include "server.h"
#include "source.h"
#include "spool.h"
#include "util.h"
#include "watcher.h"

/* How often the pump looks at the clock when nothing happens: it ends
 * overdue long-polls. */
#define PUMP_TICK_NS (50u * 1000 * 1000)
/* How often a spool that cannot record is tried again. */
#define PRIMARY_RETRY_NS (1000u * 1000 * 1000)
/* The block cache, under spool_dir (SPOOL.md). */
#define PRIMARY_CACHE_DIR "blocks"

struct primary {
	const struct config_primary *cfg;
	const char *status_file;	/* --status-file, or NULL */
	struct spool *spool;
	struct server *srv;
	struct watcher *watcher;
	int rootfd;		/* data_dir, as served */
	struct source_id source;	/* the spool's record of it */
	int source_errno;	/* of the last failed record, or 0 */
	pthread_mutex_t lock;	/* the fields below, and every append */
	pthread_cond_t cond;
	int pending;		/* records appended, not committed */
	int stop;
	/*
	 * The spool cannot record: the errno of its failure (0 while it
	 * records), since when (CLOCK_REALTIME seconds), and how many
	 * changes it lost in all (only grows: server_unrecorded) and
	 * before this condition. Appends and spool_resume happen under
	 * lock, so a change is either in the journal before the RESCAN
	 * that ends the condition, or counted here.
	 */
	int unrecorded;
	uint64_t unrecorded_since;
	uint64_t lost;
	uint64_t lost_before;
	/* watcher thread only: what status_file holds, and the errno of
	 * the last failure to write it (logged once) */
	char status_line[128];
	int status_errno;
};

/* Under p->lock: a change (or a commit of changes) could not be
 * recorded. One log line per condition. */
static void
primary_lost_locked(struct primary *p)
{
	int e = spool_failed(p->spool);

	/* Not a write failure (a record refused): the journal still
	 * works, but only a RESCAN can make up for the change. */
	if (e == 0)
		e = EIO;
	if (p->unrecorded == 0)
		p->lost_before = p->lost;
	p->lost++;
	if (p->unrecorded == e)
		return;
	if (p->unrecorded == 0) {
		log_error("spool: cannot record changes: %s; standbys are "
		    "sent to compare the whole tree until it records again",
		    strerror(e));
		p->unrecorded_since = (uint64_t)time(NULL);
	} else
		log_error("spool: still cannot record changes, now: %s",
		    strerror(e));
	p->unrecorded = e;
}

/* The watcher's callback: one change, into the spool. */
static void
primary_on_change(void *arg, int op, const char *path, size_t len,
    const char *path2, size_t len2)
{
	struct primary *p = arg;
	char esc[LOG_ESC_MAX];
	uint64_t seq = 0;
	int r;

	assert(op >= SPOOL_MODIFY && op <= SPOOL_RESCAN);
	assert((op == SPOOL_RENAME) == (path2 != NULL && len2 > 0));
	pthread_mutex_lock(&p->lock);
	r = spool_append(p->spool, (uint8_t)op, path, len, path2, len2, &seq);
	if (r == 0)
		p->pending = 1;
	else
		primary_lost_locked(p);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (r == 0)
		log_debug("change %llu: op %d '%s'", (unsigned long long)seq,
		    op, log_escape(path, len, esc, sizeof(esc)));
}

/* The re-verification found a file rewritten under the append path:
 * a change, which the standbys confirm by root (PROTOCOL.md). */
static void
primary_on_rewrite(void *arg, const char *path, size_t len)
{
	primary_on_change(arg, SPOOL_MODIFY, path, len, NULL, 0);
}

/*
 * Try to make a spool that cannot record write again (spool_resume):
 * its RESCAN then makes every standby compare once more, which covers
 * every change lost meanwhile. Returns 0 and the RESCAN's *seq once it
 * records again.
 */
static int
primary_resume(struct primary *p, uint64_t *seq)
{
	uint64_t lost, secs;
	int r, e;

	pthread_mutex_lock(&p->lock);
	r = spool_resume(p->spool, seq);
	if (r == 0) {
		lost = p->lost - p->lost_before;
		secs = (uint64_t)time(NULL) - p->unrecorded_since;
		p->unrecorded = 0;
		log_warn("spool: recording changes again from change %llu, "
		    "after %llu s (%llu change(s) not recorded: standbys "
		    "compare once more)", (unsigned long long)*seq,
		    (unsigned long long)secs, (unsigned long long)lost);
	} else {
		e = spool_failed(p->spool);
		if (e != 0 && e != p->unrecorded) {
			log_error("spool: still cannot record changes, now: %s",
			    strerror(e));
			p->unrecorded = e;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/*
 * The spool's condition in one line, as PRIMARY_SPOOL_* in primary.h:
 * "recording", or "full|failing SINCE ERROR".
 */
static void
primary_condition(struct primary *p, char *out, size_t outlen)
{
	uint64_t since;
	int e;

	pthread_mutex_lock(&p->lock);
	e = p->unrecorded;
	since = p->unrecorded_since;
	pthread_mutex_unlock(&p->lock);
	if (e == 0)
		snprintf(out, outlen, "%s", PRIMARY_SPOOL_RECORDING);
	else
		snprintf(out, outlen, "%s %llu %s", e == ENOSPC ||
		    e == EDQUOT ? PRIMARY_SPOOL_FULL : PRIMARY_SPOOL_FAILING,
		    (unsigned long long)since, strerror(e));
}

/*
 * A full filesystem has no room for the temp file of a durable write;
 * the status file's own block is still there: overwrite it in place (a
 * reader may see a torn line, which only status shows).
 */
static int
primary_write_inplace(int dirfd, const char *name, const char *buf,
    size_t len)
{
	int fd, r;

	fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -AR_EIO;
	r = fs_pwrite_full(fd, buf, len, 0);
	if (r == 0 && ftruncate(fd, (off_t)len) == -1)
		r = -AR_EIO;
	close(fd);
	return r;
}

/* Whether the tree served is empty, in the spool's record, for the next
 * start's check (source.h); a failure is logged once per errno. */
static void
primary_note_source(struct primary *p)
{
	int dirfd, r;

	r = fs_open_dir(p->cfg->spool_dir, &dirfd);
	if (r == 0) {
		r = source_note(dirfd, p->rootfd, &p->source);
		close(dirfd);
	}
	if (r == 0)
		p->source_errno = 0;
	else if (errno != p->source_errno) {
		p->source_errno = errno;
		log_warn("spool: cannot record whether data_dir is empty: %s",
		    strerror(errno));
	}
}

/* The watcher's figures for metrics (the watcher is single-threaded:
 * from its thread). */
static void
primary_watcher_metrics(struct primary *p)
{
	struct watcher_stats ws;

	watcher_get_stats(p->watcher, &ws);
	metrics_set(METRICS_WATCHED_DIRS, ws.watches);
	metrics_set(METRICS_WATCH_OVERFLOWS, ws.overflows);
	metrics_set(METRICS_WATCH_REBUILDS, ws.rebuilds);
	metrics_set(METRICS_WATCH_EVENTS, ws.events);
}

/*
 * What a scrape knows of one standby: the journal bytes of the records
 * in (ack, upto] and when the first of them was recorded. Kept between
 * scrapes, so that each reads only the records that were released or
 * acknowledged since the last, not the whole lag again.
 */
struct primary_lag {
	char id[LIMIT_ID_MAX + 1];
	uint64_t ack, upto;
	uint64_t bytes;
	uint64_t first_ns;	/* 0: no record in (ack, upto] */
};
#define PRIMARY_LAGS 128

/* Bytes and first time of the records in (after, upto]. */
struct primary_span {
	uint64_t bytes;
	uint64_t first_ns;
	int trimmed;		/* the journal no longer holds them all */
};

static int
primary_span_rec(void *arg, const struct spool_rec *r)
{
	struct primary_span *sp = arg;

	if (sp->first_ns == 0)
		sp->first_ns = r->time_ns;
	sp->bytes += spool_rec_size(r);
	return 0;
}

static void
primary_span(struct spool *spool, uint64_t after, uint64_t upto,
    struct primary_span *sp)
{
	memset(sp, 0, sizeof(*sp));
	if (after >= upto)
		return;
	if (spool_read(spool, after, upto, primary_span_rec, sp) ==
	    -AR_ESTATE) {
		/* A position the journal no longer holds: what it holds. */
		memset(sp, 0, sizeof(*sp));
		sp->trimmed = 1;
		(void)spool_read(spool, spool_first_seq(spool) - 1, upto,
		    primary_span_rec, sp);
	}
}

/* The lag of standby id at ack, up to released, from what the last
 * scrape knew of it. Called under the metrics lock (one scrape at a
 * time). */
static void
primary_lag_update(struct primary *p, struct primary_lag *l, uint64_t ack,
    uint64_t released)
{
	struct primary_span sp;

	if (ack >= released) {
		l->ack = l->upto = ack;
		l->bytes = l->first_ns = 0;
		return;
	}
	if (l->upto != 0 && ack >= l->ack && ack <= l->upto &&
	    released >= l->upto && l->first_ns != 0) {
		/* Drop what it acknowledged, add what was released. */
		primary_span(p->spool, l->ack, ack, &sp);
		if (!sp.trimmed && sp.bytes <= l->bytes) {
			l->bytes -= sp.bytes;
			primary_span(p->spool, l->upto, released, &sp);
			if (!sp.trimmed) {
				l->bytes += sp.bytes;
				if (ack > l->ack || l->bytes == sp.bytes) {
					struct primary_span first;

					/* The oldest left: one record. */
					primary_span(p->spool, ack, ack + 1,
					    &first);
					l->first_ns = first.first_ns;
				}
				l->ack = ack;
				l->upto = released;
				return;
			}
		}
	}
	primary_span(p->spool, ack, released, &sp);
	l->ack = ack;
	l->upto = released;
	l->bytes = sp.bytes;
	l->first_ns = sp.first_ns;
}

struct primary_acks {
	struct primary *p;
	struct metrics_out *out;
	uint64_t released;
	int pass;		/* the family being written */
};

/* Per standby: its acknowledged sequence, and how far it is behind
 * what was released, in records, journal bytes and seconds (since the
 * oldest change it has not acknowledged was recorded). */
static void
primary_ack_metric(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	static struct primary_lag lags[PRIMARY_LAGS];
	struct primary_acks *a = arg;
	struct primary_lag *l = NULL;
	struct timespec now;
	char labels[128], esc[LIMIT_ID_MAX * 2 + 1];
	uint64_t now_ns;
	size_t i;
	int n;

	(void)mtime_ns;
	n = snprintf(labels, sizeof(labels), "standby=\"%s\"",
	    metrics_label_escape(id, esc, sizeof(esc)));
	if (n < 0 || (size_t)n >= sizeof(labels))
		return;
	switch (a->pass) {
	case 0:
		metrics_out_uint(a->out, "asyncrep_standby_acked_sequence",
		    labels, seq);
		return;
	case 1:
		metrics_out_uint(a->out, "asyncrep_standby_lag_records",
		    labels, seq < a->released ? a->released - seq : 0);
		return;
	default:
		break;
	}
	/* Its entry, or a free one (the table is only a cache). */
	for (i = 0; i < PRIMARY_LAGS && l == NULL; i++) {
		if (strcmp(lags[i].id, id) == 0)
			l = &lags[i];
	}
	for (i = 0; i < PRIMARY_LAGS && l == NULL; i++) {
		if (lags[i].id[0] == '\0')
			l = &lags[i];
	}
	if (l == NULL)
		l = &lags[0];
	if (strcmp(l->id, id) != 0) {
		memset(l, 0, sizeof(*l));
		snprintf(l->id, sizeof(l->id), "%s", id);
	}
	if (a->pass == 2) {
		primary_lag_update(a->p, l, seq, a->released);
		metrics_out_uint(a->out, "asyncrep_standby_lag_bytes", labels,
		    l->bytes);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (uint64_t)now.tv_sec * 1000000000ull +
	    (uint64_t)now.tv_nsec;
	metrics_out_double(a->out, "asyncrep_standby_lag_seconds", labels,
	    l->first_ns != 0 && now_ns > l->first_ns ?
	    (double)(now_ns - l->first_ns) / 1e9 : 0.0);
}

/* A scrape: the spool, the connections and each standby. */
static void
primary_collect(struct metrics_out *out, void *arg)
{
	static const char *const fam[4][2] = {
		{ "asyncrep_standby_acked_sequence",
		  "Last sequence each standby acknowledged." },
		{ "asyncrep_standby_lag_records",
		  "Released changes a standby has not acknowledged." },
		{ "asyncrep_standby_lag_bytes",
		  "Journal bytes of the changes a standby has not "
		  "acknowledged." },
		{ "asyncrep_standby_lag_seconds",
		  "Age of the oldest change a standby has not acknowledged." },
	};
	struct primary *p = arg;
	struct primary_acks a;
	uint64_t first, durable;

	durable = spool_durable_seq(p->spool);
	first = spool_first_seq(p->spool);
	metrics_out_family(out, "asyncrep_spool_records", "gauge",
	    "Change records the journal holds.");
	metrics_out_uint(out, "asyncrep_spool_records", "",
	    first <= durable ? durable - first + 1 : 0);
	metrics_out_family(out, "asyncrep_spool_bytes", "gauge",
	    "Bytes of the journal's segments.");
	metrics_out_uint(out, "asyncrep_spool_bytes", "",
	    spool_size(p->spool));
	metrics_out_family(out, "asyncrep_spool_max_bytes", "gauge",
	    "The journal's cap (spool_max_size).");
	metrics_out_uint(out, "asyncrep_spool_max_bytes", "",
	    p->cfg->spool_max_size);
	metrics_out_family(out, "asyncrep_spool_recording", "gauge",
	    "1 while the journal records every change, 0 when it cannot.");
	pthread_mutex_lock(&p->lock);
	metrics_out_uint(out, "asyncrep_spool_recording", "",
	    p->unrecorded == 0);
	pthread_mutex_unlock(&p->lock);
	metrics_out_family(out, "asyncrep_connections", "gauge",
	    "Connections of standbys open now.");
	metrics_out_uint(out, "asyncrep_connections", "",
	    server_connections(p->srv));
	a.p = p;
	a.out = out;
	a.released = server_released(p->srv);
	for (a.pass = 0; a.pass < 4; a.pass++) {
		metrics_out_family(out, fam[a.pass][0], "gauge",
		    fam[a.pass][1]);
		(void)spool_acks(p->spool, primary_ack_metric, &a);
	}
}

/* The watcher's figures and the spool's condition for asyncrep status,
 * every 2 s, and the condition for --status-file when it changed. Called
 * from the watcher thread only: the watcher module is single-threaded. */
static void
primary_write_status(struct primary *p)
{
	struct watcher_stats ws;
	char line[512], cond[sizeof(p->status_line)];
	int n, dirfd;

	primary_condition(p, cond, sizeof(cond));
	if (p->status_file != NULL && strcmp(cond, p->status_line) != 0) {
		n = snprintf(line, sizeof(line), "%s\n", cond);
		assert(n > 0 && (size_t)n < sizeof(line));
		if (fs_write_durable(AT_FDCWD, p->status_file, line, (size_t)n,
		    0644) == 0) {
			memcpy(p->status_line, cond, sizeof(cond));
			p->status_errno = 0;
		} else if (errno != p->status_errno) {
			p->status_errno = errno;
			log_warn("status file '%s': %s", p->status_file,
			    strerror(errno));
		}
	}
	watcher_get_stats(p->watcher, &ws);
	n = snprintf(line, sizeof(line), "%s mode, %llu directories watched, "
	    "%llu events, %llu overflows, %llu rebuilds, pid %ld\nspool %s\n",
	    ws.mode == WATCHER_POLL ? "poll" : "inotify",
	    (unsigned long long)ws.watches, (unsigned long long)ws.events,
	    (unsigned long long)ws.overflows, (unsigned long long)ws.rebuilds,
	    (long)getpid(), cond);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (fs_open_dir(p->cfg->spool_dir, &dirfd) != 0)
		return;
	if (fs_write_durable(dirfd, PRIMARY_STATUS_FILE, line, (size_t)n,
	    0644) != 0 && primary_write_inplace(dirfd, PRIMARY_STATUS_FILE,
	    line, (size_t)n) != 0)
		log_debug("cannot write %s", PRIMARY_STATUS_FILE);
	close(dirfd);
	primary_note_source(p);
}

static void *
primary_watcher_main(void *arg)
{
	struct primary *p = arg;
	uint64_t next_status = 0, now;
	int r, stop;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		stop = p->stop;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		primary_watcher_metrics(p);
		now = util_mono_ns();
		if (now >= next_status) {
			primary_write_status(p);
			next_status = now + 2000000000ull;
		}
		r = watcher_poll(p->watcher, 100);
		if (r != 0) {
			log_error("watcher: %s", ar_strerror(r));
			sleep(1);
		}
	}
	return NULL;
}

/* Commit what the watcher appended; release it when interval says. */
static void *
primary_pump_main(void *arg)
{
	struct primary *p = arg;
	uint64_t interval = p->cfg->interval_ns;
	uint64_t next = util_mono_ns() + interval, retry = 0;
	uint64_t committed = spool_durable_seq(p->spool), now, seq, lost;
	struct timespec until;
	int pending, stop, unrecorded, r;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (!p->pending && !p->stop) {
			/* Wake for the next release on time, not on a tick. */
			uint64_t wait = PUMP_TICK_NS;

			now = util_mono_ns();
			if (interval > 0 && next > now && next - now < wait)
				wait = next - now;
			/* One carry into tv_sec is enough below a second. */
			assert(wait < 1000000000u);
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)wait;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&p->cond, &p->lock, &until);
		}
		pending = p->pending;
		p->pending = 0;
		stop = p->stop;
		unrecorded = p->unrecorded;
		pthread_mutex_unlock(&p->lock);
		if (pending && !unrecorded) {
			/* Everything appended so far goes in one fdatasync. */
			r = spool_commit(p->spool);
			if (r != 0) {
				pthread_mutex_lock(&p->lock);
				primary_lost_locked(p);
				pthread_mutex_unlock(&p->lock);
			}
		}
		now = util_mono_ns();
		if (unrecorded && now >= retry && !stop) {
			retry = now + PRIMARY_RETRY_NS;
			if (primary_resume(p, &seq) == 0)
				server_recorded(p->srv, seq);
		}
		/* Appends commit too, when the group-commit bound passed. */
		assert(spool_durable_seq(p->spool) >= committed);
		committed = spool_durable_seq(p->spool);
		if (interval == 0 || now >= next) {
			pthread_mutex_lock(&p->lock);
			unrecorded = p->unrecorded;
			lost = p->lost;
			pthread_mutex_unlock(&p->lock);
			if (unrecorded)
				server_unrecorded(p->srv, lost);
			server_release(p->srv, committed);
			metrics_set(METRICS_RELEASED_SEQ,
			    server_released(p->srv));
			if (interval > 0)
				next = now + interval;
		} else
			server_release(p->srv, 0);	/* deadlines only */
		/* The acks put off by busy standbys, once a second old. */
		spool_ack_flush(p->spool, 0);
		if (stop)
			break;
	}
	return NULL;
}

static int
primary_start_threads(struct primary *p, pthread_t *wt, pthread_t *pt)
{
	if (pthread_create(pt, NULL, primary_pump_main, p) != 0)
		return -AR_EINTERNAL;
	if (pthread_create(wt, NULL, primary_watcher_main, p) != 0) {
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(*pt, NULL);
		return -AR_EINTERNAL;
	}
	return 0;
}

/*
 * The spool's lock and generation, once data_dir is known to be the
 * tree the spool served (source.h): the check comes before a fresh
 * spool gets its generation, so a refused start leaves it fresh.
 */
static int
primary_open_spool(struct primary *p, unsigned source_flags, int *lockfd,
    char gen[WIRE_GEN_LEN + 1], char *err, size_t errlen)
{
	const struct config_primary *cfg = p->cfg;
	int dirfd, r;

	r = gen_lock_dir(cfg->spool_dir, &dirfd, lockfd, err, errlen);
	if (r != 0)
		return r;
	r = source_admit(dirfd, p->rootfd, cfg->data_dir, !gen_exists(dirfd),
	    source_flags, &p->source, err, errlen);
	if (r == 0)
		r = gen_load(dirfd, cfg->spool_dir, gen, err, errlen);
	close(dirfd);
	return r;
}

int
primary_run(const struct config_primary *cfg, const struct auth *auth,
    const char *status_file, unsigned source_flags, const sigset_t *sigs,
    char *err, size_t errlen)
{
	struct primary p;
	struct server_opts so;
	struct spool_opts spo;
	struct watcher_opts wo;
	struct reverify_opts ro;
	struct reverify *rv = NULL;
	struct exclude *ex = NULL;
	char gen[WIRE_GEN_LEN + 1];
	struct metrics_server *ms = NULL;
	char cache_dir[PATH_MAX];
	pthread_t wt, pt;
	uint64_t seq;
	int rootfd = -1, lockfd = -1, sig, r;

	memset(&p, 0, sizeof(p));
	metrics_init(METRICS_PRIMARY);
	p.cfg = cfg;
	p.status_file = status_file;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	if (fs_open_dir(cfg->data_dir, &rootfd) != 0) {
		snprintf(err, errlen, "data directory '%s': %s", cfg->data_dir,
		    strerror(errno));
		r = -AR_EIO;
		goto out;
	}
	p.rootfd = rootfd;
	r = primary_open_spool(&p, source_flags, &lockfd, gen, err, errlen);
	if (r != 0)
		goto out;
	r = exclude_new(&ex);
	if (r == 0 && cfg->exclude != NULL)
		r = exclude_add_list(ex, cfg->exclude, err, errlen);
	if (r != 0) {
		r = -AR_ECONFIG;
		goto out;
	}
	memset(&spo, 0, sizeof(spo));
	spo.max_size = cfg->spool_max_size;
	/* Trimming and the cap drop whole segments: keep several under the
	 * cap. */
	spo.segment_size = cfg->spool_max_size / 8;
	if (spo.segment_size > 16u * 1024 * 1024)
		spo.segment_size = 16u * 1024 * 1024;
	if (spo.segment_size < 64u * 1024)
		spo.segment_size = 64u * 1024;
	r = spool_open(cfg->spool_dir, &spo, &p.spool, err, errlen);
	if (r != 0)
		goto out;
	/*
	 * What changed while no primary watched is unknown: the first
	 * record of every incarnation asks standbys for a compare (of
	 * metadata: unchanged files are not sent again). A journal that
	 * holds records but cannot write this one starts as one that
	 * cannot record: standbys compare all the same.
	 */
	r = spool_append(p.spool, SPOOL_RESCAN, "", 0, NULL, 0, &seq);
	if (r == 0)
		r = spool_commit(p.spool);
	if (r != 0 && (spool_failed(p.spool) == 0 ||
	    spool_durable_seq(p.spool) == 0)) {
		snprintf(err, errlen, "spool '%s': %s", cfg->spool_dir,
		    ar_strerror(r));
		goto out;
	}
	if (r != 0)
		primary_lost_locked(&p);	/* no other thread yet */
	memset(&wo, 0, sizeof(wo));
	wo.root = cfg->data_dir;
	wo.mode = cfg->watch_mode != NULL &&
	    strcmp(cfg->watch_mode, "poll") == 0 ? WATCHER_POLL :
	    WATCHER_INOTIFY;
	wo.poll_interval_ns = cfg->poll_interval_ns;
	wo.exclude = ex;
	wo.skip_dir = cfg->spool_dir;
	r = watcher_new(&wo, primary_on_change, &p, &p.watcher, err, errlen);
	if (r != 0)
		goto out;
	memset(&so, 0, sizeof(so));
	so.cfg = cfg;
	so.rootfd = rootfd;
	so.generation = gen;
	so.role = WIRE_ROLE_PRIMARY;
	so.auth = auth;
	so.spool = p.spool;
	so.exclude = ex;
	/* The block cache (SPOOL.md): without it, appends still work,
	 * hashing the standby's prefix from the file. */
	if ((size_t)snprintf(cache_dir, sizeof(cache_dir), "%s/%s",
	    cfg->spool_dir, PRIMARY_CACHE_DIR) < sizeof(cache_dir) &&
	    (mkdir(cache_dir, 0700) == 0 || errno == EEXIST))
		so.cache_dir = cache_dir;
	r = server_start(&so, &p.srv, err, errlen);
	if (r != 0)
		goto out;
	metrics_set(METRICS_RELEASED_SEQ, server_released(p.srv));
	r = primary_start_threads(&p, &wt, &pt);
	if (r != 0) {
		snprintf(err, errlen, "cannot start threads");
		goto out;
	}
	metrics_set_collector(primary_collect, &p);
	(void)metrics_start(&cfg->metrics_listen, &ms);
	memset(&ro, 0, sizeof(ro));
	ro.rootfd = rootfd;
	ro.cache_dir = so.cache_dir;
	ro.rate = cfg->reverify_rate;
	ro.changed = primary_on_rewrite;
	ro.arg = &p;
	if (reverify_start(&ro, &rv) != 0)
		log_warn("block cache: no re-verification: %s",
		    strerror(errno));
	log_info("serving '%s' on %s, generation %s, %s watcher",
	    cfg->data_dir, cfg->listen.text, gen,
	    wo.mode == WATCHER_POLL ? "poll" : "inotify");
	for (;;) {
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
	}
	log_info("stopping on signal %d", sig);
	metrics_stop(ms);
	ms = NULL;
	metrics_set_collector(NULL, NULL);
	pthread_mutex_lock(&p.lock);
	p.stop = 1;
	pthread_cond_signal(&p.cond);
	pthread_mutex_unlock(&p.lock);
	reverify_stop(rv);
	rv = NULL;
	pthread_join(wt, NULL);
	pthread_join(pt, NULL);
	/* What the watcher appended last becomes durable too. */
	if (!p.unrecorded)
		spool_commit(p.spool);
	primary_note_source(&p);
	r = 0;
out:
	metrics_stop(ms);
	metrics_set_collector(NULL, NULL);
	reverify_stop(rv);
	server_stop(p.srv);
	watcher_free(p.watcher);
	spool_close(p.spool);
	exclude_free(ex);
	if (lockfd >= 0)
		close(lockfd);
	if (rootfd >= 0)
		close(rootfd);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return r;
}
