/*
 * rescue.c: asyncrep rescue (rescue.h): settle, probe the primary's
 * storage under the watchdog, serve its journal from its address, wait
 * for a standby to confirm the final position, fence the spool; and the
 * status file that cluster monitors read.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "gen.h"
#include "guard.h"
#include "log.h"
#include "rescue.h"
#include "server.h"
#include "spool.h"
#include "util.h"

/* A standby that called once may go quiet this long before the rescue
 * gives up on it (it restarts, or applies a large batch). */
#define RESCUE_IDLE_NS (600ull * 1000000000ull)

/* What the standbys did, from the server's threads (rescue_on_event):
 * CLOCK_MONOTONIC of the first time each happened, 0 while it has not. */
struct rescue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t first_contact, last_contact, compare, complete;
};

/*
 * Where a rescue stands once it listens, as the status file tells it. It
 * only moves forward (struct rescue's times are set once), and may skip
 * a state that a standby went through between two looks.
 */
enum rescue_state {
	RESCUE_LISTENING = 0,	/* no standby has called yet */
	RESCUE_TRANSFERRING,	/* a standby is fetching the journal */
	RESCUE_COMPARING,	/* the final batch, the compare, went out */
	RESCUE_COMPLETE,	/* a standby holds the final position */
};

/* Called with rs->lock held. */
static enum rescue_state
rescue_state_of(const struct rescue *rs)
{
	if (rs->complete != 0)
		return RESCUE_COMPLETE;
	if (rs->compare != 0)
		return RESCUE_COMPARING;
	if (rs->first_contact != 0)
		return RESCUE_TRANSFERRING;
	return RESCUE_LISTENING;
}

/* The status file ends with a verdict written from the watchdog thread
 * (rescue_status_final): nothing may rename an older state over it. */
static pthread_mutex_t rescue_status_lock = PTHREAD_MUTEX_INITIALIZER;
static int rescue_status_sealed;

static void
rescue_status_write(const char *file, const char *state, const char *detail)
{
	char line[512], dir[4096];
	const char *slash;
	int n, dirfd;

	if (file == NULL)
		return;
	n = snprintf(line, sizeof(line), "%s%s%s\n", state,
	    detail[0] ? " " : "", detail);
	slash = strrchr(file, '/');
	if (n < 0 || (size_t)n >= sizeof(line) || slash == NULL ||
	    (size_t)(slash - file) >= sizeof(dir))
		return;
	memcpy(dir, file, (size_t)(slash - file));
	dir[slash - file] = '\0';
	if (dir[0] == '\0')
		memcpy(dir, "/", 2);	/* a file in the root directory */
	if (fs_mkdir_p(dir, 0755) != 0 || fs_open_dir(dir, &dirfd) != 0) {
		log_warn("status file '%s': %s", file, strerror(errno));
		return;
	}
	if (fs_write_durable(dirfd, slash + 1, line, (size_t)n, 0644) != 0)
		log_warn("status file '%s': %s", file, strerror(errno));
	close(dirfd);
}

void
rescue_status(const char *file, const char *state, const char *detail)
{
	pthread_mutex_lock(&rescue_status_lock);
	if (!rescue_status_sealed)
		rescue_status_write(file, state, detail);
	pthread_mutex_unlock(&rescue_status_lock);
}

void
rescue_status_final(const char *file, const char *state,
    const char *detail)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	/* A writer stuck with the lock must not keep the verdict out. */
	if (pthread_mutex_timedlock(&rescue_status_lock, &until) == 0) {
		rescue_status_sealed = 1;
		rescue_status_write(file, state, detail);
		pthread_mutex_unlock(&rescue_status_lock);
	} else {
		rescue_status_sealed = 1;
		rescue_status_write(file, state, detail);
	}
}

