/*
 * rescue.c: asyncrep rescue (rescue.h): settle, probe the primary's
 * storage under the watchdog, find the standbys it is responsible for,
 * serve the journal from the primary's address, wait until each of them
 * has confirmed the final position, fence the spool; and the status
 * file that cluster monitors read.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
#include "metrics.h"
#include "limit.h"
#include "rescue.h"
#include "source.h"
#include "server.h"
#include "spool.h"
#include "util.h"

/* A standby that called once may go quiet this long before the rescue
 * gives up on it (it restarts, or applies a large batch). */
#define RESCUE_IDLE_NS (600ull * 1000000000ull)
/* Standbys tracked: those waited for (at most CONFIG_IDS_MAX named, or
 * ack files) and those that called besides. */
#define RESCUE_STANDBYS_MAX 128
/* The status file's one line. */
#define RESCUE_STATUS_MAX 1024
/* The report, and the marker that keeps it. */
#define RESCUE_REPORT_MAX 32768
/* The first line of the report: the verdict. */
#define RESCUE_REPORT_DONE "asyncrep rescue completed "
#define RESCUE_REPORT_PARTIAL "asyncrep rescue partial "

/* How the rescue came to know a standby. */
enum rescue_origin {
	RESCUE_NAMED,		/* --standby */
	RESCUE_LISTED,		/* the primary's standbys key */
	RESCUE_ACKED,		/* an ack file younger than standby_expiry */
	RESCUE_EXPIRED,		/* an older ack file: not waited for */
	RESCUE_CALLER,		/* none of these, but it called */
};

/* What a standby did, from the server's threads (rescue_on_event):
 * CLOCK_MONOTONIC of the first time each happened, 0 while it has not. */
struct rescue_standby {
	char id[LIMIT_ID_MAX + 1];
	enum rescue_origin origin;
	int waited;		/* the rescue is complete only with it */
	int earlier;		/* confirmed to an earlier, partial run */
	uint64_t acked_ns;	/* CLOCK_REALTIME of its ack file */
	uint64_t called;	/* an authenticated /v1/changes named it */
	uint64_t final_sent;	/* the whole final batch went out to it */
	uint64_t complete;	/* it then confirmed the final position */
};

/* Where a standby stands, as the report and the status file say it. */
enum rescue_standby_state {
	RESCUE_SB_NEVER,	/* no request named it */
	RESCUE_SB_CALLED,	/* it called, and has not confirmed */
	RESCUE_SB_COMPLETE,	/* it confirmed (in this run or before) */
};

/* data_dir and spool_dir as messages name them. */
static const char *
rescue_data_name(const struct rescue_opts *o)
{
	return o->data_name != NULL ? o->data_name : o->cfg->data_dir;
}

static const char *
rescue_spool_name(const struct rescue_opts *o)
{
	return o->spool_name != NULL ? o->spool_name : o->cfg->spool_dir;
}

static const char *const rescue_standby_states[] = {
	[RESCUE_SB_NEVER] = "never called",
	[RESCUE_SB_CALLED] = "called, incomplete",
	[RESCUE_SB_COMPLETE] = "complete",
};

/* What the standbys did, from the server's threads (rescue_on_event):
 * CLOCK_MONOTONIC of the first time each happened, 0 while it has not. */
struct rescue {
	pthread_mutex_t lock;
	uint64_t first_contact, last_contact, compare, complete;
	struct rescue_standby sb[RESCUE_STANDBYS_MAX];
	size_t nsb;
	unsigned changes;	/* bumped when a standby's state moves */
	int any;		/* the first to confirm completes the rescue */
	int full;		/* a caller found no room in sb (logged) */
	/* Each confirmation is recorded in the spool before the standby
	 * is told that it is complete (rescue_mark_confirmed): a rescue
	 * killed after that and run again does not wait for a standby
	 * that has exited, done. mark_lock orders those writes with the
	 * marker's, after which (fenced) there are none. */
	pthread_mutex_t mark_lock;
	int fenced;
	const struct rescue_opts *o;
	const char *gen;
	char mark[RESCUE_REPORT_MAX];
	int ended;		/* for metrics: 1 complete, 2 partial */
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
};

/* Called with rs->lock held. */
static enum rescue_state
rescue_state_of(const struct rescue *rs)
{
	if (rs->compare != 0)
		return RESCUE_COMPARING;
	if (rs->first_contact != 0)
		return RESCUE_TRANSFERRING;
	return RESCUE_LISTENING;
}

static enum rescue_standby_state
rescue_standby_state_of(const struct rescue_standby *sb)
{
	if (sb->complete != 0 || sb->earlier)
		return RESCUE_SB_COMPLETE;
	return sb->called != 0 ? RESCUE_SB_CALLED : RESCUE_SB_NEVER;
}

/* A scrape of the rescue's metrics: its phase and each standby's
 * state, as labelled gauges (1 for the one that holds). */
