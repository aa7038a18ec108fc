/*
 * gen.h: the generation id of a primary incarnation, kept in spool_dir.
 *
 * A generation is 32 lowercase hex characters from getrandom(), created
 * the first time a primary starts on an empty spool directory and kept
 * (durably) for as long as that spool lives. The standby records the
 * generation it follows; a rescue closes it.
 */
#ifndef ASYNCREP_GEN_H
#define ASYNCREP_GEN_H

#include <stddef.h>

#include "limit.h"

/*
 * Open (creating if needed) the spool directory, take its exclusive lock
 * (a second primary on the same spool is refused with -AR_ESTATE), and
 * load or create the generation. *lockfd stays open while the lock is
 * needed.
 */
int gen_open(const char *spool_dir, int *lockfd,
    char generation[LIMIT_GEN_LEN + 1], char *err, size_t errlen);

/*
 * gen_open in two steps, for a caller that decides between them (watch:
 * source.h, which must know whether the spool is fresh before a
 * generation makes it look used). gen_lock_dir creates and opens the
 * directory (*dirfd) and takes its lock (*lockfd), refusing a rescued
 * spool with -AR_EFENCED; gen_exists says whether it holds a generation;
 * gen_load reads the generation, or creates it when there is none.
 */
int gen_lock_dir(const char *spool_dir, int *dirfd, int *lockfd,
    char *err, size_t errlen);
int gen_exists(int dirfd);
int gen_load(int dirfd, const char *spool_dir,
    char generation[LIMIT_GEN_LEN + 1], char *err, size_t errlen);

/* The marker a rescue leaves in a spool whose generation it closed. */
#define GEN_RESCUED_FILE "rescued"
/* The standbys that confirmed to a rescue, as each did (rescue.c). */
#define GEN_CONFIRMED_FILE "rescue-confirmed"

/*
 * Read the generation of a spool without creating or locking anything
 * (a rescue, on the failed primary's storage). -AR_ESTORAGE if the
 * directory or the file cannot be read, -AR_ESTATE if it is corrupt.
 */
int gen_read(const char *spool_dir, char generation[LIMIT_GEN_LEN + 1],
    char *err, size_t errlen);

/* Close the spool's generation: write the rescue's report as the
 * marker, durably. */
int gen_fence(const char *spool_dir, const char *report, size_t len);

/* 1 and the marker's text (NUL-terminated) if the spool was rescued. */
int gen_fenced(const char *spool_dir, char *buf, size_t buflen);

/*
 * Start a new generation on spool_dir (asyncrep watch --reinit): under
 * the spool's lock, remove the journal, the acknowledgements, the
 * rescue's marker and the record of the tree served, and write a new
 * generation id.
 */
int gen_reinit(const char *spool_dir, char *err, size_t errlen);

/* 1 if s is a generation file's line: an id (limit_gen_valid) ended by
 * NUL or '\n'. */
int gen_valid(const char *s);

#endif
