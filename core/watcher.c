/*
 * watcher.c: change detection on the primary's tree by inotify, and the
 * interface of watcher.h for both modes (the poll mode's scans are
 * watcher-scan.c's).
 *
 * Why the kernel's inotify API and not libinotifytools' event and path
 * functions (LIBRARIES.md allows this where a defect cannot be worked
 * around; test-watcher.c reproduces each defect against the library):
 *
 *  - inotifytools_next_event(timeout) takes whole seconds, treats 0 as
 *    "block forever", and keeps events it has read in a hidden static
 *    buffer, so a caller can neither wait 200 ms nor tell whether a call
 *    would block: the queue cannot be drained before a group commit.
 *    next_events(t, n > 1) also spins in a FIONREAD loop.
 *  - its path map goes stale: inotifytools_replace_filename() deletes
 *    and re-inserts nodes of the tree it is walking and skips some, so
 *    deep renamed subtrees keep their old prefix; set_filename_by_*()
 *    changes a key in place and breaks the filename tree (a later
 *    remove then frees a node still linked: use after free).
 *  - a watch removed by the kernel (directory deleted) cannot be removed
 *    from its map (inotify_rm_watch fails, the entry leaks), and a new
 *    directory at a leaked entry's path is then missing from the
 *    filename tree, so wd_from_filename() and replace_filename() see
 *    the dead watch instead.
 *  - watch_file() does not return the watch descriptor.
 *
 * So this module reads the inotify fd itself (non-blocking, CLOEXEC,
 * millisecond waits), and keeps its own map: one node per watched
 * directory holding its parent and its name, so a path is rebuilt from
 * the node up and a directory rename, however deep, is one relink done
 * in event order (events queued before the rename resolve to the old
 * path, later ones to the new). Nodes are freed on IN_IGNORED, so
 * nothing leaks and no rebuild is needed for churn; a rebuild remains
 * for IN_Q_OVERFLOW.
 *
 * Everything runs on the caller's thread; there is no locking.
 *
 * Content events: IN_CLOSE_WRITE reports a finished write at once. A
 * writer that keeps the file open (a log, a database) or writes through
 * mmap and msync never closes it, so IN_MODIFY is watched too; to keep
 * a busy writer from flooding the spool, IN_MODIFY is debounced per file
 * (the first reports at once, further ones at most once per window, the
 * last one always reported at the window's end). A new file is reported
 * when it is closed, or at the window's end when it is not (a hard link,
 * an open without writes). inotify cannot see writes made through
 * another NFS client or an mmap never synced: that is what poll mode is
 * for.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "log.h"
#include "spool.h"
#include "util.h"
#include "walk.h"
#include "watcher-int.h"

#define WATCHER_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | \
	IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
	IN_MOVE_SELF | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_ONLYDIR)

#define WATCHER_BUF (64 * 1024)		/* one read of the queue */
#define WATCHER_READS_MAX 16		/* reads per watcher_poll: the
					 * caller regains control under a
					 * flood */
#define WATCHER_WINDOW_NS 100000000ull	/* IN_MODIFY debounce window */
#define WATCHER_MOVE_WAIT_MS 5		/* wait for a MOVED_TO */
#define WATCHER_POLL_DEFAULT_NS 1000000000ull
#define WATCHER_REBUILD_DEFAULT 4096
#define WATCHER_PROC_QUEUED "/proc/sys/fs/inotify/max_queued_events"
#define WATCHER_PROC_WATCHES "/proc/sys/fs/inotify/max_user_watches"

/* libinotifytools kept process-global state; this module keeps the rule
 * of one instance so a process cannot exhaust max_user_instances (128
 * per user) by accident, and so stats are the process's. */
static int watcher_live;

/* Read a small integer from /proc; -1 if it cannot be read. */
static long
watcher_proc_long(const char *path)
{
	char buf[64], *end;
	size_t len;
	long v;

	if (fs_read_small(AT_FDCWD, path, buf, sizeof buf, &len) != 0)
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf)
		return -1;
	return v;
}

/* ------------------------------------------------------------------ */
/* reporting                                                           */
/* ------------------------------------------------------------------ */

int
watcher_skipped(struct watcher *w, const char *rel, size_t len)
{
	if (w->skip_rel == NULL || len < w->skip_len ||
	    memcmp(rel, w->skip_rel, w->skip_len) != 0)
		return 0;
	return len == w->skip_len || rel[w->skip_len] == '/';
}

