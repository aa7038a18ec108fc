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

/*
 * In spool_dir, rewritten every 2 s by a running watch for asyncrep
 * status: a line of the watcher's figures, then "spool " and the spool's
 * condition. Written in place when the filesystem has no room for a new
 * file; not at all when it is read-only, which status tells by itself.
 */
#define PRIMARY_STATUS_FILE "watch.status"

/*
 * The spool's condition, in watch.status and in --status-file (one line):
 * "recording", or STATE SINCE ERROR where SINCE is when the spool stopped
 * recording (seconds since the epoch) and ERROR is strerror's text.
 */
#define PRIMARY_SPOOL_RECORDING "recording"	/* every change is journaled */
#define PRIMARY_SPOOL_FULL "full"	/* no space (ENOSPC, EDQUOT): it
					 * records again once there is */
#define PRIMARY_SPOOL_FAILING "failing"	/* read-only, I/O errors: rarely
					 * cures itself */

/*
 * Serve cfg->data_dir until one of the signals in sigs arrives (they
 * must be blocked in every thread). status_file (NULL: none) gets the
 * spool's condition whenever it changes. source_flags (source.h's
 * SOURCE_ALLOW_EMPTY, SOURCE_REINIT) say what the operator meant when
 * data_dir is not the tree the spool served (-AR_ESOURCE). Returns 0
 * after a clean stop, or the error that prevented serving, explained in
 * err.
 */
int primary_run(const struct config_primary *cfg, const struct auth *auth,
    const char *status_file, unsigned source_flags, const sigset_t *sigs,
    char *err, size_t errlen);

#endif
