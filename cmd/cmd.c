/*
 * cmd.c: what the commands share: how a long-running command is stopped,
 * how it reads its credentials, and which keys its command line set.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "cmd.h"
#include "error.h"
#include "log.h"

int
cmd_auth_load(struct auth *a, const char *token_file,
    const struct config_tls *tls, const int dirfds[TLS_NFILES])
{
	char err[CONFIG_ERR_MAX + 512];
	int r;

	r = auth_load(a, token_file, err, sizeof(err));
	if (r == 0)
		r = tls_load(&a->tls, tls, dirfds, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		auth_release(a);
	}
	return r;
}

int
cmd_key_given(const struct cmd_ctx *ctx, const char *key)
{
	size_t i;

	for (i = 0; i < ctx->ngiven; i++) {
		if (strcmp(ctx->given[i], key) == 0)
			return 1;
	}
	return 0;
}

int
cmd_signals(sigset_t *set, int hup, void (*handler)(int))
{
	struct sigaction sa;

	if (sigemptyset(set) != 0 || sigaddset(set, SIGINT) != 0 ||
	    sigaddset(set, SIGTERM) != 0 ||
	    (hup && sigaddset(set, SIGHUP) != 0))
		return -AR_EINTERNAL;
	if (handler == NULL)
		return pthread_sigmask(SIG_BLOCK, set, NULL) == 0 ? 0 :
		    -AR_EINTERNAL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0 ||
	    (hup && sigaction(SIGHUP, &sa, NULL) != 0))
		return -AR_EINTERNAL;
	return 0;
}
