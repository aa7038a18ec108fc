/*
 * watcher.h: change detection on the primary's tree.
 *
 * This module owns the process's one inotify instance (the kernel's API,
 * read directly: watcher.c says why not libinotifytools, and
 * test-watcher.c shows the library's defects) and the poll mode
 * (watcher-scan.c), for writers inotify cannot see. It turns what either
 * sees into spool-level changes (spool.h's ops) with paths relative to
 * the root: it keeps its own map of watched directories so renamed
 * subtrees keep their paths, lists new directories, debounces busy
 * writers, and answers IN_Q_OVERFLOW with a rebuild and a rescan. Used
 * from one thread only.
 */
#ifndef ASYNCREP_WATCHER_H
#define ASYNCREP_WATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "exclude.h"

struct watcher;

/* One change: op is enum spool_op; path2 only for SPOOL_RENAME. */
typedef void watcher_cb(void *arg, int op, const char *path, size_t len,
    const char *path2, size_t len2);

enum watcher_mode {
	WATCHER_INOTIFY = 0,
	WATCHER_POLL = 1,	/* periodic metadata scan, for NFS writers */
};

struct watcher_opts {
	const char *root;		/* data_dir, absolute */
	int mode;			/* enum watcher_mode */
	uint64_t poll_interval_ns;	/* poll mode, default 1s */
	const struct exclude *exclude;	/* may be NULL */
	const char *skip_dir;		/* absolute path never watched (the
					 * spool, if inside the tree) */
	unsigned rebuild_threshold;	/* rebuild after this many leaked
					 * watches, default 4096 */
};

int watcher_new(const struct watcher_opts *opts, watcher_cb *cb, void *arg,
    struct watcher **out, char *err, size_t errlen);
/* Wait up to timeout_ms for events and report them through cb. */
int watcher_poll(struct watcher *w, int timeout_ms);
void watcher_free(struct watcher *w);

struct watcher_stats {
	uint64_t watches;	/* directories watched now */
	uint64_t events;	/* kernel events read */
	uint64_t overflows;	/* IN_Q_OVERFLOW seen */
	uint64_t rebuilds;	/* instance rebuilt */
	int mode;
};
void watcher_get_stats(struct watcher *w, struct watcher_stats *st);

#endif