static void
rescue_collect(struct metrics_out *out, void *arg)
{
	static const char *const phases[] = { "listening", "transferring",
	    "comparing", "complete", "partial" };
	static const char *const sbs[] = { "never_called", "called",
	    "complete" };
	struct rescue *rs = arg;
	char labels[160], esc[LIMIT_ID_MAX * 2 + 1];
	size_t i, j;
	int phase, n;

	pthread_mutex_lock(&rs->lock);
	phase = rs->ended != 0 ? 2 + rs->ended : (int)rescue_state_of(rs);
	metrics_out_family(out, "asyncrep_rescue_phase", "gauge",
	    "Where the rescue stands: 1 for its phase, 0 for the others.");
	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		n = snprintf(labels, sizeof(labels), "phase=\"%s\"",
		    phases[i]);
		if (n > 0 && (size_t)n < sizeof(labels))
			metrics_out_uint(out, "asyncrep_rescue_phase", labels,
			    (int)i == phase);
	}
	metrics_out_family(out, "asyncrep_rescue_standby_state", "gauge",
	    "Each standby's state in the rescue: 1 for the one it is in.");
	for (j = 0; j < rs->nsb; j++) {
		metrics_label_escape(rs->sb[j].id, esc, sizeof(esc));
		for (i = 0; i < sizeof(sbs) / sizeof(sbs[0]); i++) {
			n = snprintf(labels, sizeof(labels), "standby=\"%s\","
			    "state=\"%s\"", esc, sbs[i]);
			if (n > 0 && (size_t)n < sizeof(labels))
				metrics_out_uint(out,
				    "asyncrep_rescue_standby_state", labels,
				    i == (size_t)rescue_standby_state_of(
				    &rs->sb[j]));
		}
	}
	pthread_mutex_unlock(&rs->lock);
}

/* The standby id, or NULL; with add, one that called is added (not
 * waited for) while there is room. Called with rs->lock held. */
static struct rescue_standby *
rescue_standby_find(struct rescue *rs, const char *id, int add)
{
	struct rescue_standby *sb;
	size_t i;

	for (i = 0; i < rs->nsb; i++) {
		if (strcmp(rs->sb[i].id, id) == 0)
			return &rs->sb[i];
	}
	if (!add || strlen(id) > LIMIT_ID_MAX)
		return NULL;
	if (rs->nsb == RESCUE_STANDBYS_MAX) {
		if (!rs->full)
			log_warn("rescue: more than %d standbys called: the "
			    "others are served, but cannot confirm",
			    RESCUE_STANDBYS_MAX);
		rs->full = 1;
		return NULL;
	}
	sb = &rs->sb[rs->nsb++];
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->id, id, strlen(id) + 1);
	sb->origin = RESCUE_CALLER;
	return sb;
}

/* The status file ends with a verdict written from the watchdog thread
 * (rescue_status_final): nothing may rename an older state over it. */
static pthread_mutex_t rescue_status_lock = PTHREAD_MUTEX_INITIALIZER;
static int rescue_status_sealed;

