/*
 * changes.c: one standby's batch, coalesced from spool records
 * (changes.h): the renames in order, each touched path once, and the
 * hash map that finds a path already touched.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "error.h"
#include "limit.h"
#include "util.h"

struct changes_entry {
	char *path;
	size_t len;
	int rescan;
	int live;		/* 0 once rewritten by a rename */
};

struct changes_move {
	char *from, *to;
	size_t flen, tlen;
};

struct changes {
	size_t max;
	struct changes_entry *paths;
	size_t npaths, cap;
	struct changes_move *renames;
	size_t nrenames, rcap;
	size_t *table;		/* open addressing: index + 1, 0 = empty */
	size_t tsize;		/* a power of two, > 2 * max */
	int full;
};

static uint64_t
changes_hash(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* The slot of path: where it is, or the empty slot where it would go. */
static size_t
changes_slot(const struct changes *c, const char *p, size_t len)
{
	size_t i = (size_t)changes_hash(p, len) & (c->tsize - 1);

	for (;;) {
		size_t v = c->table[i];

		if (v == 0)
			return i;
		if (c->paths[v - 1].len == len &&
		    memcmp(c->paths[v - 1].path, p, len) == 0)
			return i;
		i = (i + 1) & (c->tsize - 1);
	}
}

/* Open addressing cannot just clear a slot: re-insert the cluster. */
static void
changes_unslot(struct changes *c, size_t i)
{
	size_t j = i, v;

	c->table[i] = 0;
	for (;;) {
		j = (j + 1) & (c->tsize - 1);
		v = c->table[j];
		if (v == 0)
			return;
		c->table[j] = 0;
		c->table[changes_slot(c, c->paths[v - 1].path,
		    c->paths[v - 1].len)] = v;
	}
}

int
changes_new(size_t max_paths, struct changes **out)
{
	struct changes *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -AR_ENOMEM;
	c->max = max_paths < 16 ? 16 : max_paths;
	c->tsize = 64;
	/* Parents add at most one path per record: room for 2 * max. */
	while (c->tsize < 4 * c->max)
		c->tsize *= 2;
	c->table = calloc(c->tsize, sizeof(*c->table));
	if (c->table == NULL) {
		free(c);
		return -AR_ENOMEM;
	}
	*out = c;
	return 0;
}

void
changes_reset(struct changes *c)
{
	size_t i;

	for (i = 0; i < c->npaths; i++)
		free(c->paths[i].path);
	for (i = 0; i < c->nrenames; i++) {
		free(c->renames[i].from);
		free(c->renames[i].to);
	}
	c->npaths = c->nrenames = 0;
	c->full = 0;
	memset(c->table, 0, c->tsize * sizeof(*c->table));
}

void
changes_free(struct changes *c)
{
	if (c == NULL)
		return;
	changes_reset(c);
	free(c->paths);
	free(c->renames);
	free(c->table);
	free(c);
}

static int
changes_touch(struct changes *c, const char *p, size_t len, int rescan)
{
	struct changes_entry *cp;
	size_t i;

	if (len == 0)
		return 0;	/* the root's own attributes are not kept */
	/* The table has room for every path a full batch holds: a free
	 * slot always ends a probe. */
	assert(c->npaths < c->tsize / 2);
	i = changes_slot(c, p, len);
	if (c->table[i] != 0) {
		c->paths[c->table[i] - 1].rescan |= rescan;
		return 0;
	}
	if (util_grow(&c->paths, &c->cap, c->npaths + 1, sizeof(*c->paths),
	    64) != 0)
		return -AR_ENOMEM;
	cp = &c->paths[c->npaths];
	cp->path = malloc(len + 1);
	if (cp->path == NULL)
		return -AR_ENOMEM;
	memcpy(cp->path, p, len);
	cp->path[len] = '\0';
	cp->len = len;
	cp->rescan = rescan;
	cp->live = 1;
	c->npaths++;
	c->table[i] = c->npaths;
	return 0;
}

/* Touch the parent, then the path, so parents come first. */
static int
changes_touch_parent(struct changes *c, const char *p, size_t len,
    int rescan)
{
	const char *slash = NULL;
	size_t i;
	int r;

	for (i = len; i > 0; i--) {
		if (p[i - 1] == '/') {
			slash = p + i - 1;
			break;
		}
	}
	if (slash != NULL) {
		r = changes_touch(c, p, (size_t)(slash - p), 0);
		if (r != 0)
			return r;
	}
	return changes_touch(c, p, len, rescan);
}

/* Paths at or beneath from now live under to. */
static int
changes_rewrite(struct changes *c, const char *from, size_t flen,
    const char *to, size_t tlen)
{
	size_t i, n = c->npaths;
	int r;

	for (i = 0; i < n; i++) {
		struct changes_entry *cp = &c->paths[i];
		char *np;
		size_t nlen;
		int rescan;

		if (!cp->live || cp->len < flen ||
		    memcmp(cp->path, from, flen) != 0 ||
		    (cp->len > flen && cp->path[flen] != '/'))
			continue;
		nlen = tlen + (cp->len - flen);
		if (nlen > LIMIT_PATH_MAX) {
			/* Unrepresentable: compare the new subtree. */
			cp->live = 0;
			changes_unslot(c, changes_slot(c, cp->path, cp->len));
			r = changes_touch(c, to, tlen, 1);
			if (r != 0)
				return r;
			continue;
		}
		np = malloc(nlen + 1);
		if (np == NULL)
			return -AR_ENOMEM;
		memcpy(np, to, tlen);
		memcpy(np + tlen, cp->path + flen, cp->len - flen);
		np[nlen] = '\0';
		rescan = cp->rescan;
		cp->live = 0;
		changes_unslot(c, changes_slot(c, cp->path, cp->len));
		/* It keeps its place in the order under the new name. */
		free(cp->path);
		cp->path = np;
		cp->len = nlen;
		{
			size_t s2 = changes_slot(c, np, nlen);

			if (c->table[s2] == 0) {
				cp->live = 1;
				c->table[s2] = i + 1;
			} else
				c->paths[c->table[s2] - 1].rescan |= rescan;
		}
	}
	return 0;
}

int
changes_room(const struct changes *c)
{
	assert(c->npaths <= 2 * c->max && c->nrenames <= c->max);
	return c->npaths + 2 <= 2 * c->max && c->nrenames + 1 <= c->max;
}

int
changes_add(struct changes *c, const struct spool_rec *rec)
{
	struct changes_move *rn;
	int r;

	assert(rec->op >= SPOOL_MODIFY && rec->op <= SPOOL_RESCAN);
	assert(changes_room(c));
	switch (rec->op) {
	case SPOOL_RESCAN:
		if (rec->path_len == 0) {
			c->full = 1;
			return 0;
		}
		return changes_touch_parent(c, rec->path, rec->path_len, 1);
	case SPOOL_RENAME:
		if (util_grow(&c->renames, &c->rcap, c->nrenames + 1,
		    sizeof(*c->renames), 16) != 0)
			return -AR_ENOMEM;
		rn = &c->renames[c->nrenames];
		rn->from = strndup(rec->path, rec->path_len);
		rn->to = strndup(rec->path2, rec->path2_len);
		if (rn->from == NULL || rn->to == NULL) {
			free(rn->from);
			free(rn->to);
			return -AR_ENOMEM;
		}
		rn->flen = rec->path_len;
		rn->tlen = rec->path2_len;
		c->nrenames++;
		r = changes_rewrite(c, rec->path, rec->path_len, rec->path2,
		    rec->path2_len);
		if (r == 0)
			r = changes_touch_parent(c, rec->path, rec->path_len,
			    0);
		if (r == 0)
			r = changes_touch_parent(c, rec->path2,
			    rec->path2_len, 0);
		return r;
	default:
		return changes_touch_parent(c, rec->path, rec->path_len, 0);
	}
}

int
changes_full(const struct changes *c)
{
	return c->full;
}

size_t
changes_count(const struct changes *c)
{
	return c->npaths + c->nrenames + (size_t)c->full;
}

size_t
changes_nrenames(const struct changes *c)
{
	return c->nrenames;
}

void
changes_rename(const struct changes *c, size_t i, const char **from,
    size_t *flen, const char **to, size_t *tlen)
{
	assert(i < c->nrenames);
	*from = c->renames[i].from;
	*flen = c->renames[i].flen;
	*to = c->renames[i].to;
	*tlen = c->renames[i].tlen;
}

size_t
changes_npaths(const struct changes *c)
{
	return c->npaths;
}

int
changes_path(const struct changes *c, size_t i, const char **path,
    size_t *len, int *rescan)
{
	const struct changes_entry *cp;

	assert(i < c->npaths);
	cp = &c->paths[i];
	if (!cp->live)
		return 0;
	*path = cp->path;
	*len = cp->len;
	*rescan = cp->rescan;
	return 1;
}

int
changes_has(const struct changes *c, const char *path, size_t len)
{
	size_t v = c->table[changes_slot(c, path, len)];

	return v != 0 && c->paths[v - 1].live;
}