static void
rescue_on_event(void *arg, int ev)
{
	struct rescue *rs = arg;
	uint64_t now = util_mono_ns();

	assert(ev >= SERVER_EV_CONTACT && ev <= SERVER_EV_COMPLETE);
	pthread_mutex_lock(&rs->lock);
	rs->last_contact = now;
	if (rs->first_contact == 0)
		rs->first_contact = now;
	if (ev == SERVER_EV_COMPARE && rs->compare == 0)
		rs->compare = now;
	if (ev == SERVER_EV_COMPLETE && rs->complete == 0)
		rs->complete = now;
	pthread_cond_signal(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
}

void
rescue_storage_hung(void *status_file, const struct guard_expiry *e)
{
	char detail[256];

	log_error("rescue: storage hung: no answer for %.1f s while %s (a "
	    "hard NFS mount whose server is gone?)",
	    (double)e->stuck_ns / 1e9, e->what);
	snprintf(detail, sizeof(detail), "storage hung for %.1f s while %s",
	    (double)e->stuck_ns / 1e9, e->what);
	/* Should the status file's own directory hang, SIGALRM ends us. */
	alarm(5);
	rescue_status_final(status_file, "failed", detail);
	_exit(AR_ESTORAGE);
}

/* Once the standby confirmed and the spool is marked, a thread still
 * blocked in the storage (a late request) changes nothing: the rescue
 * succeeded. */
static void
rescue_hung_after(void *arg, const struct guard_expiry *e)
{
	(void)arg;
	log_warn("rescue: the storage hung after the rescue completed (%.1f "
	    "s while %s); exiting", (double)e->stuck_ns / 1e9, e->what);
	_exit(0);
}

/* The first look at the storage: the data directory and the generation. */
static int
rescue_probe_storage(const struct config_primary *cfg, char *gen, char *err,
    size_t errlen)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the primary's data directory '%s': %s",
		    cfg->data_dir, S_ISDIR(st.st_mode) || st.st_mode == 0 ?
		    strerror(errno) : "not a directory");
		return -AR_ESTORAGE;
	}
	return gen_read(cfg->spool_dir, gen, err, errlen);
}

/* The kind of network filesystem dir is on, whose client may cache
 * attributes and lookups; NULL for any other. */
static const char *
rescue_caching_fs(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) != 0)
		return NULL;
	switch ((unsigned long)sf.f_type) {
	case 0x6969UL:		/* NFS_SUPER_MAGIC */
		return "NFS";
	case 0x65735546UL:	/* FUSE_SUPER_MAGIC */
		return "FUSE";
	case 0xff534d42UL:	/* CIFS_SUPER_MAGIC */
	case 0xfe534d42UL:	/* SMB2_SUPER_MAGIC */
		return "SMB";
	default:
		return NULL;
	}
}

/* Say so, once, when nothing outwaits such a client's caches (the mount
 * options are not visible from here in a portable way; the operator
 * knows them). */
static void
rescue_warn_caching(const struct config_primary *cfg, uint64_t settle_ns)
{
	const char *dir = cfg->data_dir, *kind;

	if (settle_ns > 0)
		return;
	kind = rescue_caching_fs(dir);
	if (kind == NULL) {
		dir = cfg->spool_dir;
		kind = rescue_caching_fs(dir);
	}
	if (kind == NULL)
		return;
	log_warn("rescue: the primary's storage ('%s') is on %s: unless it "
	    "is mounted without attribute and lookup caching (NFS: actimeo=0,"
	    "lookupcache=none), stale answers can hide the last writes; "
	    "give --settle the cache lifetime (asyncrep(1), RESCUE)", dir,
	    kind);
}

static double
rescue_secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

/* The report, kept in the fencing marker and printed. */
static int
rescue_report(char *out, size_t outlen, const struct rescue_opts *o,
    const char *gen, struct spool *sp, const struct rescue *rs,
    const struct server_stats *st, uint64_t started)
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	int n, k;
	unsigned i;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(out, outlen, "asyncrep rescue completed %s\n"
	    "generation %s closed at change %llu\n"
	    "primary %s, data %s, spool %s\n"
	    "waiting for the standby: %.3f s\n"
	    "spool phase: %llu files, %llu bytes, %.3f s\n"
	    "compare phase: %llu files, %llu bytes, %.3f s\n",
	    when, gen, (unsigned long long)spool_durable_seq(sp) + 1,
	    o->cfg->listen.text, o->cfg->data_dir, o->cfg->spool_dir,
	    rescue_secs(started, rs->first_contact),
	    (unsigned long long)st->files[SERVER_PHASE_SPOOL],
	    (unsigned long long)st->bytes[SERVER_PHASE_SPOOL],
	    rescue_secs(rs->first_contact, rs->compare),
	    (unsigned long long)st->files[SERVER_PHASE_COMPARE],
	    (unsigned long long)st->bytes[SERVER_PHASE_COMPARE],
	    rescue_secs(rs->compare, rs->complete));
	if (n < 0 || (size_t)n >= outlen)
		return n < 0 ? 0 : (int)outlen - 1;
	for (i = 0; i < st->ncompare_only; i++) {
		char esc[LOG_ESC_MAX];

		log_escape(st->compare_only[i], strlen(st->compare_only[i]),
		    esc, sizeof(esc));
		k = snprintf(out + n, outlen - (size_t)n, "found only by the "
		    "compare: %s\n", esc);
		if (k < 0 || (size_t)k >= outlen - (size_t)n)
			break;
		n += k;
	}
	return n;
}