static void
rescue_status_write(const char *file, const char *state, const char *detail)
{
	char line[RESCUE_STATUS_MAX], dir[4096];
	const char *slash;
	int n, dirfd, cut;

	if (file == NULL)
		return;
	/* One line always: a long list of standbys ends with "...". */
	cut = strlen(state) + 1 + strlen(detail) + 1 >= sizeof(line);
	n = snprintf(line, sizeof(line), "%s%s%.*s%s\n", state,
	    detail[0] ? " " : "", cut ? (int)(sizeof(line) - strlen(state) -
	    8) : (int)strlen(detail), detail, cut ? " ..." : "");
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

/*
 * Record sb's confirmation in spool_dir/rescue-confirmed ("generation
 * GEN" then "standby ID: complete" for each standby complete so far,
 * in this run or an earlier one), durably, before the standby is
 * answered. A run after a killed one reads it (rescue_read_confirmed).
 * A file that cannot be written is logged; the end of the run writes
 * the marker, and fails then if the storage is not writable.
 */
static void
rescue_mark_confirmed(struct rescue *rs, struct rescue_standby *sb,
    uint64_t now)
{
	size_t i, off;
	int n, r, e, dirfd;

	pthread_mutex_lock(&rs->mark_lock);
	pthread_mutex_lock(&rs->lock);
	if (sb->complete == 0) {
		sb->complete = now;
		rs->changes++;
		if (rs->complete == 0)
			rs->complete = now;
	}
	n = snprintf(rs->mark, sizeof(rs->mark), "generation %s\n",
	    rs->gen != NULL ? rs->gen : "");
	off = n > 0 && (size_t)n < sizeof(rs->mark) ? (size_t)n : 0;
	for (i = 0; off > 0 && i < rs->nsb; i++) {
		if (rescue_standby_state_of(&rs->sb[i]) != RESCUE_SB_COMPLETE)
			continue;
		n = snprintf(rs->mark + off, sizeof(rs->mark) - off,
		    "standby %s: complete\n", rs->sb[i].id);
		if (n < 0 || (size_t)n >= sizeof(rs->mark) - off)
			break;
		off += (size_t)n;
	}
	pthread_mutex_unlock(&rs->lock);
	if (!rs->fenced && rs->o != NULL && off > 0) {
		r = fs_open_dir(rs->o->cfg->spool_dir, &dirfd);
		e = errno;
		if (r == 0) {
			r = fs_write_durable(dirfd, GEN_CONFIRMED_FILE,
			    rs->mark, off, 0644);
			e = errno;
			close(dirfd);
		}
		if (r != 0)
			log_warn("rescue: the confirmation of standby '%s' "
			    "could not be recorded in the spool '%s': %s",
			    sb->id, rescue_spool_name(rs->o), strerror(e));
	}
	pthread_mutex_unlock(&rs->mark_lock);
}

/*
 * What the server saw (server.h): who called, who was sent the whole
 * final batch, and whether a confirmation comes from one of those. Only
 * authenticated requests get here.
 */
static int
rescue_on_event(void *arg, int ev, const char *id)
{
	struct rescue *rs = arg;
	struct rescue_standby *sb = NULL;
	uint64_t now = util_mono_ns();
	int ok = 1, first = 0;

	assert(ev >= SERVER_EV_CONTACT && ev <= SERVER_EV_CONFIRM);
	pthread_mutex_lock(&rs->lock);
	rs->last_contact = now;
	if (rs->first_contact == 0)
		rs->first_contact = now;
	if (id != NULL)
		sb = rescue_standby_find(rs, id, 1);
	if (sb != NULL && sb->called == 0) {
		sb->called = now;
		rs->changes++;
	}
	switch (ev) {
	case SERVER_EV_COMPARE:
		if (rs->compare == 0)
			rs->compare = now;
		break;
	case SERVER_EV_FINAL_SENT:
		if (sb != NULL && sb->final_sent == 0)
			sb->final_sent = now;
		break;
	case SERVER_EV_CONFIRM:
		ok = sb != NULL && sb->final_sent != 0;
		first = ok && sb->complete == 0;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&rs->lock);
	if (first) {
		rescue_mark_confirmed(rs, sb, now);
		log_info("rescue: standby '%s' is complete", id);
	}
	return ok;
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

/* Once the standbys confirmed and the spool is marked, a thread still
 * blocked in the storage (a late request) changes nothing: the rescue
 * ended as it did (arg: its exit status, an int). */
static void
rescue_hung_after(void *arg, const struct guard_expiry *e)
{
	log_warn("rescue: the storage hung after the rescue ended (%.1f s "
	    "while %s); exiting", (double)e->stuck_ns / 1e9, e->what);
	_exit(*(const int *)arg);
}

/* The first look at the storage: the data directory and the generation. */
static int
rescue_probe_storage(const struct rescue_opts *o, char *gen, char *err,
    size_t errlen)
{
	const struct config_primary *cfg = o->cfg;
	struct stat st;

	memset(&st, 0, sizeof(st));
	if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the primary's data directory '%s': %s",
		    rescue_data_name(o), S_ISDIR(st.st_mode) || st.st_mode == 0 ?
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
rescue_warn_caching(const struct rescue_opts *o, uint64_t settle_ns)
{
	const char *dir = rescue_data_name(o), *kind;

	if (settle_ns > 0)
		return;
	kind = rescue_caching_fs(o->cfg->data_dir);
	if (kind == NULL) {
		dir = rescue_spool_name(o);
		kind = rescue_caching_fs(o->cfg->spool_dir);
	}
	if (kind == NULL)
		return;
	log_warn("rescue: the primary's storage ('%s') is on %s: unless it "
	    "is mounted without attribute and lookup caching (NFS: actimeo=0,"
	    "lookupcache=none), stale answers can hide the last writes; "
	    "give --settle the cache lifetime (asyncrep(1), RESCUE)", dir,
	    kind);
}

/*
 * The kinds of metadata the primary's file system may hold (its type, as
 * the spool's record names it; a spool without one: every kind) that
 * this host's view of data_dir (open as rootfd) cannot show: one warning
 * each. Such a rescue replicates less than the primary held, and says so
 * with its exit status (3).
 */
static unsigned
rescue_probe_caps(const struct rescue_opts *o, int rootfd)
{
	struct source_id rec;
	unsigned may = SOURCE_CAP_ALL, lacking, cap;
	int dirfd;

	if (fs_open_dir(o->cfg->spool_dir, &dirfd) == 0) {
		if (source_read(dirfd, &rec) == 0)
			may = source_fstype_caps(rec.fstype);
		close(dirfd);
	}
	lacking = may & ~source_caps_shown(rootfd);
	for (cap = 1; cap <= SOURCE_CAP_ALL; cap <<= 1)
		if ((lacking & cap) != 0)
			log_warn("rescue: the primary's data directory '%s' "
			    "shows no %s here, which its own file system may "
			    "hold (the mount cannot show them: NFSv4 has no "
			    "POSIX ACLs, sshfs no extended attributes): "
			    "they are not replicated, and the rescue is "
			    "partial (exit 3)", rescue_data_name(o),
			    source_cap_name(cap));
	return lacking;
}

static double
rescue_secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

/* What the report says of a standby: its state, and why the rescue did
 * not wait for it when it did not. */
static void
rescue_standby_note(const struct rescue *rs, const struct rescue_standby *sb,
    int64_t now_real, char *out, size_t outlen)
{
	enum rescue_standby_state state = rescue_standby_state_of(sb);
	const char *name = rescue_standby_states[state];

	if (state == RESCUE_SB_COMPLETE)
		snprintf(out, outlen, "%s", name);
	else if (sb->origin == RESCUE_EXPIRED)
		snprintf(out, outlen, "%s (not waited for: last acknowledged "
		    "%.1f days ago, past standby_expiry)", name,
		    (double)(now_real - (int64_t)sb->acked_ns) / 86400e9);
	else if (!sb->waited)
		snprintf(out, outlen, "%s (not waited for)", name);
	else if (rs->any)
		snprintf(out, outlen, "%s (not waited for: --any)", name);
	else
		snprintf(out, outlen, "%s", name);
}

/*
 * The standbys, "ID: STATE; ID: STATE", into out (cut at a whole item);
 * only those not complete with missing. Called with rs->lock held.
 */
static void
rescue_standbys_list(const struct rescue *rs, int missing, char *out,
    size_t outlen)
{
	size_t i, off = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < rs->nsb; i++) {
		const struct rescue_standby *sb = &rs->sb[i];
		enum rescue_standby_state state = rescue_standby_state_of(sb);

		if (missing && (state == RESCUE_SB_COMPLETE || !sb->waited ||
		    sb->origin == RESCUE_EXPIRED))
			continue;
		n = snprintf(out + off, outlen - off, "%s%s: %s", off ? "; " :
		    "", sb->id, rescue_standby_states[state]);
		if (n < 0 || (size_t)n >= outlen - off) {
			out[off] = '\0';
			break;
		}
		off += (size_t)n;
	}
}

/* The report, kept in the fencing marker and printed; partial: some
 * standby waited for is not complete. */
static int
rescue_report(char *out, size_t outlen, const struct rescue_opts *o,
    const char *gen, struct spool *sp, struct rescue *rs,
    const struct server_stats *st, uint64_t started, int partial,
    unsigned lacking)
{
	char when[64], note[160];
	struct timespec real;
	time_t now = time(NULL);
	struct tm tm;
	int n, k;
	unsigned i;
	size_t j;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	clock_gettime(CLOCK_REALTIME, &real);
	n = snprintf(out, outlen, "%s%s\n"
	    "generation %s closed at change %llu\n"
	    "primary %s, data %s, spool %s\n",
	    partial ? RESCUE_REPORT_PARTIAL : RESCUE_REPORT_DONE, when, gen,
	    (unsigned long long)spool_durable_seq(sp) + 1,
	    o->cfg->listen.text, rescue_data_name(o), rescue_spool_name(o));
	if (n < 0 || (size_t)n >= outlen)
		return n < 0 ? 0 : (int)outlen - 1;
	pthread_mutex_lock(&rs->lock);
	for (j = 0; j < rs->nsb; j++) {
		rescue_standby_note(rs, &rs->sb[j], (int64_t)real.tv_sec *
		    1000000000 + real.tv_nsec, note, sizeof(note));
		k = snprintf(out + n, outlen - (size_t)n, "standby %s: %s\n",
		    rs->sb[j].id, note);
		if (k < 0 || (size_t)k >= outlen - (size_t)n)
			break;
		n += k;
	}
	k = snprintf(out + n, outlen - (size_t)n,
	    "waiting for the standby: %.3f s\n"
	    "spool phase: %llu files, %llu bytes, %.3f s\n"
	    "compare phase: %llu files, %llu bytes, %.3f s\n",
	    rescue_secs(started, rs->first_contact),
	    (unsigned long long)st->files[SERVER_PHASE_SPOOL],
	    (unsigned long long)st->bytes[SERVER_PHASE_SPOOL],
	    rescue_secs(rs->first_contact, rs->compare),
	    (unsigned long long)st->files[SERVER_PHASE_COMPARE],
	    (unsigned long long)st->bytes[SERVER_PHASE_COMPARE],
	    rescue_secs(rs->compare, rs->complete));
	pthread_mutex_unlock(&rs->lock);
	if (k < 0 || (size_t)k >= outlen - (size_t)n)
		return n;
	n += k;
	for (i = 1; i <= SOURCE_CAP_ALL; i <<= 1) {
		if ((lacking & i) == 0)
			continue;
		k = snprintf(out + n, outlen - (size_t)n, "not shown by the "
		    "mount, not replicated: %s\n", source_cap_name(i));
		if (k < 0 || (size_t)k >= outlen - (size_t)n)
			return n;
		n += k;
	}
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

/* ---------------------------------------------------------------- */
/* The standbys the rescue is responsible for */

/* A standby the rescue waits for, once. */
static void
rescue_standby_want(struct rescue *rs, const char *id,
    enum rescue_origin origin)
{
	struct rescue_standby *sb = rescue_standby_find(rs, id, 1);

	if (sb == NULL)
		return;
	sb->origin = origin;
	sb->waited = origin != RESCUE_EXPIRED;
}

struct rescue_acks {
	struct rescue *rs;
	uint64_t expiry_ns;
	int64_t now_ns;		/* CLOCK_REALTIME */
};

static void
rescue_ack_cb(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	struct rescue_acks *a = arg;
	struct rescue_standby *sb;
	int fresh = a->now_ns - (int64_t)mtime_ns <= (int64_t)a->expiry_ns;

	(void)seq;
	rescue_standby_want(a->rs, id, fresh ? RESCUE_ACKED :
	    RESCUE_EXPIRED);
	sb = rescue_standby_find(a->rs, id, 0);
	if (sb != NULL)
		sb->acked_ns = mtime_ns;
}

static int
rescue_standby_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rescue_standby *)a)->id,
	    ((const struct rescue_standby *)b)->id);
}

