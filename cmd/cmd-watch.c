/*
 * cmd-watch.c: asyncrep watch, the primary: watch data_dir, journal its
 * changes, and serve them to standbys.
 */
#include <getopt.h>
#include <signal.h>

#include "auth.h"
#include "cmd.h"
#include "delta.h"
#include "error.h"
#include "gen.h"
#include "log.h"
#include "primary.h"
#include "source.h"

static int
cmd_watch_exec(struct cmd_ctx *ctx)
{
	const struct config_primary *cfg = &ctx->cfg.primary;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 512];
	sigset_t set;
	int r;

	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, NULL);
	if (r != 0)
		return r;
	/* Refused before the spool is touched (server_start checks too). */
	r = auth_listen_check(&auth, &cfg->listen, cfg->tls.mode, err,
	    sizeof(err));
	if (r == 0 && ctx->reinit)
		r = gen_reinit(cfg->spool_dir, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		auth_release(&auth);
		return r;
	}
	delta_global_init();
	/* Signals are taken synchronously by this thread only; every other
	 * thread inherits the mask. */
	r = cmd_signals(&set, 1, NULL);
	if (r != 0)
		log_error("watch: cannot block the stop signals");
	else {
		r = primary_run(cfg, &auth, ctx->status_file,
		    (ctx->allow_empty ? SOURCE_ALLOW_EMPTY : 0) |
		    (ctx->reinit ? SOURCE_REINIT : 0), &set, err,
		    sizeof(err));
		if (r != 0)
			log_error("%s", err);
	}
	auth_release(&auth);
	return r;
}

static const struct cmd_option cmd_watch_options[] = {
	{ "reinit", no_argument, CMD_OPT_REINIT, NULL,
	    "start a new generation (after a rescue)" },
	{ "status-file", required_argument, CMD_OPT_STATUS_FILE, "FILE",
	    "keep the spool's condition in FILE" },
	{ "allow-empty", no_argument, CMD_OPT_ALLOW_EMPTY, NULL,
	    "serve an empty data_dir on purpose" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_watch_entry = {
	.name = "watch",
	.section = "primary",
	.usage = "[-c FILE] [--data-dir D --spool-dir S --listen IP:PORT] "
	    "[--interval T] [--reinit] [--status-file FILE] [--allow-empty]",
	.help = "watch data_dir and serve its changes (the primary)",
	.options = cmd_watch_options,
	.exec = cmd_watch_exec,
};