void
watcher_report(struct watcher *w, int op, const char *path, size_t len,
    const char *path2, size_t len2)
{
	assert(op >= SPOOL_MODIFY && op <= SPOOL_RESCAN);
	assert(len <= LIMIT_PATH_MAX && len2 <= LIMIT_PATH_MAX);
	assert((op == SPOOL_RENAME) == (len2 > 0));
	if (op != SPOOL_RESCAN && watcher_skipped(w, path, len))
		return;
	/* A repeat of the last MODIFY or ATTRIB of the same read batch adds
	 * nothing: both changes happened before the batch was read, so
	 * whatever the consumer sends after the first report holds both.
	 * Across batches a repeat is a new change and always goes out. */
	if ((op == SPOOL_MODIFY || op == SPOOL_ATTRIB) && op == w->last_op &&
	    len == w->last_len && memcmp(path, w->last, len) == 0)
		return;
	w->last_op = op;
	if (op == SPOOL_MODIFY || op == SPOOL_ATTRIB) {
		memcpy(w->last, path, len);
		w->last_len = len;
	} else
		w->last_op = 0;
	w->cb(w->cb_arg, op, path, len, path2, len2);
}

/* ------------------------------------------------------------------ */
/* the directory map                                                   */
/* ------------------------------------------------------------------ */

static size_t
watcher_tab_pos(struct watcher *w, int wd)
{
	return ((size_t)(unsigned)wd * 0x9e3779b1u) & (w->tabcap - 1);
}

static struct watcher_dir *
watcher_find(struct watcher *w, int wd)
{
	size_t i;

	if (w->tabcap == 0)
		return NULL;
	for (i = watcher_tab_pos(w, wd); w->tab[i] != NULL;
	    i = (i + 1) & (w->tabcap - 1)) {
		if (w->tab[i]->wd == wd)
			return w->tab[i];
	}
	return NULL;
}

static int
watcher_tab_insert(struct watcher *w, struct watcher_dir *d)
{
	struct watcher_dir **old;
	size_t oldcap, i, j;

	if ((w->ndirs + 1) * 2 > w->tabcap) {
		old = w->tab;
		oldcap = w->tabcap;
		w->tabcap = oldcap == 0 ? 256 : oldcap * 2;
		w->tab = calloc(w->tabcap, sizeof *w->tab);
		if (w->tab == NULL) {
			w->tab = old;
			w->tabcap = oldcap;
			return -AR_ENOMEM;
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i] == NULL)
				continue;
			for (j = watcher_tab_pos(w, old[i]->wd);
			    w->tab[j] != NULL; j = (j + 1) & (w->tabcap - 1))
				;
			w->tab[j] = old[i];
		}
		free(old);
	}
	for (i = watcher_tab_pos(w, d->wd); w->tab[i] != NULL;
	    i = (i + 1) & (w->tabcap - 1))
		;
	w->tab[i] = d;
	w->ndirs++;
	/* Half empty at least: every probe ends at a free slot. */
	assert(w->ndirs * 2 <= w->tabcap);
	return 0;
}

/* Backward-shift deletion keeps probe chains whole without tombstones. */
static void
watcher_tab_remove(struct watcher *w, int wd)
{
	size_t i, j, k, mask = w->tabcap - 1;

	for (i = watcher_tab_pos(w, wd); w->tab[i] != NULL; i = (i + 1) & mask)
		if (w->tab[i]->wd == wd)
			break;
	if (w->tab[i] == NULL)
		return;
	w->tab[i] = NULL;
	w->ndirs--;
	for (j = (i + 1) & mask; w->tab[j] != NULL; j = (j + 1) & mask) {
		k = watcher_tab_pos(w, w->tab[j]->wd);
		/* Move j back to i unless its home lies cyclically in
		 * (i, j]. */
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			w->tab[i] = w->tab[j];
			w->tab[j] = NULL;
			i = j;
		}
	}
}

static void
watcher_link(struct watcher_dir *parent, struct watcher_dir *d)
{
	/* A node is in one list at a time: unlinked before it moves. */
	assert(d->parent == NULL && d->next == NULL && d->prev == NULL);
	d->parent = parent;
	d->prev = NULL;
	d->next = parent->child;
	if (parent->child != NULL)
		parent->child->prev = d;
	parent->child = d;
}

static void
watcher_unlink(struct watcher_dir *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else if (d->parent != NULL)
		d->parent->child = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->parent = d->next = d->prev = NULL;
}