/*
 * The standbys to complete: those of --standby, else those of the
 * primary's standbys key, else each with an ack file younger than
 * standby_expiry (the older ones are listed, not waited for). With
 * none, or --any, the first standby to confirm completes the rescue.
 */
static int
rescue_standbys_setup(const struct rescue_opts *o, struct spool *sp,
    struct rescue *rs, char *err, size_t errlen)
{
	struct rescue_acks a;
	struct timespec real;
	char id[LIMIT_ID_MAX + 1];
	const char *p = o->cfg->standbys;
	size_t i, waited = 0;
	int r;

	for (i = 0; i < o->nstandbys; i++)
		rescue_standby_want(rs, o->standbys[i], RESCUE_NAMED);
	if (o->nstandbys == 0 && p != NULL) {
		for (;;) {
			r = config_ids_next(&p, id);
			if (r <= 0)
				break;
			rescue_standby_want(rs, id, RESCUE_LISTED);
		}
		/* The key was checked when it was read. */
		assert(r == 0);
	}
	if (o->nstandbys == 0 && o->cfg->standbys == NULL) {
		clock_gettime(CLOCK_REALTIME, &real);
		a.rs = rs;
		a.expiry_ns = o->cfg->standby_expiry_ns;
		a.now_ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
		r = spool_acks(sp, rescue_ack_cb, &a);
		if (r != 0) {
			snprintf(err, errlen, "the primary's spool '%s': cannot "
			    "list the standbys' acknowledgements: %s",
			    rescue_spool_name(o), ar_strerror(r));
			return -AR_ESTORAGE;
		}
		/* In the order of their names, not of the directory. */
		qsort(rs->sb, rs->nsb, sizeof(rs->sb[0]), rescue_standby_cmp);
	}
	for (i = 0; i < rs->nsb; i++)
		waited += rs->sb[i].waited;
	rs->any = o->any;
	if (waited == 0) {
		rs->any = 1;
		log_warn("rescue: no standby to wait for (no --standby, no "
		    "standbys key, no acknowledgement younger than "
		    "standby_expiry): the first standby to confirm completes "
		    "the rescue");
	} else if (!o->any)
		log_info("rescue: completing %zu standby%s", waited,
		    waited == 1 ? "" : "s");
	return 0;
}

