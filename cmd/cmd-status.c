/*
 * cmd-status.c: asyncrep status: lag, queue depth, position, peers and
 * generation of whichever roles the configuration file describes.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cmd.h"
#include "error.h"
#include "log.h"
#include "status.h"

/* One report of each role the file describes. */
static int
cmd_status_once(struct cmd_ctx *ctx)
{
	struct config *cfg = &ctx->cfg;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 512];
	int r = -AR_ECONFIG, any = 0;

	if (config_check(cfg, "primary", err, sizeof(err)) == 0) {
		any = 1;
		r = status_primary(&cfg->primary, ctx->json, stdout, err,
		    sizeof(err));
		if (r != 0)
			log_error("%s", err);
	}
	if (config_check(cfg, "standby", err, sizeof(err)) == 0) {
		any = 1;
		r = cmd_auth_load(&auth, cfg->standby.auth_token_file,
		    &cfg->standby.tls, NULL);
		if (r == 0) {
			r = status_standby(&cfg->standby, &auth, ctx->json,
			    stdout, err, sizeof(err));
			if (r != 0)
				log_error("%s", err);
			auth_release(&auth);
		}
	}
	if (!any)
		log_error("status: the configuration has no complete [primary] "
		    "or [standby] section (give one with -c FILE)");
	return r;
}

/*
 * --watch: the report again every CMD_STATUS_EVERY_S seconds, as
 * watch(1) shows a command, until SIGINT or SIGTERM (exit 0). On a
 * terminal the screen is cleared first; otherwise the reports follow one
 * another, each after a line with its time. A round that fails (the
 * primary unreachable) is reported and the next one comes all the same.
 */
#define CMD_STATUS_EVERY_S 2

static int
cmd_status_watch(struct cmd_ctx *ctx)
{
	struct timespec ts = { CMD_STATUS_EVERY_S, 0 };
	sigset_t set;
	char when[CONFIG_ERR_MAX];
	time_t now;
	struct tm tm;
	int tty = isatty(STDOUT_FILENO), sig;

	if (config_check(&ctx->cfg, "primary", when, sizeof when) != 0 &&
	    config_check(&ctx->cfg, "standby", when, sizeof when) != 0)
		return cmd_status_once(ctx);	/* says why, exits 2 */
	if (cmd_signals(&set, 0, NULL) != 0)
		return -AR_EINTERNAL;
	for (;;) {
		now = time(NULL);
		if (localtime_r(&now, &tm) == NULL ||
		    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof when, "%lld", (long long)now);
		if (tty)
			fputs("\033[H\033[2J", stdout);
		if (!ctx->json)
			printf("Every %ds: asyncrep status    %s\n\n",
			    CMD_STATUS_EVERY_S, when);
		fflush(stdout);
		(void)cmd_status_once(ctx);
		if (fflush(stdout) != 0)
			return -AR_EIO;
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			return 0;
		if (!tty && !ctx->json)
			putchar('\n');
	}
}

static int
cmd_status_exec(struct cmd_ctx *ctx)
{
	return ctx->watch ? cmd_status_watch(ctx) : cmd_status_once(ctx);
}

static const struct cmd_option cmd_status_options[] = {
	{ "json", no_argument, CMD_OPT_JSON, NULL,
	    "print one JSON object per role instead of text" },
	{ "watch", no_argument, CMD_OPT_WATCH, NULL,
	    "report again every 2 seconds until interrupted" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.section = NULL,
	.usage = "-c FILE [--json] [--watch]",
	.help = "report the state of the primary or standby the file "
	    "describes",
	.options = cmd_status_options,
	.exec = cmd_status_exec,
};