/*
 * --settle: a client that caches attributes (NFS without actimeo=0,
 * sshfs) may still show sizes and mtimes from before the primary's last
 * writes: stale sizes cut reads short and stale metadata hides changes
 * from the compare. Nothing writes the storage any more, so once the
 * cache lifetime has passed, every answer is fresh. Returns 0, or
 * -AR_ESIGNAL when one of o->sigs came first.
 */
static int
rescue_settle(const struct rescue_opts *o, char *err, size_t errlen)
{
	uint64_t until = util_mono_ns() + o->settle_ns, now, left;
	struct timespec ts;
	int sig;

	log_info("rescue: waiting %.1f s for the mount's caches to expire "
	    "(--settle)", (double)o->settle_ns / 1e9);
	rescue_status(o->status_file, "settling", "");
	/* sigtimedwait also returns early on EINTR (a SIGCONT). */
	for (;;) {
		now = util_mono_ns();
		if (now >= until)
			return 0;
		left = until - now;
		ts.tv_sec = (time_t)(left / 1000000000u);
		ts.tv_nsec = (long)(left % 1000000000u);
		sig = sigtimedwait(o->sigs, NULL, &ts);
		if (sig > 0) {
			snprintf(err, errlen, "stopped by signal %d while "
			    "settling", sig);
			return -AR_ESIGNAL;
		}
	}
}

/*
 * Serve until a standby holds the final position, telling the status
 * file each new state. Returns 0 then, -AR_ESIGNAL for one of o->sigs,
 * or -AR_ENOSTANDBY when no standby called for too long.
 */
static int
rescue_wait(const struct rescue_opts *o, struct server *srv,
    struct rescue *rs, uint64_t started, char *err, size_t errlen)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	enum rescue_state state = RESCUE_LISTENING, now_state;
	uint64_t now, last, limit;
	int sig;

	for (;;) {
		sig = sigtimedwait(o->sigs, NULL, &tick);
		if (sig > 0) {
			snprintf(err, errlen, "stopped by signal %d before the "
			    "standby confirmed", sig);
			return -AR_ESIGNAL;
		}
		/* Long-polls end on their own deadlines. */
		server_release(srv, 0);
		pthread_mutex_lock(&rs->lock);
		last = rs->last_contact ? rs->last_contact : started;
		now_state = rescue_state_of(rs);
		pthread_mutex_unlock(&rs->lock);
		/* After last: a contact in between must not make now - last
		 * wrap around. */
		now = util_mono_ns();
		assert(now_state >= state);
		if (now_state != state) {
			state = now_state;
			if (state == RESCUE_TRANSFERRING)
				rescue_status(o->status_file, "transferring",
				    "");
			else if (state == RESCUE_COMPARING)
				rescue_status(o->status_file, "comparing", "");
		}
		if (state == RESCUE_COMPLETE)
			return 0;
		/* --timeout is for the first call; once a standby works,
		 * it may pause (applying, restarting) for longer. */
		limit = state == RESCUE_LISTENING ? o->timeout_ns :
		    o->timeout_ns > RESCUE_IDLE_NS ? o->timeout_ns :
		    RESCUE_IDLE_NS;
		if (now - last > limit) {
			snprintf(err, errlen, "no standby %s for %.1f s",
			    state == RESCUE_LISTENING ? "connected" : "called",
			    (double)limit / 1e9);
			return -AR_ENOSTANDBY;
		}
	}
}