/* The standbys that confirmed to an earlier run, whose report marker
 * says "partial": they are not waited for again. */
static void
rescue_standbys_earlier(struct rescue *rs, const char *marker)
{
	static const char pre[] = "standby ", post[] = ": complete";
	struct rescue_standby *sb;
	char id[LIMIT_ID_MAX + 1];
	const char *line, *colon, *end;
	size_t len;

	for (line = marker; *line != '\0'; line = end + (*end == '\n')) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		if (strncmp(line, pre, sizeof(pre) - 1) != 0)
			continue;
		colon = memchr(line, ':', (size_t)(end - line));
		if (colon == NULL || (size_t)(end - colon) != sizeof(post) - 1 ||
		    memcmp(colon, post, sizeof(post) - 1) != 0)
			continue;
		len = (size_t)(colon - line) - (sizeof(pre) - 1);
		if (!limit_id_valid(line + sizeof(pre) - 1, len))
			continue;
		memcpy(id, line + sizeof(pre) - 1, len);
		id[len] = '\0';
		sb = rescue_standby_find(rs, id, 1);
		if (sb != NULL)
			sb->earlier = 1;
	}
}

/* The standbys that confirmed to a run of generation gen that was
 * killed before its end (rescue_mark_confirmed): not waited for again.
 * buf is scratch room. */
