/*
 * watcher-scan.c: the watcher's poll mode (watch_mode = poll): a periodic
 * scan of the tree's metadata, compared with the last one.
 *
 * For what inotify cannot see: writes made through another NFS client,
 * or through an mmap never synced. Each scan lists every directory (with
 * a stat per entry) and keeps, per directory, 16 bytes per entry: a hash
 * of the name, of the type, size and mtime, and of mode and owner. A
 * directory whose listing hashes as before is not compared entry by
 * entry. Memory stays small on a large tree; the price is that a name
 * that vanished cannot be named, so its directory is rescanned instead.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/types.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "spool.h"
#include "util.h"
#include "walk.h"
#include "watcher-int.h"

/* One entry of a directory listing, 16 bytes. */
struct watcher_scan_ent {
	uint64_t namehash;
	uint32_t data;		/* type, size, mtime */
	uint32_t attr;		/* mode, owner (and a directory's mtime) */
};

/* What the last scan saw of one directory. */
struct watcher_scan_dir {
	uint64_t key;		/* hash of the relative path, 0 = free */
	uint64_t listhash;
	uint32_t gen;		/* scan that last saw it */
	uint32_t n;
	struct watcher_scan_ent *ents;	/* sorted by namehash */
};

/* FNV-1a, 64 bits: cheap, and good enough to tell names apart. */
static uint64_t
watcher_scan_hash(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define WATCHER_SCAN_HASH_INIT 0xcbf29ce484222325ull


static uint32_t
watcher_scan_h32(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

static int
watcher_scan_ent_cmp(const void *pa, const void *pb)
{
	const struct watcher_scan_ent *a = pa, *b = pb;

	if (a->namehash != b->namehash)
		return a->namehash < b->namehash ? -1 : 1;
	return 0;
}

/* Put d into the table, which has room for it and does not hold its
 * key. */
static void
watcher_scan_insert(struct watcher_scan *sc, const struct watcher_scan_dir *d)
{
	size_t j, mask = sc->tabcap - 1;

	assert(d->key != 0 && (sc->ndirs + 1) * 2 <= sc->tabcap);
	for (j = d->key & mask; sc->tab[j].key != 0; j = (j + 1) & mask)
		;
	sc->tab[j] = *d;
	sc->ndirs++;
}

/*
 * Move the table into a new one of cap slots, keeping only the
 * directories seen by scan gen (all of them if all). Nothing changes if
 * the new table cannot be had: the old one stays as it is.
 */
static int
watcher_scan_rehash(struct watcher_scan *sc, size_t cap, int all)
{
	struct watcher_scan_dir *old = sc->tab;
	size_t i, oldcap = sc->tabcap;

	sc->tab = calloc(cap, sizeof *sc->tab);
	if (sc->tab == NULL) {
		sc->tab = old;
		return -AR_ENOMEM;
	}
	sc->tabcap = cap;
	sc->ndirs = 0;
	for (i = 0; i < oldcap; i++) {
		if (old[i].key == 0)
			continue;
		if (all || old[i].gen == sc->gen)
			watcher_scan_insert(sc, &old[i]);
		else
			free(old[i].ents);
	}
	free(old);
	return 0;
}

static struct watcher_scan_dir *
watcher_scan_find(struct watcher_scan *sc, uint64_t key, int create)
{
	struct watcher_scan_dir *p;
	size_t i, mask;

	if (create && (sc->ndirs + 1) * 2 > sc->tabcap &&
	    watcher_scan_rehash(sc, sc->tabcap == 0 ? 256 : sc->tabcap * 2,
	    1) != 0)
		return NULL;
	if (sc->tabcap == 0)
		return NULL;
	mask = sc->tabcap - 1;
	for (i = key & mask; sc->tab[i].key != 0; i = (i + 1) & mask) {
		if (sc->tab[i].key == key)
			return &sc->tab[i];
	}
	if (!create)
		return NULL;
	p = &sc->tab[i];
	memset(p, 0, sizeof *p);
	p->key = key;
	sc->ndirs++;
	return p;
}

/* Drop the records of directories the last scan did not see. */
static void
watcher_scan_sweep(struct watcher_scan *sc)
{
	size_t i, live = 0;

	for (i = 0; i < sc->tabcap; i++)
		if (sc->tab[i].key != 0 && sc->tab[i].gen == sc->gen)
			live++;
	if (live < sc->ndirs)
		watcher_scan_rehash(sc, sc->tabcap, 0);
}

static void
watcher_scan_ent_of(const struct walk_ent *e, struct watcher_scan_ent *p)
{
	uint64_t h;
	int64_t v[4];

	p->namehash = watcher_scan_hash(WATCHER_SCAN_HASH_INIT, e->name,
	    e->namelen);
	/* A directory's size and mtime move with its entries, which are
	 * compared on their own: only its type counts as its data, and
	 * its mtime as an attribute (touch sets it alone too). */
	v[0] = e->type;
	/* A device's number is its data. */
	v[1] = e->type == WALK_DIR ? 0 : e->type == WALK_OTHER ?
	    (int64_t)e->st.st_rdev : (int64_t)e->st.st_size;
	v[2] = e->type == WALK_DIR ? 0 : (int64_t)e->st.st_mtim.tv_sec *
	    1000000000 + e->st.st_mtim.tv_nsec;
	v[3] = 0;
	h = watcher_scan_hash(WATCHER_SCAN_HASH_INIT, v, sizeof v);
	p->data = watcher_scan_h32(h);
	v[0] = e->st.st_mode;
	v[1] = e->st.st_uid;
	v[2] = e->st.st_gid;
	/* A directory's mtime; the ctime of anything else, which moves
	 * with its xattrs and ACLs too (a write moves its mtime as well,
	 * reported as data). */
	v[3] = e->type == WALK_DIR ? (int64_t)e->st.st_mtim.tv_sec *
	    1000000000 + e->st.st_mtim.tv_nsec :
	    (int64_t)e->st.st_ctim.tv_sec * 1000000000 + e->st.st_ctim.tv_nsec;
	h = watcher_scan_hash(WATCHER_SCAN_HASH_INIT, v, sizeof v);
	p->attr = watcher_scan_h32(h);
}

/* Extend rel (len bytes, room for LIMIT_PATH_MAX + 1) in place to the
 * path of its entry e; returns the new length. */
static size_t
watcher_scan_child(char *rel, size_t len, const struct walk_ent *e)
{
	size_t clen = len == 0 ? 0 : len + 1;

	assert(clen + e->namelen <= LIMIT_PATH_MAX);
	if (len > 0)
		rel[len] = '/';
	memcpy(rel + clen, e->name, e->namelen);
	clen += e->namelen;
	rel[clen] = '\0';
	return clen;
}

/*
 * Scan the directory at rel (w->p1 holds nothing useful across the
 * recursion: rel is a caller-owned buffer extended in place). Compares
 * its listing with the record of the last scan and reports the
 * difference; entries whose names vanished cannot be named from 16-byte
 * records, so a directory that lost any reports SPOOL_RESCAN of itself.
 * *touched is set when a record names the directory or one of its
 * entries: the standby then reads the directory's own state anyway
 * (a record touches the parent of its path).
 */
static int
watcher_scan_dir(struct watcher *w, char *rel, size_t len, int report,
    int depth, int *touched)
{
	struct watcher_scan_dir *rec;
	struct watcher_scan_ent *ents = NULL, *old;
	struct walk_dir list;
	struct walk_ent *e;
	uint64_t key, lh;
	size_t i, n = 0, clen, matched = 0;
	int fd, r, isnew, lost, dattr, dtouched;

	*touched = 0;
	if (depth > WATCHER_DEPTH_MAX || watcher_abs(w, rel, len) != 0)
		return 0;
	fd = open(w->abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return 0;
	walk_dir_init(&list);
	r = walk_list(fd, WALK_SKIP_TMP, &list);
	close(fd);
	if (r != 0) {
		walk_dir_release(&list);
		return r == -AR_ENOMEM ? r : 0;
	}
	if (list.n > 0) {
		ents = calloc(list.n, sizeof *ents);
		if (ents == NULL) {
			walk_dir_release(&list);
			return -AR_ENOMEM;
		}
	}
	/* Mark the entries that take part; the rest are left out of the
	 * record so excluding a name is not a change. */
	for (i = 0; i < list.n; i++) {
		e = &list.ents[i];
		/* Not replicated; a path past the limit is not even built
		 * (the second loop skips it too). Special files are: the
		 * standby may speak the version that carries them. */
		if (len + 1 + e->namelen > LIMIT_PATH_MAX) {
			e->namelen = 0;
			continue;
		}
		clen = watcher_scan_child(rel, len, e);
		if (exclude_match(w->x, rel, clen, e->type == WALK_DIR) ||
		    watcher_skipped(w, rel, clen)) {
			e->namelen = 0;
			continue;
		}
		watcher_scan_ent_of(e, &ents[n++]);
	}
	rel[len] = '\0';
	if (n > 1)	/* ents may be NULL when the directory is empty */
		qsort(ents, n, sizeof *ents, watcher_scan_ent_cmp);
	lh = watcher_scan_hash(WATCHER_SCAN_HASH_INIT, ents, n * sizeof *ents);
	key = watcher_scan_hash(WATCHER_SCAN_HASH_INIT, rel, len) | 1;
	rec = watcher_scan_find(&w->scan, key, 0);
	isnew = rec == NULL;
	if (rec == NULL) {
		rec = watcher_scan_find(&w->scan, key, 1);
		if (rec == NULL) {
			free(ents);
			walk_dir_release(&list);
			return -AR_ENOMEM;
		}
	}
	for (i = 0; i < list.n; i++) {
		struct watcher_scan_ent p;

		e = &list.ents[i];
		if (e->namelen == 0)
			continue;
		clen = watcher_scan_child(rel, len, e);
		dattr = 0;
		if (report && (isnew || rec->listhash != lh)) {
			watcher_scan_ent_of(e, &p);
			old = isnew || rec->n == 0 ? NULL : bsearch(&p,
			    rec->ents, rec->n, sizeof p, watcher_scan_ent_cmp);
			if (old != NULL)
				matched++;
			*touched |= old == NULL || old->data != p.data ||
			    (old->attr != p.attr && e->type != WALK_DIR);
			if (old == NULL)
				watcher_report_ent(w, e->type, rel, clen);
			else if (old->data != p.data) {
				if (e->type == WALK_DIR)
					/* type changed to a directory */
					watcher_report(w, SPOOL_DELETE, rel,
					    clen, NULL, 0);
				watcher_report_ent(w, e->type == WALK_DIR ?
				    WALK_DIR : e->type, rel, clen);
			} else if (old->attr != p.attr && e->type == WALK_DIR)
				dattr = 1;	/* after its own scan */
			else if (old->attr != p.attr)
				watcher_report(w, SPOOL_ATTRIB, rel, clen,
				    NULL, 0);
		}
		if (e->type == WALK_DIR) {
			r = watcher_scan_dir(w, rel, clen, report, depth + 1,
			    &dtouched);
			if (r != 0)
				break;
			/* Its mtime moves with its entries: a record of
			 * one of them already carries it. */
			if (dattr && !dtouched) {
				watcher_report(w, SPOOL_ATTRIB, rel, clen,
				    NULL, 0);
				*touched = 1;
			}
		}
	}
	rel[len] = '\0';
	lost = report && !isnew && rec->listhash != lh && matched < rec->n;
	/* rec may have moved: the table can grow during the recursion. */
	rec = watcher_scan_find(&w->scan, key, 0);
	if (rec != NULL) {
		free(rec->ents);
		rec->ents = ents;
		rec->n = (uint32_t)n;
		rec->listhash = lh;
		rec->gen = w->scan.gen;
	} else
		free(ents);
	if (lost) {
		watcher_report(w, SPOOL_RESCAN, rel, len, NULL, 0);
		*touched = 1;
	}
	walk_dir_release(&list);
	return r;
}

static int
watcher_scan_all(struct watcher *w, int report)
{
	char rel[LIMIT_PATH_MAX + 1];
	int r, touched;

	rel[0] = '\0';
	w->scan.gen++;
	r = watcher_scan_dir(w, rel, 0, report, 0, &touched);
	if (r == 0)
		watcher_scan_sweep(&w->scan);
	w->st.watches = w->scan.ndirs;
	return r;
}

int
watcher_scan_poll(struct watcher *w, uint64_t deadline)
{
	uint64_t now;
	int r;

	for (;;) {
		now = util_mono_ns();
		if (now >= w->scan.next_ns) {
			r = watcher_scan_all(w, 1);
			w->scan.next_ns = util_mono_ns() + w->scan.interval_ns;
			return r;
		}
		if (now >= deadline)
			return 0;
		r = watcher_wait(-1, (deadline < w->scan.next_ns ?
		    deadline : w->scan.next_ns) - now);
		if (r == -1 && errno == EINTR)
			return 0;
	}
}

int
watcher_scan_start(struct watcher *w, uint64_t interval_ns)
{
	int r;

	assert(w->mode == WATCHER_POLL && w->scan.tabcap == 0);
	w->scan.interval_ns = interval_ns;
	r = watcher_scan_all(w, 0);
	w->scan.next_ns = util_mono_ns() + w->scan.interval_ns;
	return r;
}

void
watcher_scan_release(struct watcher *w)
{
	size_t i;

	for (i = 0; i < w->scan.tabcap; i++)
		free(w->scan.tab[i].ents);
	free(w->scan.tab);
	w->scan.tab = NULL;
	w->scan.tabcap = w->scan.ndirs = 0;
}
