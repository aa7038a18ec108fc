/*
 * cmd-rescue.c: asyncrep rescue, the third node: take over a failed
 * primary's address and finish its replication from its storage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "cmd.h"
#include "delta.h"
#include "error.h"
#include "guard.h"
#include "log.h"
#include "rescue.h"

#define RESCUE_TIMEOUT_NS (300ull * 1000000000ull)

/* Put an absolute path of the primary under root, into *path. */
static int
reroot(const char *root, char **path)
{
	char buf[8192];
	int n;

	if (root == NULL || *path == NULL)
		return 0;
	n = snprintf(buf, sizeof(buf), "%s%s", root, *path);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -AR_EUSAGE;
	free(*path);
	*path = strdup(buf);
	return *path == NULL ? -AR_ENOMEM : 0;
}

static int
cmd_rescue_exec(struct cmd_ctx *ctx)
{
	struct config_primary *cfg = &ctx->cfg.primary;
	struct rescue_opts o;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 1024];
	sigset_t set;
	int r;

	if (ctx->config_path == NULL) {
		log_error("rescue: give the failed primary's configuration "
		    "with -c FILE");
		return -AR_EUSAGE;
	}
	if (ctx->root != NULL && ctx->root[0] != '/') {
		log_error("rescue: --root must be an absolute path");
		return -AR_EUSAGE;
	}
	/* Claim 3: the primary's paths, seen under the mount point. */
	r = reroot(ctx->root, &cfg->data_dir);
	if (r == 0)
		r = reroot(ctx->root, &cfg->spool_dir);
	if (r == 0 && ctx->root != NULL && cfg->auth_token_file != NULL) {
		char buf[8192];
		int shared;

		/* The token may live on the shared storage or be deployed
		 * on every node: prefer the shared copy. */
		snprintf(buf, sizeof(buf), "%s%s", ctx->root,
		    cfg->auth_token_file);
		guard_enter("looking for the token file");
		shared = access(buf, R_OK) == 0;
		guard_leave();
		if (shared)
			r = reroot(ctx->root, &cfg->auth_token_file);
	}
	if (r != 0) {
		log_error("rescue: --root: %s", r == -AR_EUSAGE ?
		    "path too long" : ar_strerror(r));
		return r;
	}
	guard_enter("reading the token file");
	r = auth_load(&auth, cfg->auth_token_file, err, sizeof(err));
	guard_leave();
	if (r != 0) {
		log_error("%s", err);
		return r;
	}
	delta_global_init();
	r = cmd_signals(&set, 0, NULL);
	if (r != 0) {
		log_error("rescue: cannot block the stop signals");
		return r;
	}
	memset(&o, 0, sizeof(o));
	o.cfg = cfg;
	o.auth = &auth;
	o.timeout_ns = ctx->timeout_ns ? ctx->timeout_ns : RESCUE_TIMEOUT_NS;
	o.settle_ns = ctx->settle_ns;
	o.status_file = ctx->status_file;
	o.sigs = &set;
	r = rescue_run(&o, err, sizeof(err));
	if (r != 0)
		log_error("rescue: %s", err);
	return r;
}

const struct cmd_entry cmd_rescue_entry = {
	.name = "rescue",
	.section = "primary",
	.usage = "-c PRIMARY_CONFIG [--root MOUNTPOINT] [--listen IP:PORT] "
	    "[--timeout T] [--storage-timeout T] [--settle T] [--status-file FILE]",
	.help = "take over a failed primary and complete its replication "
	    "(the third node)",
	.exec = cmd_rescue_exec,
	.storage_guard_ns = 20ull * 1000000000ull,
};
