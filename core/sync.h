/*
 * sync.h: the standby's one-shot replication (claim 4: the increment).
 *
 * It fetches the primary's manifest into a spool file in state_dir,
 * merges it one directory at a time with the local tree, and transfers
 * only what differs: small and new files whole, in batches made durable
 * together; large changed files as librsync deltas. Everything written
 * lands in a temp file beside its target, verified against the primary's
 * size and SHA-256, made durable, and renamed into place.
 *
 * Before a compare of the whole tree deletes anything, prune.c counts
 * what it would delete: more than max_delete, and nothing is deleted
 * (-AR_EMAXDELETE) unless force_delete. Batches of changes and the
 * compares of subtrees they lead to are not counted (prune.c says
 * why).
 *
 * sync.c runs it; fetch.c receives, apply.c applies a batch of changes,
 * follow.c follows, prune.c guards deletions (syncer.h, private, is what
 * they share); state_dir is state.c's.
 */
#ifndef ASYNCREP_SYNC_H
#define ASYNCREP_SYNC_H

#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include "auth.h"
#include "config.h"

struct sync_opts {
	const struct config_standby *cfg;
	const struct auth *auth;
	int dry_run;		/* report, change nothing */
	FILE *itemize;		/* per-change lines (rsync's -i), or NULL */
	int force_delete;	/* delete past max_delete (--force-delete) */
	int progress;		/* one-shot: the progress line (--progress) */
	int checksum;		/* compares of the whole tree compare the
				 * content of files equal in size and mtime
				 * (--checksum) */
};

struct sync_stats {
	uint64_t entries;	/* manifest entries compared */
	uint64_t files_whole;	/* files received whole */
	uint64_t files_delta;	/* files rebuilt from a delta */
	uint64_t files_appended; /* files appended to in place */
	uint64_t files_blocks;	/* files rebuilt from a clone and their
				 * changed blocks */
	uint64_t files_failed;	/* files not replicated (partial) */
	uint64_t dirs_created;
	uint64_t links_set;
	uint64_t specials_set;	/* FIFOs, sockets and devices made */
	uint64_t deleted;
	uint64_t attrs_set;	/* mode, owner or mtime fixed only */
	uint64_t skipped;	/* entries of the primary not replicated: they
				 * collide with names excluded here */
	uint64_t file_bytes;	/* bytes of file content written */
	uint64_t net_sent;	/* bytes on the wire, both ways */
	uint64_t net_received;
	char generation[33];	/* the primary's generation */
};

/* Returns 0, -AR_EPARTIAL when some files could not be replicated, or
 * the error that stopped the run; *msg explains the last error. */
int sync_run(const struct sync_opts *o, struct sync_stats *st, char *msg,
    size_t msglen);

/*
 * Follow the primary until *stop becomes non-zero: compare once when
 * there is no saved position for its generation, then apply batches of
 * changes, saving the position after each is durable; reconnect with
 * exponential backoff and jitter. Returns 0 on a stop, or the error
 * that retrying cannot mend (authentication, version, state, fencing).
 */
int sync_follow(const struct sync_opts *o, struct sync_stats *st,
    volatile sig_atomic_t *stop, char *msg, size_t msglen);

#endif