static void
rescue_read_confirmed(struct rescue *rs, const char *spool_dir,
    const char *gen, char *buf, size_t buflen)
{
	static const char pre[] = "generation ";
	size_t len, glen = strlen(gen);
	int dirfd;

	if (fs_open_dir(spool_dir, &dirfd) != 0)
		return;
	if (fs_read_entry(dirfd, GEN_CONFIRMED_FILE, buf, buflen,
	    &len) == 0 && len > sizeof(pre) - 1 + glen &&
	    memcmp(buf, pre, sizeof(pre) - 1) == 0 &&
	    memcmp(buf + sizeof(pre) - 1, gen, glen) == 0 &&
	    buf[sizeof(pre) - 1 + glen] == '\n') {
		log_info("rescue: standbys that confirmed to an earlier run "
		    "are not waited for again");
		rescue_standbys_earlier(rs, buf);
	}
	close(dirfd);
}

/* Once the marker is written: it names those that confirmed. A file
 * left behind is harmless (the marker is read first). */
static void
rescue_forget_confirmed(const char *spool_dir)
{
	int dirfd;

	if (fs_open_dir(spool_dir, &dirfd) != 0)
		return;
	if (fs_remove_tree(dirfd, GEN_CONFIRMED_FILE) == 0)
		(void)fs_fsync_dir(dirfd);
	close(dirfd);
}

/* ---------------------------------------------------------------- */
/* Running */

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

/* How the wait for the standbys ends. */
enum rescue_verdict {
	RESCUE_WAITING,		/* keep serving */
	RESCUE_DONE,		/* each standby waited for is complete */
	RESCUE_GIVE_UP,		/* the missing ones are not coming */
};

/*
 * Whether the rescue is done, at now. A standby that never called is
 * waited for until --timeout; one that called may pause for the idle
 * limit, while any standby's transfer counts as life. Called with
 * rs->lock held.
 */
static enum rescue_verdict
rescue_verdict_of(const struct rescue *rs, uint64_t now, uint64_t started,
    uint64_t timeout_ns)
{
	uint64_t last = rs->last_contact ? rs->last_contact : started;
	uint64_t idle = timeout_ns > RESCUE_IDLE_NS ? timeout_ns :
	    RESCUE_IDLE_NS;
	size_t i, pending = 0, busy = 0, complete = 0;

	for (i = 0; i < rs->nsb; i++) {
		const struct rescue_standby *sb = &rs->sb[i];
		enum rescue_standby_state state = rescue_standby_state_of(sb);

		if (state == RESCUE_SB_COMPLETE)
			complete++;
		else if (sb->waited) {
			pending++;
			busy += state == RESCUE_SB_CALLED;
		}
	}
	if (rs->any)
		return complete > 0 ? RESCUE_DONE : now - last > (rs->
		    first_contact ? idle : timeout_ns) ? RESCUE_GIVE_UP :
		    RESCUE_WAITING;
	if (pending == 0)
		return RESCUE_DONE;
	if (now - started <= timeout_ns)
		return RESCUE_WAITING;
	return busy == 0 || now - last > idle ? RESCUE_GIVE_UP :
	    RESCUE_WAITING;
}

/* The status file's detail: the generation (or NULL), then each standby
 * and its state. Called with rs->lock held. */
static void
rescue_status_detail(const struct rescue *rs, const char *gen, char *out,
    size_t outlen)
{
	char list[RESCUE_STATUS_MAX];
	int n;

	rescue_standbys_list(rs, 0, list, sizeof(list));
	n = snprintf(out, outlen, "%s%s%s", gen != NULL ? gen : "",
	    gen != NULL && list[0] ? "; " : "", list);
	/* The caller's room is a list and a generation. */
	assert(n >= 0 && (size_t)n < outlen);
	(void)n;
}

/*
 * Serve until each standby waited for holds the final position, telling
 * the status file each new state. Returns 0 then, -AR_ERESCUE_PARTIAL
 * when some did and the others did not come in time, -AR_ENOSTANDBY when
 * none did, or -AR_ESIGNAL for one of o->sigs.
 */
