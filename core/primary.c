/*
 * primary.c: asyncrep watch put together: the spool, the watcher thread,
 * the pump thread (group commit and release) and the server, started and
 * stopped in order (primary.h).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "gen.h"
#include "log.h"
#include "primary.h"
#include "server.h"
#include "spool.h"
#include "util.h"
#include "watcher.h"

/* How often the pump looks at the clock when nothing happens: it ends
 * overdue long-polls. */
#define PUMP_TICK_NS (50u * 1000 * 1000)

struct primary {
	const struct config_primary *cfg;
	struct spool *spool;
	struct server *srv;
	struct watcher *watcher;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;		/* records appended, not committed */
	int stop;
	int failed;		/* the spool failed: stop serving changes */
};

/* The watcher's callback: one change, into the spool. */
static void
primary_on_change(void *arg, int op, const char *path, size_t len,
    const char *path2, size_t len2)
{
	struct primary *p = arg;
	char esc[LOG_ESC_MAX];
	uint64_t seq;
	int r;

	assert(op >= SPOOL_MODIFY && op <= SPOOL_RESCAN);
	assert((op == SPOOL_RENAME) == (path2 != NULL && len2 > 0));
	r = spool_append(p->spool, (uint8_t)op, path, len, path2, len2, &seq);
	if (r != 0) {
		log_error("spool: cannot record a change of '%s': %s",
		    log_escape(path, len, esc, sizeof(esc)), ar_strerror(r));
		return;
	}
	log_debug("change %llu: op %d '%s'", (unsigned long long)seq, op,
	    log_escape(path, len, esc, sizeof(esc)));
	pthread_mutex_lock(&p->lock);
	p->pending = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* The watcher's figures for asyncrep status, every 2 s. Called from the
 * watcher thread only: the watcher module is single-threaded. */
static void
primary_write_status(struct primary *p)
{
	struct watcher_stats ws;
	char line[512];
	int n, dirfd;

	watcher_get_stats(p->watcher, &ws);
	n = snprintf(line, sizeof(line), "%s mode, %llu directories watched, "
	    "%llu events, %llu overflows, %llu rebuilds, pid %ld",
	    ws.mode == WATCHER_POLL ? "poll" : "inotify",
	    (unsigned long long)ws.watches, (unsigned long long)ws.events,
	    (unsigned long long)ws.overflows, (unsigned long long)ws.rebuilds,
	    (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (fs_open_dir(p->cfg->spool_dir, &dirfd) != 0)
		return;
	if (fs_write_durable(dirfd, PRIMARY_STATUS_FILE, line, (size_t)n,
	    0644) != 0)
		log_debug("cannot write %s", PRIMARY_STATUS_FILE);
	close(dirfd);
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
	uint64_t next = util_mono_ns() + interval;
	uint64_t committed = spool_durable_seq(p->spool), now;
	struct timespec until;
	int pending, stop, r;

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
		pthread_mutex_unlock(&p->lock);
		if (pending && !p->failed) {
			/* Everything appended so far goes in one fdatasync. */
			r = spool_commit(p->spool);
			if (r != 0) {
				log_error("spool: commit failed: %s; changes are "
				    "no longer released (restart to recover)",
				    ar_strerror(r));
				p->failed = 1;
			} else {
				assert(spool_durable_seq(p->spool) >=
				    committed);
				committed = spool_durable_seq(p->spool);
			}
		}
		now = util_mono_ns();
		if (interval == 0 || now >= next) {
			server_release(p->srv, committed);
			if (interval > 0)
				next = now + interval;
		} else
			server_release(p->srv, 0);	/* deadlines only */
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

int
primary_run(const struct config_primary *cfg, const struct auth *auth,
    const sigset_t *sigs, char *err, size_t errlen)
{
	struct primary p;
	struct server_opts so;
	struct spool_opts spo;
	struct watcher_opts wo;
	struct exclude *ex = NULL;
	char gen[WIRE_GEN_LEN + 1];
	pthread_t wt, pt;
	uint64_t seq;
	int rootfd = -1, lockfd = -1, sig, r;

	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	if (fs_open_dir(cfg->data_dir, &rootfd) != 0) {
		snprintf(err, errlen, "data directory '%s': %s", cfg->data_dir,
		    strerror(errno));
		r = -AR_EIO;
		goto out;
	}
	r = gen_open(cfg->spool_dir, &lockfd, gen, err, errlen);
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
	 * metadata: unchanged files are not sent again).
	 */
	r = spool_append(p.spool, SPOOL_RESCAN, "", 0, NULL, 0, &seq);
	if (r == 0)
		r = spool_commit(p.spool);
	if (r != 0) {
		snprintf(err, errlen, "spool '%s': %s", cfg->spool_dir,
		    ar_strerror(r));
		goto out;
	}
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
	r = server_start(&so, &p.srv, err, errlen);
	if (r != 0)
		goto out;
	r = primary_start_threads(&p, &wt, &pt);
	if (r != 0) {
		snprintf(err, errlen, "cannot start threads");
		goto out;
	}
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
	pthread_mutex_lock(&p.lock);
	p.stop = 1;
	pthread_cond_signal(&p.cond);
	pthread_mutex_unlock(&p.lock);
	pthread_join(wt, NULL);
	pthread_join(pt, NULL);
	/* What the watcher appended last becomes durable too. */
	if (!p.failed)
		spool_commit(p.spool);
	r = 0;
out:
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
