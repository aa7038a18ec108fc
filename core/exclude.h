/*
 * exclude.h: rsync-style exclude patterns, one engine for the watcher,
 * the manifest and the standby's compare.
 *
 * A pattern with a '/' other than a trailing one is matched against the
 * whole relative path (a leading '/' anchors it at the root); otherwise
 * against the last component. A trailing '/' matches directories only.
 * '*' and '?' stop at '/', '**' crosses it, '[...]' is a class.
 */
#ifndef ASYNCREP_EXCLUDE_H
#define ASYNCREP_EXCLUDE_H

#include <stddef.h>

#define EXCLUDE_MAX 256		/* patterns */

struct exclude;

int exclude_new(struct exclude **out);
/* Add one pattern; -AR_EUSAGE (with a message) if empty or too long. */
int exclude_add(struct exclude *x, const char *pattern, char *err,
    size_t errlen);
/* Add a comma- or newline-separated list (a config value). */
int exclude_add_list(struct exclude *x, const char *list, char *err,
    size_t errlen);
void exclude_free(struct exclude *x);
/* 1 if x holds no pattern (NULL too): only our temp files match. */
int exclude_empty(const struct exclude *x);
/* 1 if a pattern of x is matched against whole paths (an inner '/',
 * '**' or a leading '/'): then renaming a directory can change what is
 * excluded beneath it. */
int exclude_has_paths(const struct exclude *x);

/* 1 if path (relative, len bytes) is excluded; is_dir tells its type.
 * Our temp files (FS_TMP_PREFIX) are always excluded. x may be NULL. */
int exclude_match(const struct exclude *x, const char *path, size_t len,
    int is_dir);

#endif