static int
rescue_wait(const struct rescue_opts *o, struct server *srv,
    struct rescue *rs, uint64_t started, char *err, size_t errlen)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	enum rescue_state state = RESCUE_LISTENING, now_state;
	enum rescue_verdict verdict;
	char missing[RESCUE_STATUS_MAX], detail[RESCUE_STATUS_MAX + 64];
	unsigned changes = 0;
	uint64_t now, first, last;
	size_t complete, i;
	int sig, moved;

	for (;;) {
		sig = sigtimedwait(o->sigs, NULL, &tick);
		if (sig > 0) {
			snprintf(err, errlen, "stopped by signal %d before the "
			    "standbys confirmed", sig);
			return -AR_ESIGNAL;
		}
		/* Long-polls end on their own deadlines. */
		server_release(srv, 0);
		pthread_mutex_lock(&rs->lock);
		now_state = rescue_state_of(rs);
		/* After the look at the times: a contact in between must
		 * not make now - last wrap around. */
		now = util_mono_ns();
		verdict = rescue_verdict_of(rs, now, started, o->timeout_ns);
		assert(now_state >= state);
		moved = verdict == RESCUE_WAITING &&
		    now_state != RESCUE_LISTENING &&
		    (now_state != state || rs->changes != changes);
		if (moved)
			rescue_status_detail(rs, NULL, detail, sizeof(detail));
		state = now_state;
		changes = rs->changes;
		rescue_standbys_list(rs, 1, missing, sizeof(missing));
		first = rs->first_contact;
		last = rs->last_contact;
		/* Those an earlier run completed count: still partial. */
		complete = 0;
		for (i = 0; i < rs->nsb; i++)
			complete += rescue_standby_state_of(&rs->sb[i]) ==
			    RESCUE_SB_COMPLETE;
		pthread_mutex_unlock(&rs->lock);
		/* Not under rs->lock: the server's threads need it. */
		if (moved)
			rescue_status(o->status_file, state ==
			    RESCUE_TRANSFERRING ? "transferring" : "comparing",
			    detail);
		if (verdict == RESCUE_DONE)
			return 0;
		if (verdict == RESCUE_WAITING)
			continue;
		if (complete == 0 && first == 0) {
			snprintf(err, errlen, "no standby connected for %.1f s",
			    (double)o->timeout_ns / 1e9);
			return -AR_ENOSTANDBY;
		}
		if (complete == 0 && !rs->any) {
			snprintf(err, errlen, "no standby completed: %s",
			    missing);
			return -AR_ENOSTANDBY;
		}
		if (complete == 0) {
			snprintf(err, errlen, "no standby called for %.1f s",
			    (double)(now - last) / 1e9);
			return -AR_ENOSTANDBY;
		}
		snprintf(err, errlen, "partial: not complete: %s", missing);
		return -AR_ERESCUE_PARTIAL;
	}
}