int
rescue_run(const struct rescue_opts *o, char *err, size_t errlen)
{
	struct rescue rs;
	struct server_opts so;
	struct server *srv = NULL;
	struct server_stats st;
	struct spool_opts spo;
	struct spool *sp = NULL;
	char gen[WIRE_GEN_LEN + 1], rep[4096], marker[4096];
	uint64_t started = util_mono_ns();
	struct exclude *ex = NULL;
	int rootfd = -1, r, n, guarded = 0;

	assert(o != NULL && o->cfg != NULL && o->sigs != NULL);
	memset(&rs, 0, sizeof(rs));
	pthread_mutex_init(&rs.lock, NULL);
	pthread_cond_init(&rs.cond, NULL);
	rescue_status(o->status_file, "starting", "");
	if (o->settle_ns > 0) {
		r = rescue_settle(o, err, errlen);
		if (r != 0)
			goto out;
		/* --timeout counts from the end of the wait. */
		started = util_mono_ns();
	}
	/* The watchdog (rescue_storage_hung) runs since the command
	 * started: each stretch below is bounded. */
	guard_enter("opening the primary's storage");
	guarded = 1;
	r = rescue_probe_storage(o->cfg, gen, err, errlen);
	if (r != 0)
		goto out;
	rescue_warn_caching(o->cfg, o->settle_ns);
	if (gen_fenced(o->cfg->spool_dir, marker, sizeof(marker))) {
		/* Run again after success: the marker is the proof. */
		fputs(marker, stdout);
		log_info("generation %s was already rescued", gen);
		rescue_status(o->status_file, "complete", "already rescued");
		r = 0;
		goto out;
	}
	/* The marker must be writable, or the end cannot be recorded
	 * after the standby closed the generation. */
	if (access(o->cfg->spool_dir, W_OK) != 0) {
		snprintf(err, errlen, "the primary's spool '%s' is not "
		    "writable (%s): the rescue could not fence it",
		    o->cfg->spool_dir, strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	if (fs_open_dir(o->cfg->data_dir, &rootfd) != 0) {
		snprintf(err, errlen, "the primary's data directory '%s': %s",
		    o->cfg->data_dir, strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	memset(&spo, 0, sizeof(spo));
	spo.readonly = 1;
	r = spool_open(o->cfg->spool_dir, &spo, &sp, err, errlen);
	if (r != 0)
		goto out;
	/* What the primary never served, its rescue does not serve. */
	r = exclude_new(&ex);
	if (r == 0 && o->cfg->exclude != NULL &&
	    exclude_add_list(ex, o->cfg->exclude, err, errlen) != 0)
		r = -AR_ECONFIG;
	if (r != 0)
		goto out;
	memset(&so, 0, sizeof(so));
	so.exclude = ex;
	so.cfg = o->cfg;
	so.rootfd = rootfd;
	so.generation = gen;
	so.role = WIRE_ROLE_RESCUE;
	so.auth = o->auth;
	so.spool = sp;
	so.event = rescue_on_event;
	so.event_arg = &rs;
	guard_leave();
	guarded = 0;
	r = server_start(&so, &srv, err, errlen);
	if (r != 0)
		goto out;
	log_info("rescue of generation %s listening on %s: journal up to "
	    "change %llu", gen, o->cfg->listen.text,
	    (unsigned long long)spool_durable_seq(sp));
	rescue_status(o->status_file, "listening", o->cfg->listen.text);
	r = rescue_wait(o, srv, &rs, started, err, errlen);
	if (r != 0)
		goto out;
	server_get_stats(srv, &st);
	n = rescue_report(rep, sizeof(rep), o, gen, sp, &rs, &st, started);
	assert(n >= 0 && (size_t)n < sizeof(rep));
	guard_enter("fencing the primary's spool");
	r = gen_fence(o->cfg->spool_dir, rep, (size_t)n);
	guard_leave();
	if (r == 0)
		guard_handler(rescue_hung_after, NULL);
	if (r != 0) {
		snprintf(err, errlen, "the standby is complete, but the spool "
		    "'%s' could not be marked: %s", o->cfg->spool_dir,
		    strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	fwrite(rep, 1, (size_t)n, stdout);
	fflush(stdout);
	rescue_status(o->status_file, "complete", gen);
	/* Let the confirmation's answer reach the standby. */
	nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
	r = 0;
out:
	if (guarded)
		guard_leave();
	if (r != 0) {
		char esc[600];

		log_escape(err, strlen(err), esc, sizeof(esc));
		rescue_status(o->status_file, "failed", esc);
	}
	server_stop(srv);
	spool_close(sp);
	exclude_free(ex);
	if (rootfd >= 0)
		close(rootfd);
	return r;
}
