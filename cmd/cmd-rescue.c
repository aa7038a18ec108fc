/*
 * cmd-rescue.c: asyncrep rescue, the third node: take over a failed
 * primary's address and finish its replication from its storage.
 */
#include <errno.h>
#include <limits.h>
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

/* A path of the primary's that is too long seen under root: an error
 * that names it (exit 1). */
static int
rescue_len_check(const char *root, const char *key, const char *path)
{
	char qr[128], qp[128];

	if (path == NULL || strlen(root) + strlen(path) < RESCUE_PATH_MAX)
		return 0;
	log_error("rescue: %s '%s' under --root '%s': path too long", key,
	    log_escape(path, strlen(path), qp, sizeof(qp)),
	    log_escape(root, strlen(root), qr, sizeof(qr)));
	return -AR_EUSAGE;
}

/* 1 if path has a ".." component. */
static int
rescue_has_dotdot(const char *path)
{
	const char *p = path;
	size_t len;

	while (*p != '\0') {
		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += len;
	}
	return 0;
}

/*
 * Claim 3 under --root: the primary's path (its config key key) is
 * resolved beneath rootfd as if the mount point were "/"
 * (fs_open_in_root: openat2 RESOLVE_IN_ROOT, so no symlink on the
 * storage leads out of it, an absolute one meaning the storage's own
 * tree), checked to lie under rootpath (the mount point's real path),
 * and the rescue is given the descriptor itself, as /proc/self/fd/N in
 * *path (*fdp stays open): every later open goes through it, so a
 * symlink put on the storage afterwards cannot lead out either. *name
 * is the path it resolved to, for messages. Joining strings served this
 * node's own files for a data_dir with ".." or a symlink on the
 * storage. A ".." is refused outright: the primary's own paths never
 * need one.
 */
static int
rescue_confine(int rootfd, const char *root, const char *rootpath,
    const char *key, int flags, char **path, char **name, int *fdp)
{
	char qr[128], qp[128], proc[64], buf[PATH_MAX];
	size_t rl = strlen(rootpath);
	ssize_t n;
	int fd, r;

	if (*path == NULL)
		return 0;
	log_escape(*path, strlen(*path), qp, sizeof(qp));
	log_escape(root, strlen(root), qr, sizeof(qr));
	if (rescue_has_dotdot(*path)) {
		log_error("rescue: %s '%s' holds '..': refused under --root "
		    "'%s'", key, qp, qr);
		return -AR_ECONFIG;
	}
	guard_enter("opening the primary's paths under --root");
	r = fs_open_in_root(rootfd, *path, flags, &fd);
	guard_leave();
	if (r != 0) {
		log_error("rescue: %s '%s%s': %s", key, qr, qp,
		    r == -AR_EIO ? strerror(errno) : "a symlink or '..' on "
		    "the way");
		return -AR_ESTORAGE;
	}
	n = snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (n > 0 && (size_t)n < sizeof(proc))
		n = readlink(proc, buf, sizeof(buf) - 1);
	else
		n = -1;
	if (n <= 0 || (size_t)n >= sizeof(buf) - 1) {
		close(fd);
		log_error("rescue: %s '%s%s': cannot tell where it leads",
		    key, qr, qp);
		return -AR_ESTORAGE;
	}
	buf[n] = '\0';
	if (strncmp(buf, rootpath, rl) != 0 || (buf[rl] != '/' &&
	    buf[rl] != '\0' && rl > 1)) {
		close(fd);
		log_error("rescue: %s '%s%s' leads out of --root", key, qr,
		    qp);
		return -AR_ECONFIG;
	}
	free(*path);
	*path = strdup(proc);
	if (name != NULL)
		*name = strdup(buf);
	if (*path == NULL || (name != NULL && *name == NULL)) {
		close(fd);
		log_error("rescue: %s", ar_strerror(-AR_ENOMEM));
		return -AR_ENOMEM;
	}
	*fdp = fd;
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
	char rootpath[PATH_MAX], *data_name = NULL, *spool_name = NULL;
	int data_fd = -1, spool_fd = -1, token_fd = -1;
	int dirfds[TLS_NFILES], rootfd = -1, fd;
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
	if (ctx->root != NULL) {
		r = rescue_len_check(ctx->root, "data_dir", cfg->data_dir);
		if (r == 0)
			r = rescue_len_check(ctx->root, "spool_dir",
			    cfg->spool_dir);
		if (r == 0 && !cmd_key_given(ctx, "auth_token_file"))
			r = rescue_len_check(ctx->root, "auth_token_file",
			    cfg->auth_token_file);
		if (r != 0)
			return r;
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
		if (realpath(ctx->root, rootpath) == NULL) {
			log_error("rescue: --root: %s", strerror(errno));
			r = -AR_ESTORAGE;
			goto out;
		}
		r = rescue_confine(rootfd, ctx->root, rootpath, "data_dir",
		    O_RDONLY | O_DIRECTORY, &cfg->data_dir, &data_name,
		    &data_fd);
		if (r == 0)
			r = rescue_confine(rootfd, ctx->root, rootpath,
			    "spool_dir", O_RDONLY | O_DIRECTORY,
			    &cfg->spool_dir, &spool_name, &spool_fd);
		/* The token may live on the shared storage or be deployed
		 * on every node: prefer the shared copy. */
		if (r == 0 && cfg->auth_token_file != NULL &&
		    !cmd_key_given(ctx, "auth_token_file") &&
		    fs_open_in_root(rootfd, cfg->auth_token_file,
		    O_RDONLY | O_NONBLOCK, &fd) == 0) {
			close(fd);
			r = rescue_confine(rootfd, ctx->root, rootpath,
			    "auth_token_file", O_RDONLY | O_NONBLOCK,
			    &cfg->auth_token_file, NULL, &token_fd);
		}
		if (r != 0)
			goto out;
	}
	rescue_tls_files(ctx, rootfd, dirfds);
	guard_enter("reading the token and TLS files");
	r = cmd_auth_load(&auth, cfg->auth_token_file, &cfg->tls, dirfds);
	guard_leave();
	if (rootfd >= 0)
		close(rootfd);
	rootfd = -1;
	if (token_fd >= 0)
		close(token_fd);
	token_fd = -1;
	if (r != 0)
		goto out;
	r = auth_listen_check(&auth, &cfg->listen, cfg->tls.mode, err,
	    sizeof(err));
	if (r != 0) {
		log_error("rescue: %s", err);
		auth_release(&auth);
		goto out;
	}
	delta_global_init();
	r = cmd_signals(&set, 0, NULL);
	if (r != 0) {
		log_error("rescue: cannot block the stop signals");
		auth_release(&auth);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.cfg = cfg;
	o.data_name = data_name;
	o.spool_name = spool_name;
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
out:
	if (rootfd >= 0)
		close(rootfd);
	if (token_fd >= 0)
		close(token_fd);
	if (data_fd >= 0)
		close(data_fd);
	if (spool_fd >= 0)
		close(spool_fd);
	free(data_name);
	free(spool_name);
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
