#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* O_TMPFILE */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "fs.h"
#include "gen.h"
#include "primary.h"
#include "progress.h"
#include "spool.h"
#include "state.h"
#include "status.h"
#include "util.h"
#include "wire.h"

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void
json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* 1 if some process holds the lock file in dir (a running daemon). */
static int
locked(const char *dir)
{
	int dirfd, held;

	if (fs_open_dir(dir, &dirfd) != 0)
		return 0;
	held = util_lock_held(dirfd, "lock");
	close(dirfd);
	return held;
}

static void
read_gen(const char *dir, const char *name, char *out, size_t outlen)
{
	char path[4200];
	size_t len;
	int n;

	out[0] = '\0';
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;		/* too long a path: read as missing */
	if (fs_read_small(AT_FDCWD, path, out, outlen, &len) == 0) {
		while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
			out[--len] = '\0';
	}
}

struct ack_report {
	FILE *out;
	int json;
	int n;
	struct spool *sp;
	uint64_t durable;
};

/* What a standby still has to read: records, not the difference of
 * seqs, which a RESCAN may have made jump. */
struct lag_bytes {
	uint64_t records;
	uint64_t bytes;
};

static int
count_bytes(void *arg, const struct spool_rec *r)
{
	struct lag_bytes *lb = arg;

	lb->records++;
	lb->bytes += spool_rec_size(r);
	return 0;
}

static void
report_ack(void *arg, const char *id, uint64_t seq, uint64_t mtime_ns)
{
	struct ack_report *ar = arg;
	struct lag_bytes lb = { 0, 0 };
	uint64_t lag;
	struct timespec now;
	double secs = 0;
	int gone;

	clock_gettime(CLOCK_REALTIME, &now);
	gone = spool_read(ar->sp, seq, ar->durable, count_bytes, &lb) ==
	    -AR_ESTATE;
	lag = gone && ar->durable > seq ? ar->durable - seq : lb.records;
	/* Behind: how long since it last acknowledged anything. */
	if (lag > 0)
		secs = ((double)now.tv_sec * 1e9 + (double)now.tv_nsec -
		    (double)mtime_ns) / 1e9;
	if (ar->json) {
		fprintf(ar->out, "%s{\"id\":", ar->n ? "," : "");
		json_str(ar->out, id);
		fprintf(ar->out, ",\"acked\":%" PRIu64 ",\"lag_records\":%"
		    PRIu64 ",\"lag_bytes\":%" PRIu64 ",\"lag_seconds\":%.3f,"
		    "\"full_compare_needed\":%s}", seq, lag, lb.bytes, secs,
		    gone ? "true" : "false");
	} else
		fprintf(ar->out, "  standby %-20s acked %" PRIu64 ", lag %"
		    PRIu64 " records, %" PRIu64 " bytes, %.1f s%s\n", id, seq,
		    lag, lb.bytes, secs, gone ? " (behind the trimmed spool: "
		    "full compare at next contact)" : "");
	ar->n++;
}

/* A watch.status older than this, while the watch runs: the watch could
 * not rewrite it (every 2 s). */
#define STATUS_STALE_S 10

/* Whether the running watch's spool records changes (primary.h). */
struct spool_cond {
	const char *state;	/* PRIMARY_SPOOL_*, "unknown" or "stopped" */
	uint64_t since;		/* 0: not known */
	char error[160];
};

/*
 * Why no file can be written in dir now: the errno (EROFS, ENOSPC...),
 * 0 if one can, -1 if that cannot be told. The file has no name and is
 * gone at close: the directory does not change.
 */
static int
spool_dir_probe(const char *dir)
{
	int fd, e = 0;

	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd == -1)
		e = errno;
	else if (write(fd, "", 1) != 1)
		e = errno;
	if (fd != -1)
		close(fd);
	if (e == EROFS || e == ENOSPC || e == EDQUOT || e == EIO || e == 0)
		return e;
	return -1;	/* no O_TMPFILE here, no permission... */
}

/*
 * The condition from watch.status (its "spool" line, after the watcher's
 * line, which stays in watch). When the watch could not rewrite it for a
 * while, status looks for itself: a filesystem that is read-only or full
 * has no room for watch.status either.
 */
