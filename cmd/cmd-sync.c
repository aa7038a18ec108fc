/*
 * cmd-sync.c: asyncrep sync, the standby: bring data_dir up to date.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "auth.h"
#include "cmd.h"
#include "delta.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "sync.h"

static volatile sig_atomic_t stop;

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int
cmd_sync_exec(struct cmd_ctx *ctx)
{
	const struct config_standby *cfg = &ctx->cfg.standby;
	struct sync_opts o;
	struct sync_stats st;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 1024];
	struct metrics_server *ms = NULL;
	sigset_t set;
	int r, w;

	if (ctx->follow && ctx->metrics_file != NULL) {
		log_error("--metrics-file is for a one-shot sync: a follower "
		    "serves its metrics on metrics_listen");
		return -AR_EUSAGE;
	}
	if (ctx->follow && ctx->dry_run) {
		log_error("--follow and --dry-run cannot go together: a "
		    "follower's position must only move past what it applied");
		return -AR_EUSAGE;
	}
	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, NULL);
	if (r != 0)
		return r;
	delta_global_init();
	metrics_init(METRICS_STANDBY);
	(void)metrics_start(&cfg->metrics_listen, &ms);
	o.cfg = cfg;
	o.auth = &auth;
	o.dry_run = ctx->dry_run;
	o.itemize = ctx->itemize ? stdout : NULL;
	o.force_delete = ctx->force_delete;
	o.checksum = ctx->checksum;
	/* Never under -q; only on a terminal (progress.h), never a log. */
	o.progress = ctx->progress && ctx->verbosity >= LOG_LVL_INFO;
	if (ctx->follow) {
		r = cmd_signals(&set, 0, on_stop);
		if (r != 0) {
			log_error("sync: cannot catch the stop signals");
			auth_release(&auth);
			return r;
		}
		r = sync_follow(&o, &st, &stop, err, sizeof(err));
	} else
		r = sync_run(&o, &st, err, sizeof(err));
	metrics_stop(ms);
	auth_release(&auth);
	/* The textfile is written whatever the outcome: a failed run is
	 * what an alert wants to see. */
	if (ctx->metrics_file != NULL) {
		metrics_set_standby_state(r == 0 ? METRICS_SB_DONE :
		    METRICS_SB_FAILED);
		w = metrics_write_file(ctx->metrics_file);
		if (w != 0)
			log_warn("--metrics-file '%s': %s", ctx->metrics_file,
			    ar_strerror(w));
	}
	fflush(stdout);
	if (r != 0)
		log_error("%s", err);
	log_verbose("%llu entries, %llu files whole, %llu by delta, "
	    "%llu appended, %llu by changed blocks, %llu directories, "
	    "%llu links, %llu deleted, %llu attributes%s",
	    (unsigned long long)st.entries,
	    (unsigned long long)st.files_whole,
	    (unsigned long long)st.files_delta,
	    (unsigned long long)st.files_appended,
	    (unsigned long long)st.files_blocks,
	    (unsigned long long)st.dirs_created,
	    (unsigned long long)st.links_set,
	    (unsigned long long)st.deleted,
	    (unsigned long long)st.attrs_set,
	    ctx->dry_run ? " (dry run)" : "");
	log_verbose("sent %llu bytes  received %llu bytes",
	    (unsigned long long)st.net_sent,
	    (unsigned long long)st.net_received);
	return r;
}

static const struct cmd_option cmd_sync_options[] = {
	{ "dry-run", no_argument, 'n', NULL,
	    "show what would be done, change nothing" },
	{ "itemize-changes", no_argument, 'i', NULL,
	    "print one line per changed file" },
	{ "follow", no_argument, CMD_OPT_FOLLOW, NULL,
	    "keep running and replicating until stopped" },
	{ "force-delete", no_argument, CMD_OPT_FORCE_DELETE, NULL,
	    "delete even past max_delete" },
	{ "progress", no_argument, CMD_OPT_PROGRESS, NULL,
	    "show the progress of compares on a terminal" },
	{ "checksum", no_argument, CMD_OPT_CHECKSUM, NULL,
	    "compare the content of files equal in size and mtime" },
	{ "metrics-file", required_argument, CMD_OPT_METRICS_FILE, "FILE",
	    "write the metrics to FILE at the end (one-shot)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_sync_entry = {
	.name = "sync",
	.section = "standby",
	.usage = "[-c FILE] [--data-dir D --state-dir S --primary IP:PORT] "
	    "[-n] [-i] [--follow] [--force-delete] [--checksum] [--progress] [--metrics-file FILE]",
	.help = "bring data_dir up to date with the primary, once or "
	    "--follow (the standby)",
	.options = cmd_sync_options,
	.exec = cmd_sync_exec,
};
