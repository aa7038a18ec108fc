/*
 * rescue.h: the third-party takeover (claims 2 to 6).
 *
 * On a node that can read the failed primary's storage, it serves the
 * primary's journal from the primary's own address under the primary's
 * generation (role "rescue"), then has each standby compare the whole
 * tree, and returns success only when every standby it is responsible
 * for confirmed that it holds the final position (-AR_ERESCUE_PARTIAL
 * when only some did). Then it closes the generation: the marker in
 * spool_dir fences the old primary and carries the report, which a run
 * again after a partial one reads to complete only the missing.
 */
#ifndef ASYNCREP_RESCUE_H
#define ASYNCREP_RESCUE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "guard.h"

struct rescue_opts {
	const struct config_primary *cfg;	/* paths already re-rooted */
	const struct auth *auth;
	uint64_t timeout_ns;		/* no standby call for this long: fail */
	uint64_t settle_ns;		/* wait this long before any read */
	const char *status_file;	/* progress for cluster monitors */
	const sigset_t *sigs;		/* blocked; any of them stops */
	/* --standby: the standbys to complete (valid ids); none: the
	 * primary's standbys key, else its ack files */
	const char *const *standbys;
	size_t nstandbys;
	int any;			/* the first to confirm completes */
	/* --metrics-listen (never the primary's own metrics_listen: that
	 * address is on the failed host); NULL: no metrics */
	const struct config_addr *metrics_listen;
};

int rescue_run(const struct rescue_opts *o, char *err, size_t errlen);

/* Write "STATE detail" to file atomically (for monitors); errors are
 * logged only: progress reporting must not stop a rescue. */
void rescue_status(const char *file, const char *state, const char *detail);

/* The storage watchdog's handler for a rescue (guard.h), from before the
 * configuration is read: logs what hung, makes "failed storage hung ..."
 * the last word in status_file (NULL: none) and exits 17. */
void rescue_storage_hung(void *status_file, const struct guard_expiry *e);

/* The last word in file: no rescue_status after it changes it (for the
 * watchdog's verdict, from another thread). */
void rescue_status_final(const char *file, const char *state,
    const char *detail);

#endif
