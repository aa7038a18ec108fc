/*
 * watcher-int.h: what the two halves of the watcher share, and nothing
 * outside them includes: struct watcher, and the reporting and path
 * helpers of watcher.c that the poll mode (watcher-scan.c) calls.
 *
 * watcher.c owns the inotify mode, the interface of watcher.h and every
 * field below but the scan's; watcher-scan.c owns struct watcher_scan.
 * Everything runs on the caller's thread: no locking.
 */
#ifndef ASYNCREP_WATCHER_INT_H
#define ASYNCREP_WATCHER_INT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "exclude.h"
#include "limit.h"
#include "watcher.h"

#define WATCHER_SLOTS 64		/* files debounced at once */
#define WATCHER_DEPTH_MAX 2048		/* PATH_MAX / 2 levels */

/* A watched directory; the root has no parent and an empty name. */
struct watcher_dir {
	int wd;
	size_t namelen;
	char *name;
	struct watcher_dir *parent;
	struct watcher_dir *child;	/* first child */
	struct watcher_dir *next;	/* siblings */
	struct watcher_dir *prev;
};

/* A file whose content events are being debounced. */
struct watcher_slot {
	int used;
	int dirty;		/* a change not reported yet */
	uint64_t last_ns;	/* last report (or creation) */
	struct watcher_dir *dir;
	size_t namelen;
	char name[NAME_MAX + 1];
};

struct watcher_scan_dir;

/* Poll mode: what the last scan saw of every directory. */
struct watcher_scan {
	struct watcher_scan_dir *tab;	/* by key, linear probing */
	size_t tabcap;
	size_t ndirs;
	uint32_t gen;			/* the scan under way */
	uint64_t interval_ns;		/* between two scans */
	uint64_t next_ns;		/* CLOCK_MONOTONIC of the next scan */
};

struct watcher {
	char *root;		/* without trailing '/'; "" for "/" */
	size_t rootlen;
	char *skip_rel;		/* skip_dir relative to root, or NULL */
	size_t skip_len;
	const struct exclude *x;
	int mode;		/* enum watcher_mode */
	int live;		/* counted in watcher_live */
	watcher_cb *cb;
	void *cb_arg;
	struct watcher_stats st;

	/* inotify */
	int fd;
	int dead;		/* root deleted, moved or unmounted */
	int need_rebuild;
	struct watcher_dir *top;
	struct watcher_dir **tab;	/* wd -> node, linear probing */
	size_t tabcap;
	size_t ndirs;
	unsigned char *buf;
	struct watcher_slot slots[WATCHER_SLOTS];
	int add_failed;		/* logged once: out of watches */

	/* a MOVED_FROM waiting for its MOVED_TO */
	int mv_pending;
	uint32_t mv_cookie;
	int mv_isdir;
	int mv_excluded;
	struct watcher_dir *mv_dir;
	size_t mv_namelen;
	char mv_name[NAME_MAX + 1];

	/* last reported change, to drop an identical repeat */
	int last_op;
	size_t last_len;
	char last[LIMIT_PATH_MAX + 1];

	/* path scratch: absolute path being walked, and event paths */
	char abs[PATH_MAX];
	char p1[LIMIT_PATH_MAX + 1];
	char p2[LIMIT_PATH_MAX + 1];

	struct watcher_scan scan;	/* poll mode */
};

/* --- watcher.c, for both modes --- */

/* 1 if rel (len bytes) is skip_dir or beneath it. */
int watcher_skipped(struct watcher *w, const char *rel, size_t len);
/* Hand one change to the callback (op: enum spool_op), dropping a
 * repeat of the last MODIFY or ATTRIB of the same batch. */
void watcher_report(struct watcher *w, int op, const char *path, size_t len,
    const char *path2, size_t len2);
/* The change that a new entry of type (enum walk_type) at rel is. */
void watcher_report_ent(struct watcher *w, int type, const char *rel,
    size_t len);
/* Absolute path of rel (len bytes) into w->abs; -1 if too long. */
int watcher_abs(struct watcher *w, const char *rel, size_t len);
/* poll(2) on fd (-1: none, only the wait) for up to ns (UINT64_MAX:
 * for ever); poll's return. */
int watcher_wait(int fd, uint64_t ns);

/* --- watcher-scan.c: poll mode --- */

/* The first scan, which reports nothing: what is there is the start. */
int watcher_scan_start(struct watcher *w, uint64_t interval_ns);
/* Until deadline (CLOCK_MONOTONIC ns): scan when one is due, and report
 * the differences from the last scan. */
int watcher_scan_poll(struct watcher *w, uint64_t deadline);
void watcher_scan_release(struct watcher *w);

#endif
