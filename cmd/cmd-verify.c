/*
 * cmd-verify.c: asyncrep verify, the standby: prove that data_dir holds
 * the primary's content (verify.h).
 */
#include <getopt.h>
#include <stdio.h>

#include "auth.h"
#include "cmd.h"
#include "error.h"
#include "log.h"
#include "verify.h"

static int
cmd_verify_exec(struct cmd_ctx *ctx)
{
	const struct config_standby *cfg = &ctx->cfg.standby;
	struct verify_opts o;
	struct verify_stats st;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 1024];
	int r;

	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, NULL);
	if (r != 0)
		return r;
	o.cfg = cfg;
	o.auth = &auth;
	o.out = stdout;
	o.rate = ctx->rate;
	/* Never under -q; only on a terminal (progress.h), never a log. */
	o.progress = ctx->progress && ctx->verbosity >= LOG_LVL_INFO;
	r = verify_run(&o, &st, err, sizeof(err));
	auth_release(&auth);
	if (r == -AR_EDIFFER)
		log_warn("%s", err);
	else if (r != 0)
		log_error("%s", err);
	if (st.changing > 0)
		log_info("%llu files changed while they were verified",
		    (unsigned long long)st.changing);
	log_verbose("%llu files of %llu bytes compared by content, %llu "
	    "differ, %llu changing, %llu not verified",
	    (unsigned long long)st.files, (unsigned long long)st.bytes,
	    (unsigned long long)st.differ, (unsigned long long)st.changing,
	    (unsigned long long)st.unverified);
	return r;
}

static const struct cmd_option cmd_verify_options[] = {
	{ "rate", required_argument, CMD_OPT_RATE, "RATE",
	    "read at most RATE bytes a second on each side (50M)" },
	{ "progress", no_argument, CMD_OPT_PROGRESS, NULL,
	    "show the progress of the compare on a terminal" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_verify_entry = {
	.name = "verify",
	.section = "standby",
	.usage = "[-c FILE] [--data-dir D --primary IP:PORT] [--rate RATE] [--progress]",
	.help = "compare data_dir's content with the primary's, changing "
	    "nothing (the standby)",
	.options = cmd_verify_options,
	.exec = cmd_verify_exec,
};
