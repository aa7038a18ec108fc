/*
 * cmd-watch.c: asyncrep watch, the primary: serve data_dir to standbys.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "auth.h"
#include "cmd.h"
#include "delta.h"
#include "error.h"
#include "fs.h"
#include "gen.h"
#include "log.h"
#include "server.h"

static int
cmd_watch_exec(struct cmd_ctx *ctx)
{
	const struct config_primary *cfg = &ctx->cfg.primary;
	struct server_opts opts;
	struct server *srv = NULL;
	struct auth auth;
	char err[CONFIG_ERR_MAX], gen[WIRE_GEN_LEN + 1];
	sigset_t set;
	int rootfd, lockfd, sig, r;

	r = config_check(&ctx->cfg, "primary", err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		return r;
	}
	r = auth_load(&auth, cfg->auth_token_file, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		return r;
	}
	if (fs_open_dir(cfg->data_dir, &rootfd) != 0) {
		log_error("data directory '%s': %s", cfg->data_dir,
		    strerror(errno));
		return -AR_EIO;
	}
	r = gen_open(cfg->spool_dir, &lockfd, gen, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		close(rootfd);
		return r;
	}
	delta_global_init();

	/* Signals are taken synchronously by this thread only; the server's
	 * threads inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&opts, 0, sizeof(opts));
	opts.cfg = cfg;
	opts.rootfd = rootfd;
	opts.generation = gen;
	opts.role = WIRE_ROLE_PRIMARY;
	opts.auth = &auth;
	r = server_start(&opts, &srv, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		close(lockfd);
		close(rootfd);
		return r;
	}
	log_info("serving '%s' on %s, generation %s", cfg->data_dir,
	    cfg->listen.text, gen);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
	}
	log_info("stopping on signal %d", sig);
	server_stop(srv);
	close(lockfd);
	close(rootfd);
	return 0;
}

const struct cmd_entry cmd_watch_entry = {
	.name = "watch",
	.section = "primary",
	.usage = "[-c FILE] [--data-dir D --spool-dir S --listen IP:PORT] "
	    "[--auth-token-file F]",
	.help = "serve data_dir to standbys (the primary)",
	.exec = cmd_watch_exec,
};