int
rescue_run(const struct rescue_opts *o, char *err, size_t errlen)
{
	static struct rescue rs;	/* 128 standbys: not on the stack */
	static int hung_status;		/* rescue_hung_after's exit status */
	static char rep[RESCUE_REPORT_MAX], marker[RESCUE_REPORT_MAX];
	char detail[RESCUE_STATUS_MAX + 64];
	struct server_opts so;
	struct server *srv = NULL;
	struct server_stats st;
	struct spool_opts spo;
	struct spool *sp = NULL;
	char gen[WIRE_GEN_LEN + 1];
	uint64_t started = util_mono_ns();
	struct exclude *ex = NULL;
	struct metrics_server *ms = NULL;
	int rootfd = -1, r, n, guarded = 0, earlier = 0, reported = 0, fenced;
	unsigned lacking = 0;

	assert(o != NULL && o->cfg != NULL && o->sigs != NULL);
	metrics_init(METRICS_RESCUE);
	memset(&rs, 0, sizeof(rs));
	memset(&st, 0, sizeof(st));
	pthread_mutex_init(&rs.lock, NULL);
	pthread_mutex_init(&rs.mark_lock, NULL);
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
	r = rescue_probe_storage(o, gen, err, errlen);
	if (r != 0)
		goto out;
	rescue_warn_caching(o, o->settle_ns);
	if (gen_fenced(o->cfg->spool_dir, marker, sizeof(marker))) {
		if (strncmp(marker, RESCUE_REPORT_PARTIAL,
		    sizeof(RESCUE_REPORT_PARTIAL) - 1) == 0) {
			/* Serve the standbys still missing. */
			log_info("generation %s was rescued in part: completing "
			    "the standbys still missing", gen);
			earlier = 1;
		} else {
			/* Run again after success: the marker is the
			 * proof. */
			fputs(marker, stdout);
			log_info("generation %s was already rescued", gen);
			rescue_status(o->status_file, "complete",
			    "already rescued");
			r = 0;
			goto out;
		}
	}
	/* The marker must be writable, or the end cannot be recorded
	 * after the standby closed the generation. */
	if (access(o->cfg->spool_dir, W_OK) != 0) {
		snprintf(err, errlen, "the primary's spool '%s' is not "
		    "writable (%s): the rescue could not fence it",
		    rescue_spool_name(o), strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	if (fs_open_dir(o->cfg->data_dir, &rootfd) != 0) {
		snprintf(err, errlen, "the primary's data directory '%s': %s",
		    rescue_data_name(o), strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	lacking = rescue_probe_caps(o, rootfd);
	memset(&spo, 0, sizeof(spo));
	spo.readonly = 1;
	r = spool_open(o->cfg->spool_dir, &spo, &sp, err, errlen);
	if (r != 0)
		goto out;
	r = rescue_standbys_setup(o, sp, &rs, err, errlen);
	if (r != 0)
		goto out;
	if (earlier)
		rescue_standbys_earlier(&rs, marker);
	rescue_read_confirmed(&rs, o->cfg->spool_dir, gen, marker,
	    sizeof(marker));
	/* Those an earlier run completed may be all there is to do. */
	if (rescue_verdict_of(&rs, started, started, o->timeout_ns) ==
	    RESCUE_DONE) {
		guard_leave();
		guarded = 0;
		log_info("every standby of generation %s is complete", gen);
		goto fence;
	}
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
	so.ids = o->standbys;
	so.nids = o->nstandbys;
	so.xattrs_hidden = lacking != 0;
	/* What rescue_mark_confirmed needs, from the first request on. */
	rs.o = o;
	rs.gen = gen;
	guard_leave();
	guarded = 0;
	r = server_start(&so, &srv, err, errlen);
	if (r != 0)
		goto out;
	log_info("rescue of generation %s listening on %s: journal up to "
	    "change %llu", gen, o->cfg->listen.text,
	    (unsigned long long)spool_durable_seq(sp));
	rescue_status(o->status_file, "listening", o->cfg->listen.text);
	if (o->metrics_listen != NULL) {
		metrics_set_collector(rescue_collect, &rs);
		(void)metrics_start(o->metrics_listen, &ms);
	}
	r = rescue_wait(o, srv, &rs, started, err, errlen);
	if (r != 0 && r != -AR_ERESCUE_PARTIAL)
		goto out;
	server_get_stats(srv, &st);
fence:
	/* A partial rescue fences too: the old primary must not come
	 * back and diverge from the standbys that completed. */
	n = rescue_report(rep, sizeof(rep), o, gen, sp, &rs, &st, started,
	    r != 0, lacking);
	assert(n >= 0 && (size_t)n < sizeof(rep));
	guard_enter("fencing the primary's spool");
	hung_status = -r;
	pthread_mutex_lock(&rs.mark_lock);
	rs.fenced = 1;
	fenced = gen_fence(o->cfg->spool_dir, rep, (size_t)n);
	/* The marker lists them now. */
	if (fenced == 0)
		rescue_forget_confirmed(o->cfg->spool_dir);
	pthread_mutex_unlock(&rs.mark_lock);
	if (fenced != 0) {
		guard_leave();
		snprintf(err, errlen, "the standby is complete, but the spool "
		    "'%s' could not be marked: %s", rescue_spool_name(o),
		    strerror(errno));
		r = -AR_ESTORAGE;
		goto out;
	}
	guard_leave();
	guard_handler(rescue_hung_after, &hung_status);
	fwrite(rep, 1, (size_t)n, stdout);
	fflush(stdout);
	pthread_mutex_lock(&rs.lock);
	rescue_status_detail(&rs, gen, detail, sizeof(detail));
	rs.ended = r == 0 ? 1 : 2;
	pthread_mutex_unlock(&rs.lock);
	rescue_status(o->status_file, r == 0 ? "complete" : "partial", detail);
	reported = 1;
	/* Every standby holds all the mount showed: partial all the same. */
	if (r == 0 && lacking != 0) {
		snprintf(err, errlen, "complete, but the mount of the primary's "
		    "data directory showed no %s%s%s: not replicated",
		    source_cap_name(lacking & SOURCE_CAP_XATTRS ?
		    SOURCE_CAP_XATTRS : SOURCE_CAP_ACLS),
		    lacking == SOURCE_CAP_ALL ? " and no " : "",
		    lacking == SOURCE_CAP_ALL ?
		    source_cap_name(SOURCE_CAP_ACLS) : "");
		r = -AR_EPARTIAL;
	}
	/* Let the confirmation's answer reach the standby. */
	if (srv != NULL)
		nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
out:
	if (guarded)
		guard_leave();
	if (r != 0 && !reported) {
		char esc[600];

		log_escape(err, strlen(err), esc, sizeof(esc));
		rescue_status(o->status_file, "failed", esc);
	}
	metrics_stop(ms);
	metrics_set_collector(NULL, NULL);
	server_stop(srv);
	spool_close(sp);
	exclude_free(ex);
	if (rootfd >= 0)
		close(rootfd);
	pthread_mutex_destroy(&rs.mark_lock);
	pthread_mutex_destroy(&rs.lock);
	return r;
}
