/*
 * cmd-init.c: asyncrep init [--dir DIR] primary|standby: a first
 * configuration for this node's role, its key pair and (primary) the
 * token, and what to copy to the other nodes (core/init.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "init.h"
#include "log.h"

static int
cmd_init_exec(struct cmd_ctx *ctx)
{
	struct init_opts o;
	char err[CONFIG_ERR_MAX + 512];
	int r;

	if (ctx->argc != 1) {
		log_error("init: give the role of this node, primary or "
		    "standby (asyncrep init [--dir DIR] primary|standby)");
		return -AR_EUSAGE;
	}
	memset(&o, 0, sizeof o);
	o.role = ctx->argv[0];
	o.dir = ctx->dir;
	o.peer_pin = ctx->peer_pin;
	memcpy(o.sets, ctx->sets, sizeof o.sets);
	o.nsets = ctx->nsets;
	r = init_run(&o, stdout, err, sizeof err);
	if (r != 0) {
		log_error("%s", err);
		return r;
	}
	return fflush(stdout) == 0 ? 0 : -AR_EIO;
}

static const struct cmd_option cmd_init_options[] = {
	{ "dir", required_argument, CMD_OPT_DIR, "DIR",
	    "write in DIR (default " INIT_DIR_DEFAULT ")" },
	{ "peer-pin", required_argument, CMD_OPT_PEER_PIN, "PINS",
	    "the peer's key pin(s), for tls_trust" },
	{ "set", required_argument, CMD_OPT_SET, "KEY=VALUE",
	    "a key of the role's section (repeatable)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_init_entry = {
	.name = "init",
	.section = NULL,
	.usage = "[--dir DIR] [--peer-pin PINS] [--set KEY=VALUE]... "
	    "primary|standby",
	.help = "write a first configuration, key pair and token for this "
	    "node",
	.options = cmd_init_options,
	.exec = cmd_init_exec,
};