static void
spool_condition(const struct config_primary *cfg, int running, char *watch,
    uint64_t age, struct spool_cond *c)
{
	char *line, *rest, *end;
	int e;

	memset(c, 0, sizeof(*c));
	c->state = running ? "unknown" : "stopped";
	line = strchr(watch, '\n');
	if (line != NULL) {
		*line++ = '\0';
		line[strcspn(line, "\n")] = '\0';
	}
	if (!running)
		return;
	if (line != NULL && strncmp(line, "spool ", 6) == 0) {
		line += 6;
		rest = strchr(line, ' ');
		if (rest != NULL)
			*rest++ = '\0';
		if (strcmp(line, PRIMARY_SPOOL_RECORDING) == 0)
			c->state = PRIMARY_SPOOL_RECORDING;
		else if (rest != NULL && (strcmp(line, PRIMARY_SPOOL_FULL) == 0 ||
		    strcmp(line, PRIMARY_SPOOL_FAILING) == 0)) {
			c->state = strcmp(line, PRIMARY_SPOOL_FULL) == 0 ?
			    PRIMARY_SPOOL_FULL : PRIMARY_SPOOL_FAILING;
			c->since = strtoull(rest, &end, 10);
			snprintf(c->error, sizeof(c->error), "%s",
			    *end == ' ' ? end + 1 : "");
		}
	}
	if (age <= STATUS_STALE_S || strcmp(c->state, PRIMARY_SPOOL_FULL) == 0 ||
	    strcmp(c->state, PRIMARY_SPOOL_FAILING) == 0)
		return;
	e = spool_dir_probe(cfg->spool_dir);
	c->since = 0;
	if (e > 0) {
		c->state = e == ENOSPC || e == EDQUOT ? PRIMARY_SPOOL_FULL :
		    PRIMARY_SPOOL_FAILING;
		snprintf(c->error, sizeof(c->error), "%s", strerror(e));
	} else {
		c->state = "unknown";
		snprintf(c->error, sizeof(c->error), "the watch has not "
		    "rewritten %s for %llu s", STATUS_FILE,
		    (unsigned long long)age);
	}
}

/* The condition, for people: nothing while the spool records. */
static void
spool_condition_print(FILE *out, const struct spool_cond *c)
{
	char when[32] = "";
	struct tm tm;
	time_t t = (time_t)c->since;

	if (strcmp(c->state, PRIMARY_SPOOL_RECORDING) == 0 ||
	    strcmp(c->state, "stopped") == 0)
		return;
	if (c->since != 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), " since %Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out, "  spool cannot record changes (%s%s: %s): standbys are "
	    "sent to compare the whole tree\n", c->state, when,
	    c->error[0] ? c->error : "see the watch's log");
}

int
status_primary(const struct config_primary *cfg, int json, FILE *out,
    char *err, size_t errlen)
{
	struct spool_opts so;
	struct spool *sp;
	struct ack_report ar;
	struct spool_cond cond;
	struct stat st;
	char gen[64], path[4200], watch[1024];
	uint64_t age = 0;
	size_t wlen;
	int running, r;

	read_gen(cfg->spool_dir, "generation", gen, sizeof(gen));
	if (!gen_valid(gen)) {
		snprintf(err, errlen, "spool directory '%s': no generation "
		    "(never started?)", cfg->spool_dir);
		return -AR_ESTATE;
	}
	memset(&so, 0, sizeof(so));
	so.readonly = 1;
	r = spool_open(cfg->spool_dir, &so, &sp, err, errlen);
	if (r != 0)
		return r;
	running = locked(cfg->spool_dir);
	r = snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, STATUS_FILE);
	watch[0] = '\0';
	if (!running || r < 0 || (size_t)r >= sizeof(path) ||
	    fs_read_small(AT_FDCWD, path, watch, sizeof(watch), &wlen) != 0)
		watch[0] = '\0';
	else if (stat(path, &st) == 0 && time(NULL) > st.st_mtime)
		age = (uint64_t)(time(NULL) - st.st_mtime);
	spool_condition(cfg, running, watch, age, &cond);
	memset(&ar, 0, sizeof(ar));
	ar.out = out;
	ar.json = json;
	ar.sp = sp;
	ar.durable = spool_durable_seq(sp);
	if (json) {
		fprintf(out, "{\"role\":\"primary\",\"generation\":\"%s\","
		    "\"running\":%s,\"listen\":", gen, running ? "true" :
		    "false");
		json_str(out, cfg->listen.text);
		fprintf(out, ",\"data_dir\":");
		json_str(out, cfg->data_dir);
		fprintf(out, ",\"spool\":{\"first_seq\":%" PRIu64 ",\"last_seq\""
		    ":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"recording\":%s,"
		    "\"state\":\"%s\"", spool_first_seq(sp), ar.durable,
		    spool_size(sp), strcmp(cond.state,
		    PRIMARY_SPOOL_RECORDING) == 0 ? "true" : "false",
		    cond.state);
		if (cond.since != 0)
			fprintf(out, ",\"since\":%" PRIu64, cond.since);
		if (cond.error[0] != '\0') {
			fprintf(out, ",\"error\":");
			json_str(out, cond.error);
		}
		fprintf(out, "},\"watcher\":");
		json_str(out, watch);
		fprintf(out, ",\"standbys\":[");
	} else {
		fprintf(out, "primary %s (%s), generation %s\n",
		    cfg->listen.text, running ? "running" : "not running", gen);
		fprintf(out, "  data %s\n  spool %s: changes %" PRIu64 "..%"
		    PRIu64 ", %" PRIu64 " bytes\n", cfg->data_dir,
		    cfg->spool_dir, spool_first_seq(sp), ar.durable,
		    spool_size(sp));
		spool_condition_print(out, &cond);
		if (watch[0] != '\0')
			fprintf(out, "  watcher: %s\n", watch);
	}
	r = spool_acks(sp, report_ack, &ar);
	if (json)
		fprintf(out, "]}\n");
	else if (ar.n == 0)
		fprintf(out, "  no standby has connected yet\n");
	spool_close(sp);
	return r;
}

