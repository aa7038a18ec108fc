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
	sigset_t set;
	int r;

	if (ctx->follow && ctx->dry_run) {
		log_error("--follow and --dry-run cannot go together: a "
		    "follower's position must only move past what it applied");
		return -AR_EUSAGE;
	}
	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, NULL);
	if (r != 0)
		return r;
	delta_global_init();
	o.cfg = cfg;
	o.auth = &auth;
	o.dry_run = ctx->dry_run;
	o.itemize = ctx->itemize ? stdout : NULL;
	o.force_delete = ctx->force_delete;
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
	auth_release(&auth);
	fflush(stdout);
	if (r != 0)
		log_error("%s", err);
	log_verbose("%llu entries, %llu files whole, %llu by delta, "
	    "%llu appended, %llu directories, %llu links, %llu deleted, "
	    "%llu attributes%s",
	    (unsigned long long)st.entries,
	    (unsigned long long)st.files_whole,
	    (unsigned long long)st.files_delta,
	    (unsigned long long)st.files_appended,
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
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_sync_entry = {
	.name = "sync",
	.section = "standby",
	.usage = "[-c FILE] [--data-dir D --state-dir S --primary IP:PORT] "
	    "[-n] [-i] [--follow] [--force-delete]",
	.help = "bring data_dir up to date with the primary, once or "
	    "--follow (the standby)",
	.options = cmd_sync_options,
	.exec = cmd_sync_exec,
};
