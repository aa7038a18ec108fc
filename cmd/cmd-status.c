/*
 * cmd-status.c: asyncrep status: lag, queue depth, position, peers and
 * generation of whichever roles the configuration file describes.
 */
#include <getopt.h>
#include <stdio.h>

#include "auth.h"
#include "cmd.h"
#include "error.h"
#include "log.h"
#include "status.h"

static int
cmd_status_exec(struct cmd_ctx *ctx)
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

static const struct cmd_option cmd_status_options[] = {
	{ "json", no_argument, CMD_OPT_JSON, NULL,
	    "print one JSON object per role instead of text" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.section = NULL,
	.usage = "-c FILE [--json]",
	.help = "report the state of the primary or standby the file "
	    "describes",
	.options = cmd_status_options,
	.exec = cmd_status_exec,
};
