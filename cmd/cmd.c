/*
 * cmd.c: what the commands share: how a long-running command is stopped.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "cmd.h"
#include "error.h"

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
