/*
 * primary.h: the primary daemon (asyncrep watch), assembled.
 *
 * Three threads around the spool: the watcher thread turns filesystem
 * events into spool records; the pump thread commits them (group commit:
 * one fdatasync for everything appended since the last one) and releases
 * them to standbys every interval; the caller's thread waits for a
 * signal. The HTTP server runs in libmicrohttpd's threads. It also owns
 * PRIMARY_STATUS_FILE, the watcher's figures that asyncrep status shows.
 */
#ifndef ASYNCREP_PRIMARY_H
#define ASYNCREP_PRIMARY_H

#include <signal.h>

#include "auth.h"
#include "config.h"

/* In spool_dir: one line of the watcher's figures, rewritten every 2 s
 * by a running watch for asyncrep status. */
#define PRIMARY_STATUS_FILE "watch.status"

/*
 * Serve cfg->data_dir until one of the signals in sigs arrives (they
 * must be blocked in every thread). Returns 0 after a clean stop, or the
 * error that prevented serving, explained in err.
 */
int primary_run(const struct config_primary *cfg, const struct auth *auth,
    const sigset_t *sigs, char *err, size_t errlen);

#endif
