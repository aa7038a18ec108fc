/*
 * cmd-rescue.c: asyncrep rescue, the third node: take over a failed
 * primary's address and finish its replication from its storage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "cmd.h"
#include "delta.h"
#include "error.h"
#include "fs.h"
#include "guard.h"
#include "log.h"
#include "rescue.h"

#define RESCUE_TIMEOUT_NS (300ull * 1000000000ull)

/* Longest path of the primary's, seen under --root. */
#define RESCUE_PATH_MAX 8192

/*
 * The primary's absolute path (its config key key) seen under root, into
 * buf; a path that does not fit is an error that names it.
 */
static int
rescue_path(const char *root, const char *key, const char *path, char *buf,
    size_t len)
{
	char qr[128], qp[128];
	int n;

	n = snprintf(buf, len, "%s%s", root, path);
	if (n >= 0 && (size_t)n < len)
		return 0;
	log_error("rescue: %s '%s' under --root '%s': path too long", key,
	    log_escape(path, strlen(path), qp, sizeof(qp)),
	    log_escape(root, strlen(root), qr, sizeof(qr)));
	return -AR_EUSAGE;
}

/* Put an absolute path of the primary under root, into *path. */
static int
rescue_reroot(const char *root, const char *key, char **path)
{
	char buf[RESCUE_PATH_MAX];
	int r;

	if (root == NULL || *path == NULL)
		return 0;
	r = rescue_path(root, key, *path, buf, sizeof(buf));
	if (r != 0)
		return r;
	free(*path);
	*path = strdup(buf);
	if (*path == NULL) {
		log_error("rescue: %s", ar_strerror(-AR_ENOMEM));
		return -AR_ENOMEM;
	}
	return 0;
}

/*
 * Where tls_load reads the primary's certificate, key and CA: beneath
 * rootfd (confined: fs_open_in_root) when the file named by the
 * primary's configuration is there, else at its own path, as for the
 * token; and at its own path when this command line named it (a local
 * copy wins over the storage's).
 */
static void
rescue_tls_files(const struct cmd_ctx *ctx, int rootfd,
    int dirfds[TLS_NFILES])
{
	static const char *const keys[TLS_NFILES] = {
		[TLS_FILE_CERT] = "tls_cert",
		[TLS_FILE_KEY] = "tls_key",
		[TLS_FILE_CA] = "tls_ca",
	};
	const struct config_tls *t = &ctx->cfg.primary.tls;
	const char *paths[TLS_NFILES];
	size_t i;
	int fd;

	paths[TLS_FILE_CERT] = t->cert;
	paths[TLS_FILE_KEY] = t->key;
	paths[TLS_FILE_CA] = t->ca;
	for (i = 0; i < TLS_NFILES; i++) {
		dirfds[i] = AT_FDCWD;
		if (rootfd < 0 || paths[i] == NULL ||
		    cmd_key_given(ctx, keys[i]))
			continue;
		guard_enter("looking for the TLS files");
		if (fs_open_in_root(rootfd, paths[i], O_RDONLY | O_NONBLOCK,
		    &fd) == 0) {
			close(fd);
			dirfds[i] = rootfd;
		}
		guard_leave();
	}
}