int
status_standby(const struct config_standby *cfg, const struct auth *auth,
    int json, FILE *out, char *err, size_t errlen)
{
	struct wire_hello h;
	struct client *c = NULL;
	struct state_info si;
	uint64_t seq;
	int reach = 0;

	struct progress pr;
	uint64_t pr_ns = 0;
	int have_pr = 0, sfd;
	char line[160];

	(void)err;
	(void)errlen;
	(void)state_read(cfg->state_dir, &si);
	/* A running follower's compare of the whole tree (progress.h). */
	sfd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd >= 0) {
		have_pr = si.running && progress_load(sfd, &pr, &pr_ns) == 0;
		close(sfd);
	}
	seq = si.have_position ? si.position : 0;
	reach = client_new(cfg, auth, &c) == 0 && client_hello(c, &h) == 0;
	client_free(c);
	if (json) {
		fprintf(out, "{\"role\":\"standby\",\"running\":%s,"
		    "\"primary\":", si.running ? "true" : "false");
		json_str(out, cfg->primary.text);
		fprintf(out, ",\"data_dir\":");
		json_str(out, cfg->data_dir);
		fprintf(out, ",\"generation\":");
		json_str(out, si.generation);
		fprintf(out, ",\"position\":%" PRIu64 ",\"position_time\":%"
		    PRId64 ",\"complete\":%s,\"primary_reachable\":%s", seq,
		    si.position_time, si.complete ? "true" : "false",
		    reach ? "true" : "false");
		fprintf(out, ",\"skipped\":%" PRIu64, si.skipped);
		fprintf(out, ",\"inplace_pending\":%" PRIu64,
		    si.inplace_pending);
		if (have_pr)
			fprintf(out, ",\"compare\":{\"entries\":%" PRIu64
			    ",\"total_entries\":%" PRIu64 ",\"bytes\":%" PRIu64
			    ",\"total_bytes\":%" PRIu64 ",\"received_bytes\":%"
			    PRIu64 ",\"elapsed_seconds\":%.1f}", pr.entries,
			    pr.total_entries, pr.bytes, pr.total_bytes,
			    pr.received, (double)pr_ns / 1e9);
		if (si.skipped > 0) {
			fprintf(out, ",\"skipped_last\":");
			json_str(out, si.skipped_last);
		}
		if (reach)
			fprintf(out, ",\"primary_generation\":\"%s\","
			    "\"primary_seq\":%" PRIu64 ",\"lag_records\":%"
			    PRIu64, h.generation, h.seq,
			    si.have_position && strcmp(si.generation,
			    h.generation) == 0 && h.seq > seq ?
			    h.seq - seq : 0);
		fprintf(out, "}\n");
		return 0;
	}
	fprintf(out, "standby of %s (%s)\n  data %s\n", cfg->primary.text,
	    si.running ? "a sync is running" : "no sync running",
	    cfg->data_dir);
	fprintf(out, "  generation %s\n", si.generation[0] ? si.generation :
	    "(none yet)");
	if (si.have_position)
		fprintf(out, "  applied change %" PRIu64 "\n", seq);
	if (si.complete)
		fprintf(out, "  the replica is complete: a rescue closed "
		    "generation %s at change %" PRIu64 "\n", si.generation,
		    si.complete_seq);
	else
		fprintf(out, "  no position yet: the next sync compares the "
		    "whole tree\n");
	if (have_pr) {
		progress_format(&pr, pr_ns, line, sizeof(line));
		fprintf(out, "  comparing the whole tree: %s\n", line);
	}
	if (si.skipped > 0)
		fprintf(out, "  %" PRIu64 " entries of the primary not "
		    "replicated: they would replace names excluded here, or "
		    "this standby cannot make them (the last '%s')\n",
		    si.skipped, si.skipped_last);
	if (si.inplace_pending > 0)
		fprintf(out, "  %" PRIu64 " in-place update%s pending in "
		    "state_dir/inplace: %s\n", si.inplace_pending,
		    si.inplace_pending == 1 ? "" : "s", si.running ?
		    "being written" : "the next sync completes or drops "
		    "them before anything else");
	if (!reach)
		fprintf(out, "  primary unreachable\n");
	else if (strcmp(si.generation, h.generation) != 0)
		fprintf(out, "  primary is at generation %s: a full compare "
		    "comes next\n", h.generation);
	else
		fprintf(out, "  primary at change %" PRIu64 ": lag %" PRIu64
		    " records\n", h.seq, si.have_position && h.seq > seq ?
		    h.seq - seq : 0);
	return 0;
}
