/*
 * changes.h: coalescing of spool records into one batch for a standby.
 *
 * Records since the standby's position become: the renames, in order,
 * then each touched path once (in order of first touch), each with the
 * flag that its whole subtree must be compared. A rename rewrites the
 * touched paths beneath its source, so a file written under a directory
 * that is then renamed is fetched under its new name. A path's parent is
 * touched with it, since its mtime changed too. A per-path hash map does
 * the coalescing; nothing is sorted.
 */
#ifndef ASYNCREP_CHANGES_H
#define ASYNCREP_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct changes;

/* max_paths bounds the touched paths (and renames) of one batch. */
int changes_new(size_t max_paths, struct changes **out);
void changes_free(struct changes *c);
void changes_reset(struct changes *c);

/* 1 while one more record fits (each adds at most two paths and a
 * rename); else release what is there and start again from it. */
int changes_room(const struct changes *c);
/* Take one record, which must fit (changes_room): 0 or -AR_ENOMEM. */
int changes_add(struct changes *c, const struct spool_rec *r);

/* A RESCAN "" was taken: the standby must compare the whole tree. */
int changes_full(const struct changes *c);
/* Renames and touched paths held. */
size_t changes_count(const struct changes *c);

/* The i-th rename (i < nrenames), or the i-th touched path. */
size_t changes_nrenames(const struct changes *c);
void changes_rename(const struct changes *c, size_t i, const char **from,
    size_t *flen, const char **to, size_t *tlen);
size_t changes_npaths(const struct changes *c);
/* Returns 0 for a path that is no longer live (rewritten away). */
int changes_path(const struct changes *c, size_t i, const char **path,
    size_t *len, int *rescan);
/* 1 when the batch touches path (len bytes) itself, as a live path. */
int changes_has(const struct changes *c, const char *path, size_t len);

#endif