static int
cmd_rescue_exec(struct cmd_ctx *ctx)
{
	struct config_primary *cfg = &ctx->cfg.primary;
	struct rescue_opts o;
	struct auth auth;
	char err[CONFIG_ERR_MAX + 1024];
	int dirfds[TLS_NFILES], rootfd = -1;
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
	r = rescue_reroot(ctx->root, "data_dir", &cfg->data_dir);
	if (r == 0)
		r = rescue_reroot(ctx->root, "spool_dir", &cfg->spool_dir);
	if (r == 0 && ctx->root != NULL && cfg->auth_token_file != NULL &&
	    !cmd_key_given(ctx, "auth_token_file")) {
		char buf[RESCUE_PATH_MAX];
		int shared;

		/* The token may live on the shared storage or be deployed
		 * on every node: prefer the shared copy. */
		r = rescue_path(ctx->root, "auth_token_file",
		    cfg->auth_token_file, buf, sizeof(buf));
		if (r != 0)
			return r;
		guard_enter("looking for the token file");
		shared = access(buf, R_OK) == 0;
		guard_leave();
		if (shared)
			r = rescue_reroot(ctx->root, "auth_token_file",
			    &cfg->auth_token_file);
	}
	if (r != 0)
		return r;
	/* The primary's identity, so that standbys pinning it accept us. */
	if (ctx->root != NULL && config_tls_enabled(&cfg->tls)) {
		guard_enter("opening --root");
		if (fs_open_dir(ctx->root, &rootfd) != 0) {
			char q[128];

			log_error("rescue: --root '%s': %s", log_escape(
			    ctx->root, strlen(ctx->root), q, sizeof(q)),
			    strerror(errno));
			guard_leave();
			return -AR_ESTORAGE;
		}
		guard_leave();
	}
	rescue_tls_files(ctx, rootfd, dirfds);
	guard_enter("reading the token and TLS files");
	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, dirfds);
	guard_leave();
	if (rootfd >= 0)
		close(rootfd);
	if (r != 0)
		return r;
	r = auth_listen_check(&auth, &cfg->listen, cfg->tls.mode, err,
	    sizeof(err));
	if (r != 0) {
		log_error("rescue: %s", err);
		auth_release(&auth);
		return r;
	}
	delta_global_init();
	r = cmd_signals(&set, 0, NULL);
	if (r != 0) {
		log_error("rescue: cannot block the stop signals");
		auth_release(&auth);
		return r;
	}
	memset(&o, 0, sizeof(o));
	o.cfg = cfg;
	o.auth = &auth;
	o.timeout_ns = ctx->timeout_ns ? ctx->timeout_ns : RESCUE_TIMEOUT_NS;
	o.settle_ns = ctx->settle_ns;
	o.status_file = ctx->status_file;
	o.sigs = &set;
	o.standbys = ctx->standbys;
	o.nstandbys = ctx->nstandbys;
	o.any = ctx->any;
	if (cmd_key_given(ctx, "metrics_listen"))
		o.metrics_listen = &cfg->metrics_listen;
	r = rescue_run(&o, err, sizeof(err));
	if (r != 0)
		log_error("rescue: %s", err);
	auth_release(&auth);
	return r;
}

static const struct cmd_option cmd_rescue_options[] = {
	{ "root", required_argument, CMD_OPT_ROOT, "DIR",
	    "the primary's paths lie under DIR" },
	{ "timeout", required_argument, CMD_OPT_TIMEOUT, "T",
	    "give up on a standby that has not called for T (default 300s)" },
	{ "standby", required_argument, CMD_OPT_STANDBY, "ID",
	    "complete standby ID (repeatable; default: standbys, or acks)" },
	{ "any", no_argument, CMD_OPT_ANY, NULL,
	    "complete as soon as one standby confirmed" },
	{ "storage-timeout", required_argument, CMD_OPT_STORAGE_TIMEOUT, "T",
	    "storage silent for T is hung (default 20s)" },
	{ "settle", required_argument, CMD_OPT_SETTLE, "T",
	    "wait T for the mount's caches to expire first" },
	{ "status-file", required_argument, CMD_OPT_STATUS_FILE, "FILE",
	    "keep the progress in FILE" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct cmd_entry cmd_rescue_entry = {
	.name = "rescue",
	.section = "primary",
	.usage = "-c PRIMARY_CONFIG [--root MOUNTPOINT] [--listen IP:PORT] "
	    "[--timeout T] [--standby ID]... [--any] [--storage-timeout T] "
	    "[--settle T] [--status-file FILE]",
	.help = "take over a failed primary and complete its replication "
	    "(the third node)",
	.options = cmd_rescue_options,
	.exec = cmd_rescue_exec,
	.storage_guard_ns = 20ull * 1000000000ull,
};