static struct watcher_dir *
watcher_child(struct watcher_dir *parent, const char *name, size_t len)
{
	struct watcher_dir *c;

	for (c = parent->child; c != NULL; c = c->next)
		if (c->namelen == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static int
watcher_set_name(struct watcher_dir *d, const char *name, size_t len)
{
	char *p;

	p = malloc(len + 1);
	if (p == NULL)
		return -AR_ENOMEM;
	memcpy(p, name, len);
	p[len] = '\0';
	free(d->name);
	d->name = p;
	d->namelen = len;
	return 0;
}

static void watcher_slot_drop_dir(struct watcher *w, struct watcher_dir *d);

/* Free d and everything below it; with rm, also drop the kernel's
 * watches (for a subtree that left the tree but still exists). */
static void
watcher_free_dir(struct watcher *w, struct watcher_dir *d, int rm)
{
	while (d->child != NULL)
		watcher_free_dir(w, d->child, rm);
	if (rm && w->fd != -1)
		inotify_rm_watch(w->fd, d->wd);
	watcher_slot_drop_dir(w, d);
	if (w->mv_pending && w->mv_dir == d)
		w->mv_pending = 0;
	watcher_unlink(d);
	watcher_tab_remove(w, d->wd);
	if (w->top == d)
		w->top = NULL;
	free(d->name);
	free(d);
}

/*
 * The relative path of name inside d (name may be empty: d's own path)
 * into out. Returns the length, or SIZE_MAX if it exceeds LIMIT_PATH_MAX
 * (such a path cannot be replicated anyway).
 */
static size_t
watcher_path(struct watcher_dir *d, const char *name, size_t namelen,
    char *out)
{
	struct watcher_dir *p;
	size_t len = namelen, pos;

	for (p = d; p->parent != NULL; p = p->parent) {
		len += p->namelen + 1;
		if (len > LIMIT_PATH_MAX)
			return SIZE_MAX;
	}
	if (namelen == 0 && len > 0)
		len--;		/* no trailing '/' */
	assert(len <= LIMIT_PATH_MAX);
	pos = len;
	if (namelen > 0) {
		pos -= namelen;
		memcpy(out + pos, name, namelen);
	}
	for (p = d; p->parent != NULL; p = p->parent) {
		if (pos < len)
			out[--pos] = '/';
		pos -= p->namelen;
		memcpy(out + pos, p->name, p->namelen);
	}
	assert(pos == 0);
	out[len] = '\0';
	return len;
}

int
watcher_abs(struct watcher *w, const char *rel, size_t len)
{
	int n;

	if (len == 0)
		n = snprintf(w->abs, sizeof w->abs, "%s/", w->root);
	else
		n = snprintf(w->abs, sizeof w->abs, "%s/%.*s", w->root,
		    (int)len, rel);
	return n < 0 || (size_t)n >= sizeof w->abs ? -AR_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* debounced content events                                            */
/* ------------------------------------------------------------------ */

static struct watcher_slot *
watcher_slot_find(struct watcher *w, struct watcher_dir *d, const char *name,
    size_t len)
{
	struct watcher_slot *s;
	size_t i;

	for (i = 0; i < WATCHER_SLOTS; i++) {
		s = &w->slots[i];
		if (s->used && s->dir == d && s->namelen == len &&
		    memcmp(s->name, name, len) == 0)
			return s;
	}
	return NULL;
}

static struct watcher_slot *
watcher_slot_new(struct watcher *w, struct watcher_dir *d, const char *name,
    size_t len)
{
	struct watcher_slot *s;
	size_t i;

	if (len > NAME_MAX)
		return NULL;
	for (i = 0; i < WATCHER_SLOTS; i++) {
		s = &w->slots[i];
		if (s->used)
			continue;
		s->used = 1;
		s->dirty = 0;
		s->dir = d;
		s->namelen = len;
		memcpy(s->name, name, len);
		s->name[len] = '\0';
		return s;
	}
	return NULL;
}

static void
watcher_slot_emit(struct watcher *w, struct watcher_slot *s)
{
	size_t len;

	len = watcher_path(s->dir, s->name, s->namelen, w->p2);
	if (len != SIZE_MAX)
		watcher_report(w, SPOOL_MODIFY, w->p2, len, NULL, 0);
}

static void
watcher_slot_drop_dir(struct watcher *w, struct watcher_dir *d)
{
	size_t i;

	for (i = 0; i < WATCHER_SLOTS; i++)
		if (w->slots[i].used && w->slots[i].dir == d)
			w->slots[i].used = 0;
}

/* Report what is dirty and due; free slots idle for a window. */
static void
watcher_slot_expire(struct watcher *w, uint64_t now, int all)
{
	struct watcher_slot *s;
	size_t i;

	for (i = 0; i < WATCHER_SLOTS; i++) {
		s = &w->slots[i];
		if (!s->used)
			continue;
		if (!all && now - s->last_ns < WATCHER_WINDOW_NS)
			continue;
		if (s->dirty)
			watcher_slot_emit(w, s);
		s->used = 0;
	}
}

/* Nanoseconds until the next dirty slot is due; UINT64_MAX if none. */
static uint64_t
watcher_slot_due(struct watcher *w, uint64_t now)
{
	uint64_t due = UINT64_MAX, t;
	size_t i;

	for (i = 0; i < WATCHER_SLOTS; i++) {
		if (!w->slots[i].used)
			continue;
		t = w->slots[i].last_ns + WATCHER_WINDOW_NS;
		t = t > now ? t - now : 0;
		if (t < due)
			due = t;
	}
	return due;
}

/* ------------------------------------------------------------------ */
/* adding watches                                                      */
/* ------------------------------------------------------------------ */

void
watcher_report_ent(struct watcher *w, int type, const char *rel, size_t len)
{
	if (type == WALK_FILE)
		watcher_report(w, SPOOL_MODIFY, rel, len, NULL, 0);
	else if (type == WALK_LINK)
		watcher_report(w, SPOOL_SYMLINK, rel, len, NULL, 0);
	else if (type == WALK_DIR)
		watcher_report(w, SPOOL_MKDIR, rel, len, NULL, 0);
	else
		/* A special file: its state is what the record names. */
		watcher_report(w, SPOOL_ATTRIB, rel, len, NULL, 0);
}

/*
 * Watch the directory at rel (a child of parent named name; parent NULL
 * for the root), then list it and do the same for each subdirectory.
 * The watch comes first so nothing created meanwhile is missed: what
 * appears after it raises events, what was there before is in the
 * listing. With report, every entry found is reported (a new directory
 * may already hold files: mkdir -p a/b && echo x > a/b/f). A directory
 * that vanished or turned into something else is no error.
 */
static int
watcher_add_dir(struct watcher *w, struct watcher_dir *parent,
    const char *name, size_t namelen, int report, int depth)
{
	struct watcher_dir *d, *old;
	struct walk_dir list;
	struct walk_ent *e;
	char rel[LIMIT_PATH_MAX + 1], esc[LOG_ESC_MAX];
	size_t len, i, clen;
	int wd, fd, r;

	if (parent == NULL)
		len = 0;
	else {
		len = watcher_path(parent, name, namelen, rel);
		if (len == SIZE_MAX)
			return 0;
		if (watcher_skipped(w, rel, len))
			return 0;
	}
	if (depth > WATCHER_DEPTH_MAX || watcher_abs(w, rel, len) != 0)
		return 0;
	wd = inotify_add_watch(w->fd, w->abs, WATCHER_MASK);
	if (wd < 0) {
		if (errno == ENOSPC || errno == ENOMEM) {
			if (!w->add_failed)
				log_error("watch %s: %s (raise "
				    "fs.inotify.max_user_watches, or use "
				    "watch_mode = poll)", log_escape(w->abs,
				    strlen(w->abs), esc, sizeof esc),
				    strerror(errno));
			w->add_failed = 1;
			return parent == NULL ? -AR_EIO : 0;
		}
		if (parent == NULL) {
			log_error("watch %s: %s", log_escape(w->abs,
			    strlen(w->abs), esc, sizeof esc), strerror(errno));
			return -AR_EIO;
		}
		return 0;
	}
	/* The kernel hands back the same wd for a directory already
	 * watched (seen twice in a race): move that node here. */
	old = watcher_find(w, wd);
	if (old != NULL) {
		if (old == w->top)
			return 0;
		watcher_unlink(old);
		if (watcher_set_name(old, name, namelen) != 0)
			return -AR_ENOMEM;
		watcher_link(parent, old);
		d = old;
	} else {
		d = calloc(1, sizeof *d);
		if (d == NULL)
			return -AR_ENOMEM;
		d->wd = wd;
		if (watcher_set_name(d, name, namelen) != 0 ||
		    watcher_tab_insert(w, d) != 0) {
			free(d->name);
			free(d);
			inotify_rm_watch(w->fd, wd);
			return -AR_ENOMEM;
		}
		if (parent != NULL)
			watcher_link(parent, d);
		else
			w->top = d;
	}

	fd = open(w->abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return 0;
	walk_dir_init(&list);
	/* Only types are needed here (inotify mode): readdir's d_type,
	 * not a stat per file, which on a cold cache reads every inode. */
	r = walk_list(fd, WALK_SKIP_TMP | WALK_TYPE_ONLY, &list);
	close(fd);
	if (r != 0) {
		walk_dir_release(&list);
		return r == -AR_ENOMEM ? r : 0;
	}
	for (i = 0; i < list.n; i++) {
		e = &list.ents[i];
		clen = watcher_path(d, e->name, e->namelen, rel);
		if (clen == SIZE_MAX ||
		    exclude_match(w->x, rel, clen, e->type == WALK_DIR) ||
		    watcher_skipped(w, rel, clen))
			continue;
		if (report)
			watcher_report_ent(w, e->type, rel, clen);
		if (e->type != WALK_DIR)
			continue;
		r = watcher_add_dir(w, d, e->name, e->namelen, report,
		    depth + 1);
		if (r != 0)
			break;
	}
	walk_dir_release(&list);
	return r;
}

/* Close the instance and watch the whole tree again. Events in the old
 * queue are lost with it, hence the rescan of everything. */
static int
watcher_rebuild(struct watcher *w)
{
	int r;

	watcher_slot_expire(w, 0, 1);
	w->mv_pending = 0;	/* the rescan covers it */
	if (w->top != NULL)
		watcher_free_dir(w, w->top, 0);
	if (w->fd != -1)
		close(w->fd);
	w->need_rebuild = 0;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd == -1) {
		log_error("inotify_init1: %s", strerror(errno));
		return -AR_EIO;
	}
	w->st.rebuilds++;
	w->add_failed = 0;
	r = watcher_add_dir(w, NULL, "", 0, 0, 0);
	w->st.watches = w->ndirs;
	watcher_report(w, SPOOL_RESCAN, "", 0, NULL, 0);
	log_info("watcher rebuilt: %zu directories watched", w->ndirs);
	return r;
}

/* ------------------------------------------------------------------ */
/* events                                                              */
/* ------------------------------------------------------------------ */

/* Type of rel now (lstat); 0 if gone. */
static int
watcher_type_of(struct watcher *w, const char *rel, size_t len)
{
	struct stat st;

	if (watcher_abs(w, rel, len) != 0 ||
	    fstatat(AT_FDCWD, w->abs, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (S_ISREG(st.st_mode))
		return WALK_FILE;
	if (S_ISLNK(st.st_mode))
		return WALK_LINK;
	if (S_ISDIR(st.st_mode))
		return WALK_DIR;
	return WALK_OTHER;
}

/* A MOVED_FROM with no MOVED_TO: it left the tree, a delete here. */
static void
watcher_move_out(struct watcher *w)
{
	struct watcher_dir *c;
	size_t len;

	w->mv_pending = 0;
	if (w->mv_isdir) {
		c = watcher_child(w->mv_dir, w->mv_name, w->mv_namelen);
		if (c != NULL)
			watcher_free_dir(w, c, 1);
	}
	if (w->mv_excluded)
		return;
	len = watcher_path(w->mv_dir, w->mv_name, w->mv_namelen, w->p2);
	if (len != SIZE_MAX)
		watcher_report(w, SPOOL_DELETE, w->p2, len, NULL, 0);
}

/* Something arrived at d/name from outside the tree (or from an
 * excluded name): a create of its whole subtree. */
static int
watcher_move_in(struct watcher *w, struct watcher_dir *d, const char *name,
    size_t namelen, const char *rel, size_t len, int isdir)
{
	int type;

	if (isdir) {
		watcher_report(w, SPOOL_RESCAN, rel, len, NULL, 0);
		return watcher_add_dir(w, d, name, namelen, 0, 0);
	}
	type = watcher_type_of(w, rel, len);
	if (type == WALK_FILE || type == WALK_LINK)
		watcher_report_ent(w, type, rel, len);
	return 0;
}

static int
watcher_moved_to(struct watcher *w, struct watcher_dir *d, const char *name,
    size_t namelen, const char *rel, size_t len, int isdir, int excluded)
{
	struct watcher_dir *c;
	struct watcher_slot *s;
	size_t flen;

	s = watcher_slot_find(w, d, name, namelen);
	if (s != NULL)
		s->used = 0;	/* the file it tracked was replaced */
	w->mv_pending = 0;
	if (w->mv_excluded && excluded) {
		if (isdir) {
			c = watcher_child(w->mv_dir, w->mv_name,
			    w->mv_namelen);
			if (c != NULL)
				watcher_free_dir(w, c, 1);
		}
		return 0;
	}
	if (excluded) {
		w->mv_pending = 1;
		watcher_move_out(w);
		return 0;
	}
	if (w->mv_excluded) {
		if (isdir) {
			c = watcher_child(w->mv_dir, w->mv_name,
			    w->mv_namelen);
			if (c != NULL)
				watcher_free_dir(w, c, 1);
		}
		return watcher_move_in(w, d, name, namelen, rel, len, isdir);
	}
	flen = watcher_path(w->mv_dir, w->mv_name, w->mv_namelen, w->p2);
	if (flen == SIZE_MAX)
		return watcher_move_in(w, d, name, namelen, rel, len, isdir);
	watcher_report(w, SPOOL_RENAME, w->p2, flen, rel, len);
	if (!isdir)
		return 0;
	/* The subtree keeps its watches; relinking its node is what makes
	 * every path below it right, however deep. */
	c = watcher_child(w->mv_dir, w->mv_name, w->mv_namelen);
	if (c == NULL)
		return watcher_add_dir(w, d, name, namelen, 0, 0);
	if (watcher_set_name(c, name, namelen) != 0)
		return -AR_ENOMEM;
	watcher_unlink(c);
	watcher_link(d, c);
	return 0;
}

static int
watcher_event(struct watcher *w, const struct inotify_event *ev,
    uint64_t now)
{
	struct watcher_dir *d;
	struct watcher_slot *s;
	const char *name;
	size_t namelen, len;
	int isdir, excluded, type;

	w->st.events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		w->st.overflows++;
		w->need_rebuild = 1;
		log_warn("inotify queue overflow: rescanning the tree");
		return 0;
	}
	if (w->mv_pending && (!(ev->mask & IN_MOVED_TO) ||
	    ev->cookie != w->mv_cookie))
		watcher_move_out(w);
	d = watcher_find(w, ev->wd);
	if (d == NULL)
		return 0;	/* a watch we removed */
	if (ev->mask & IN_IGNORED) {
		/* The kernel dropped the watch: the directory is gone. */
		if (d == w->top)
			w->dead = 1;
		watcher_free_dir(w, d, 0);
		return 0;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
		/* The parent's event reports it; only the root matters. */
		if (d == w->top) {
			log_error("watched root %s was %s", w->root,
			    (ev->mask & IN_MOVE_SELF) ? "moved" : "removed");
			w->dead = 1;
		}
		return 0;
	}
	namelen = ev->len > 0 ? strnlen(ev->name, ev->len) : 0;
	/* The root's own mode, owner or times: no record names the root
	 * but a compare of all (which carries its attributes). */
	if (namelen == 0 && d == w->top && (ev->mask & IN_ATTRIB)) {
		watcher_report(w, SPOOL_RESCAN, "", 0, NULL, 0);
		return 0;
	}
	if (namelen == 0)
		return 0;	/* the directory itself; its parent tells */
	name = ev->name;
	isdir = (ev->mask & IN_ISDIR) != 0;
	len = watcher_path(d, name, namelen, w->p1);
	if (len == SIZE_MAX)
		return 0;
	excluded = exclude_match(w->x, w->p1, len, isdir) ||
	    watcher_skipped(w, w->p1, len);

	if (ev->mask & IN_MOVED_FROM) {
		if (!excluded && !isdir) {
			/* Its pending change goes out under the old name,
			 * before the rename. */
			s = watcher_slot_find(w, d, name, namelen);
			if (s != NULL) {
				if (s->dirty)
					watcher_slot_emit(w, s);
				s->used = 0;
			}
		}
		if (namelen > NAME_MAX)
			return 0;
		w->mv_pending = 1;
		w->mv_cookie = ev->cookie;
		w->mv_isdir = isdir;
		w->mv_excluded = excluded;
		w->mv_dir = d;
		w->mv_namelen = namelen;
		memcpy(w->mv_name, name, namelen);
		w->mv_name[namelen] = '\0';
		return 0;
	}
	if (ev->mask & IN_MOVED_TO) {
		if (w->mv_pending)
			return watcher_moved_to(w, d, name, namelen, w->p1,
			    len, isdir, excluded);
		if (excluded)
			return 0;
		return watcher_move_in(w, d, name, namelen, w->p1, len,
		    isdir);
	}
	if (excluded) {
		/* Its directory's mtime changed all the same. */
		if ((ev->mask & (IN_CREATE | IN_DELETE)) && len > namelen &&
		    !watcher_skipped(w, w->p1, len - namelen - 1))
			watcher_report(w, SPOOL_ATTRIB, w->p1,
			    len - namelen - 1, NULL, 0);
		return 0;
	}
	if (ev->mask & IN_CREATE) {
		if (isdir) {
			watcher_report(w, SPOOL_MKDIR, w->p1, len, NULL, 0);
			return watcher_add_dir(w, d, name, namelen, 1, 0);
		}
		type = watcher_type_of(w, w->p1, len);
		if (type == WALK_LINK)
			watcher_report(w, SPOOL_SYMLINK, w->p1, len, NULL, 0);
		else if (type == WALK_OTHER)
			watcher_report(w, SPOOL_ATTRIB, w->p1, len, NULL, 0);
		else if (type == WALK_FILE) {
			/* Most creates are followed by a close within the
			 * window: report once, then. */
			s = watcher_slot_find(w, d, name, namelen);
			if (s == NULL)
				s = watcher_slot_new(w, d, name, namelen);
			if (s == NULL)
				watcher_report(w, SPOOL_MODIFY, w->p1, len,
				    NULL, 0);
			else {
				s->dirty = 1;
				s->last_ns = now;
			}
		}
		return 0;
	}
	if (ev->mask & IN_MODIFY) {
		if (isdir)
			return 0;
		s = watcher_slot_find(w, d, name, namelen);
		if (s != NULL && now - s->last_ns < WATCHER_WINDOW_NS) {
			s->dirty = 1;
			return 0;
		}
		if (s == NULL)
			s = watcher_slot_new(w, d, name, namelen);
		watcher_report(w, SPOOL_MODIFY, w->p1, len, NULL, 0);
		if (s != NULL) {
			s->dirty = 0;
			s->last_ns = now;
		}
		return 0;
	}
	if (ev->mask & IN_CLOSE_WRITE) {
		s = watcher_slot_find(w, d, name, namelen);
		if (s != NULL)
			s->used = 0;
		watcher_report(w, SPOOL_MODIFY, w->p1, len, NULL, 0);
		return 0;
	}
	if (ev->mask & IN_ATTRIB) {
		watcher_report(w, SPOOL_ATTRIB, w->p1, len, NULL, 0);
		return 0;
	}
	if (ev->mask & IN_DELETE) {
		s = watcher_slot_find(w, d, name, namelen);
		if (s != NULL)
			s->used = 0;
		watcher_report(w, SPOOL_DELETE, w->p1, len, NULL, 0);
		return 0;
	}
	return 0;
}

/* Read and handle what the queue holds; *got tells whether it held
 * anything. Returns 0 or an error. */
static int
watcher_read(struct watcher *w, int *got)
{
	const struct inotify_event *ev;
	ssize_t n;
	size_t off;
	uint64_t now;
	int r;

	*got = 0;
	n = read(w->fd, w->buf, WATCHER_BUF);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_error("read inotify: %s", strerror(errno));
		return -AR_EIO;
	}
	now = util_mono_ns();
	w->last_op = 0;
	for (off = 0; off + sizeof *ev <= (size_t)n;
	    off += sizeof *ev + ev->len) {
		ev = (const struct inotify_event *)(w->buf + off);
		if (off + sizeof *ev + ev->len > (size_t)n)
			break;
		r = watcher_event(w, ev, now);
		if (r != 0)
			return r;
	}
	*got = 1;
	return 0;
}

int
watcher_wait(int fd, uint64_t ns)
{
	struct pollfd pfd;
	int ms;

	ms = ns == UINT64_MAX ? -1 :
	    (int)((ns + 999999) / 1000000 > INT_MAX ? INT_MAX :
	    (ns + 999999) / 1000000);
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, fd == -1 ? 0 : 1, ms);
}

static int
watcher_poll_inotify(struct watcher *w, uint64_t deadline)
{
	uint64_t now, wait, due;
	int r, got = 0, reads = 0, read_some;

	for (;;) {
		if (w->dead)
			return -AR_EIO;
		if (reads >= WATCHER_READS_MAX)
			break;	/* a flood: hand control back, go on later */
		r = watcher_read(w, &read_some);
		if (r != 0)
			return r;
		if (read_some) {
			got = 1;
			reads++;
			continue;
		}
		if (w->need_rebuild) {
			r = watcher_rebuild(w);
			if (r != 0)
				return r;
			got = 1;
			continue;
		}
		if (w->mv_pending) {
			/* The MOVED_TO of a rename normally follows at
			 * once; give it a moment before calling it a move
			 * out of the tree. */
			if (watcher_wait(w->fd,
			    WATCHER_MOVE_WAIT_MS * 1000000ull) > 0)
				continue;
			watcher_move_out(w);
			got = 1;
		}
		now = util_mono_ns();
		watcher_slot_expire(w, now, 0);
		if (got || now >= deadline)
			break;
		wait = deadline == UINT64_MAX ? UINT64_MAX : deadline - now;
		due = watcher_slot_due(w, now);
		if (due < wait)
			wait = due;
		r = watcher_wait(w->fd, wait);
		if (r == -1 && errno == EINTR)
			break;	/* let the caller look at its signals */
	}
	w->st.watches = w->ndirs;
	return 0;
}

/* ------------------------------------------------------------------ */
/* interface                                                           */
/* ------------------------------------------------------------------ */

int
watcher_new(const struct watcher_opts *opts, watcher_cb *cb, void *arg,
    struct watcher **out, char *err, size_t errlen)
{
	struct watcher *w;
	struct stat st;
	const char *sk;
	size_t len, sklen;
	long q, mw;
	int r;

	*out = NULL;
	if (watcher_live) {
		snprintf(err, errlen, "a watcher already exists in this "
		    "process");
		return -AR_ESTATE;
	}
	if (opts->root == NULL || opts->root[0] != '/' || cb == NULL) {
		snprintf(err, errlen, "watch root must be an absolute path");
		return -AR_EUSAGE;
	}
	if (stat(opts->root, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", opts->root,
		    errno != 0 ? strerror(errno) : "not a directory");
		return -AR_EIO;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return -AR_ENOMEM;
	}
	w->fd = -1;
	len = strlen(opts->root);
	while (len > 0 && opts->root[len - 1] == '/')
		len--;
	w->root = strndup(opts->root, len);
	w->rootlen = len;
	if (opts->skip_dir != NULL) {
		sk = opts->skip_dir;
		sklen = strlen(sk);
		while (sklen > 0 && sk[sklen - 1] == '/')
			sklen--;
		if (sklen > len + 1 && memcmp(sk, w->root, len) == 0 &&
		    sk[len] == '/') {
			w->skip_rel = strndup(sk + len + 1, sklen - len - 1);
			w->skip_len = sklen - len - 1;
			if (w->skip_rel == NULL)
				goto nomem;
		}
	}
	if (w->root == NULL)
		goto nomem;
	w->x = opts->exclude;
	w->mode = opts->mode;
	w->st.mode = opts->mode;
	w->cb = cb;
	w->cb_arg = arg;

	if (w->mode == WATCHER_POLL) {
		r = watcher_scan_start(w, opts->poll_interval_ns != 0 ?
		    opts->poll_interval_ns : WATCHER_POLL_DEFAULT_NS);
		if (r != 0) {
			snprintf(err, errlen, "scan %s: %s", w->root,
			    ar_strerror(r));
			watcher_free(w);
			return r;
		}
		watcher_live = w->live = 1;
		log_info("watching %s by polling every %llu ms, %zu "
		    "directories", w->root[0] == '\0' ? "/" : w->root,
		    (unsigned long long)(w->scan.interval_ns / 1000000),
		    w->scan.ndirs);
		*out = w;
		return 0;
	}
	if (w->mode != WATCHER_INOTIFY) {
		snprintf(err, errlen, "unknown watch mode %d", w->mode);
		watcher_free(w);
		return -AR_EUSAGE;
	}
	w->buf = malloc(WATCHER_BUF);
	if (w->buf == NULL)
		goto nomem;
	/* libinotifytools' getter always answers -1; the kernel's value
	 * tells the operator how large a burst overflows the queue. */
	q = watcher_proc_long(WATCHER_PROC_QUEUED);
	mw = watcher_proc_long(WATCHER_PROC_WATCHES);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd == -1) {
		snprintf(err, errlen, "inotify_init1: %s", strerror(errno));
		watcher_free(w);
		return -AR_EIO;
	}
	r = watcher_add_dir(w, NULL, "", 0, 0, 0);
	if (r != 0) {
		snprintf(err, errlen, "watch %s: %s", opts->root,
		    w->add_failed ? "out of inotify watches "
		    "(fs.inotify.max_user_watches)" : ar_strerror(r));
		watcher_free(w);
		return r;
	}
	if (w->add_failed) {
		snprintf(err, errlen, "watch %s: out of inotify watches "
		    "(fs.inotify.max_user_watches = %ld)", opts->root, mw);
		watcher_free(w);
		return -AR_EIO;
	}
	w->st.watches = w->ndirs;
	watcher_live = w->live = 1;
	log_info("watching %zu directories (max_user_watches %ld, "
	    "max_queued_events %ld)", w->ndirs, mw, q);
	*out = w;
	return 0;

nomem:
	snprintf(err, errlen, "out of memory");
	watcher_free(w);
	return -AR_ENOMEM;
}

int
watcher_poll(struct watcher *w, int timeout_ms)
{
	uint64_t deadline;

	deadline = timeout_ms < 0 ? UINT64_MAX :
	    util_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	if (w->mode == WATCHER_POLL)
		return watcher_scan_poll(w, deadline);
	return watcher_poll_inotify(w, deadline);
}

void
watcher_free(struct watcher *w)
{
	if (w == NULL)
		return;
	if (w->top != NULL)
		watcher_free_dir(w, w->top, 0);
	if (w->fd != -1)
		close(w->fd);
	if (w->live)
		watcher_live = 0;
	watcher_scan_release(w);
	free(w->tab);
	free(w->buf);
	free(w->root);
	free(w->skip_rel);
	free(w);
}

void
watcher_get_stats(struct watcher *w, struct watcher_stats *st)
{
	*st = w->st;
	st->watches = w->mode == WATCHER_POLL ? w->scan.ndirs : w->ndirs;
}
