/*
 * state.h: the standby's state_dir; this module is its only owner.
 *
 * What it holds, each file written durably (temp file, fsync, rename,
 * fsync of the directory):
 *   lock        flock'ed by the one asyncrep sync that uses the directory
 *   generation  the primary generation this standby follows, one line
 *   position    "GENERATION SEQ\n": the last change applied and durable
 *   closed      generations a rescue closed, one a line (the newest 64)
 *   complete    "GENERATION SEQ\n": the last generation a rescue closed
 *               while this standby held its final position SEQ
 *   skipped     "COUNT PATH\n": entries of the primary not replicated as
 *               they collide with names excluded here, since the last
 *               whole compare, and the last of them (escaped)
 * and two scratch files, a stored manifest and a stored batch of changes,
 * replayed while other requests run on the same connection.
 *
 * The sync (read-write, locked) opens it with state_open; asyncrep status
 * reads it with state_read, without the lock and without writing.
 */
#ifndef ASYNCREP_STATE_H
#define ASYNCREP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "config.h"
#include "wire.h"

/* The state_dir of a running sync. */
struct state {
	int dirfd;		/* state_dir, -1 until opened */
	int lockfd;		/* holds the exclusive flock, or -1 */
	int blocksfd;		/* the block store (blocks/), or -1 */
	int inplacefd;		/* in-place journals (inplace/), or -1 */
	struct blocks_mem *blocksmem; /* its entries kept, or NULL */
};

/* The scratch files of state_dir: answers stored to be replayed. */
enum state_scratch {
	STATE_SCRATCH_MANIFEST,	/* the manifest being merged */
	STATE_SCRATCH_CHANGES,	/* the batch of changes being applied */
};

/* The longest path the skipped file keeps (escaped; cut beyond). */
#define STATE_SKIPPED_PATH_MAX 1024

/* What asyncrep status reports of a state_dir. */
struct state_info {
	char generation[WIRE_GEN_LEN + 1]; /* followed; "" if none */
	int have_position;	/* position and position_gen are set */
	char position_gen[WIRE_GEN_LEN + 1];
	uint64_t position;	/* last applied change of position_gen */
	int64_t position_time;	/* mtime of the position, 0 if none */
	int running;		/* a sync holds the lock */
	int complete;		/* a rescue closed generation, at position
				 * complete_seq, which the standby holds */
	uint64_t complete_seq;
	uint64_t skipped;	/* see the skipped file */
	uint64_t inplace_pending;	/* journals in inplace/ */
	char skipped_last[STATE_SKIPPED_PATH_MAX + 1];
};

/* In-place updates whose journal is still in state_dir (journal.h): a
 * running sync completes or drops them before anything else. */
uint64_t state_inplace_pending(const struct state *st);

/* The state of a closed struct state (nothing to release). */
void state_init(struct state *st);

/*
 * Create (0700) and open dir and take its lock. -AR_ESTATE, explained in
 * err, when it cannot be made or another asyncrep sync holds it.
 */
int state_open(struct state *st, const char *dir, char *err,
    size_t errlen);
void state_release(struct state *st);

/* 1 if a rescue closed gen, as recorded in state_dir (else 0). */
int state_gen_closed(const struct state *st, const char *gen);
/* Record that a rescue closed gen (the oldest are forgotten) while this
 * standby held its final position seq. */
int state_gen_close(struct state *st, const char *gen, uint64_t seq,
    char *err, size_t errlen);
/*
 * 1, and the generation and its final position, if the standby is
 * complete: the generation it follows was closed by a rescue at the
 * position it holds, and nothing was applied since. Else 0.
 */
int state_complete(const struct state *st, char gen[WIRE_GEN_LEN + 1],
    uint64_t *seq);
/* Record gen as the generation followed (no write if it already is). */
int state_gen_follow(struct state *st, const char *gen, char *err,
    size_t errlen);

/* Save seq as the last change of gen applied and durable. */
int state_position_save(struct state *st, const char *gen, uint64_t seq,
    char *err, size_t errlen);
/* 0 and *seq when a position is saved for gen; -AR_ESTATE when none is
 * (none saved, another generation's, or unreadable): compare all. */
int state_position_load(const struct state *st, const char *gen,
    uint64_t *seq);

/* Save the skipped count and the last path skipped (escaped). */
int state_skipped_save(struct state *st, uint64_t count, const char *last,
    char *err, size_t errlen);
/* The saved skipped count (0 if none); last (STATE_SKIPPED_PATH_MAX + 1
 * bytes, or NULL) gets the path. */
uint64_t state_skipped_load(const struct state *st, char *last);

/* The scratch file which, truncated and unlinked (it lives as long as
 * *fd), open read-write in *fd. */
int state_scratch(const struct state *st, enum state_scratch which,
    int *fd, char *err, size_t errlen);

/*
 * Read dir without locking or writing anything (asyncrep status). A
 * missing or unreadable file leaves its fields empty; -AR_ESTATE (info
 * all empty) when dir cannot be opened.
 */
int state_read(const char *dir, struct state_info *info);

/* The name this standby gives the primary: standby_id, or the host
 * name, with anything outside [A-Za-z0-9._-] made '_'. */
void state_standby_id(const struct config_standby *cfg, char *out,
    size_t outlen);

#endif
