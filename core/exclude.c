/*
 * exclude.c: rsync-style exclude patterns.
 *
 * A pattern is compiled once into a token list and matched with a
 * dynamic program over the path's byte positions (one pass per token),
 * so matching time is bounded by pattern tokens x path length whatever
 * the pattern: no backtracking, nothing exponential for a hostile '*'
 * sequence. fnmatch(3) is not used because it needs NUL-terminated
 * strings, has no '**', and backtracks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "util.h"

/* Longest pattern, in bytes; a path longer than EXCLUDE_PATH_MAX is
 * beyond anything the wire can carry and is never matched. */
#define EXCLUDE_PAT_MAX 1024
#define EXCLUDE_PATH_MAX 4096

enum exclude_tok_type {
	EXCLUDE_LIT = 0,	/* one byte */
	EXCLUDE_ANY = 1,	/* '?': one byte but '/' */
	EXCLUDE_STAR = 2,	/* '*': any run without '/' */
	EXCLUDE_STAR2 = 3,	/* '**': any run, '/' included */
	EXCLUDE_CLASS = 4,	/* '[...]': one byte of a set, never '/' */
};

struct exclude_tok {
	uint8_t type;		/* enum exclude_tok_type */
	uint8_t c;		/* EXCLUDE_LIT */
	uint16_t set;		/* EXCLUDE_CLASS: index into pat->sets */
};

struct exclude_pat {
	struct exclude_tok *toks;
	size_t ntoks;
	uint8_t (*sets)[32];	/* 256-bit byte sets of the classes */
	size_t nsets;
	size_t setscap;
	int anchored;		/* leading '/': matched at the root only */
	int fullpath;		/* has an inner '/' or '**' */
	int dironly;		/* trailing '/' */
};

struct exclude {
	struct exclude_pat pats[EXCLUDE_MAX];
	size_t n;
};

int
exclude_new(struct exclude **out)
{
	struct exclude *x;

	x = calloc(1, sizeof *x);
	if (x == NULL)
		return -AR_ENOMEM;
	*out = x;
	return 0;
}

void
exclude_free(struct exclude *x)
{
	size_t i;

	if (x == NULL)
		return;
	for (i = 0; i < x->n; i++) {
		free(x->pats[i].toks);
		free(x->pats[i].sets);
	}
	free(x);
}

int
exclude_empty(const struct exclude *x)
{
	return x == NULL || x->n == 0;
}

int
exclude_has_paths(const struct exclude *x)
{
	size_t i;

	for (i = 0; x != NULL && i < x->n; i++) {
		if (x->pats[i].fullpath)
			return 1;
	}
	return 0;
}

static void
exclude_set_bit(uint8_t *set, unsigned c)
{
	set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/*
 * Parse the class starting after '[' at p (end e) into set. Returns the
 * position after the closing ']', or NULL when the class is unterminated
 * (the '[' is then a literal, as in fnmatch).
 */
static const char *
exclude_parse_class(const char *p, const char *e, uint8_t *set)
{
	const char *q;
	unsigned c, hi, k;
	int neg = 0, first = 1;

	memset(set, 0, 32);
	if (p < e && (*p == '!' || *p == '^')) {
		neg = 1;
		p++;
	}
	for (q = p; q < e; first = 0) {
		if (*q == ']' && !first)
			break;
		if (*q == '\\' && q + 1 < e)
			q++;
		c = (unsigned char)*q++;
		hi = c;
		if (q + 1 < e && *q == '-' && q[1] != ']') {
			q++;
			if (*q == '\\' && q + 1 < e)
				q++;
			hi = (unsigned char)*q++;
		}
		for (k = c; k <= hi; k++)
			exclude_set_bit(set, k);
	}
	if (q >= e)
		return NULL;
	if (neg) {
		for (k = 0; k < 32; k++)
			set[k] = (uint8_t)~set[k];
	}
	/* A class never matches the separator, like '*' and '?'. */
	set['/' >> 3] &= (uint8_t)~(1u << ('/' & 7));
	return q + 1;
}

/* Compile p[0..len) (without the anchor and dir-only marks). */
static int
exclude_compile(struct exclude_pat *xp, const char *p, size_t len)
{
	const char *e = p + len, *q;
	struct exclude_tok *t;
	uint8_t set[32];

	xp->toks = calloc(len, sizeof *xp->toks);
	if (xp->toks == NULL)
		return -AR_ENOMEM;
	while (p < e) {
		t = &xp->toks[xp->ntoks];
		if (*p == '*') {
			if (p + 1 < e && p[1] == '*') {
				while (p < e && *p == '*')
					p++;
				t->type = EXCLUDE_STAR2;
				xp->fullpath = 1;
			} else {
				p++;
				t->type = EXCLUDE_STAR;
			}
			/* Adjacent stars collapse: same language, less work. */
			if (xp->ntoks > 0 &&
			    xp->toks[xp->ntoks - 1].type >= EXCLUDE_STAR &&
			    xp->toks[xp->ntoks - 1].type <= EXCLUDE_STAR2) {
				if (t->type == EXCLUDE_STAR2)
					xp->toks[xp->ntoks - 1].type =
					    EXCLUDE_STAR2;
				continue;
			}
		} else if (*p == '?') {
			p++;
			t->type = EXCLUDE_ANY;
		} else if (*p == '[' &&
		    exclude_parse_class(p + 1, e, set) != NULL) {
			q = exclude_parse_class(p + 1, e, set);
			if (util_grow(&xp->sets, &xp->setscap, xp->nsets + 1,
			    sizeof *xp->sets, 4) != 0)
				return -AR_ENOMEM;
			memcpy(xp->sets[xp->nsets], set, sizeof set);
			t->type = EXCLUDE_CLASS;
			t->set = (uint16_t)xp->nsets++;
			p = q;
		} else {
			if (*p == '\\' && p + 1 < e)
				p++;
			if (*p == '/')
				xp->fullpath = 1;
			t->type = EXCLUDE_LIT;
			t->c = (uint8_t)*p++;
		}
		xp->ntoks++;
		/* A token takes one byte of the pattern at least. */
		assert(xp->ntoks <= len);
	}
	return 0;
}

int
exclude_add(struct exclude *x, const char *pattern, char *err, size_t errlen)
{
	struct exclude_pat *xp;
	size_t len;
	int r;

	len = strlen(pattern);
	if (len == 0 || len > EXCLUDE_PAT_MAX) {
		snprintf(err, errlen, "exclude pattern %s",
		    len == 0 ? "is empty" : "is too long");
		return -AR_EUSAGE;
	}
	if (x->n >= EXCLUDE_MAX) {
		snprintf(err, errlen, "too many exclude patterns (max %d)",
		    EXCLUDE_MAX);
		return -AR_EUSAGE;
	}
	xp = &x->pats[x->n];
	memset(xp, 0, sizeof *xp);
	if (pattern[len - 1] == '/') {
		xp->dironly = 1;
		while (len > 0 && pattern[len - 1] == '/')
			len--;
	}
	if (len > 0 && pattern[0] == '/') {
		xp->anchored = 1;
		xp->fullpath = 1;
		while (len > 0 && pattern[0] == '/') {
			pattern++;
			len--;
		}
	}
	if (len == 0) {
		snprintf(err, errlen, "exclude pattern has no name");
		return -AR_EUSAGE;
	}
	r = exclude_compile(xp, pattern, len);
	if (r != 0) {
		free(xp->toks);
		free(xp->sets);
		memset(xp, 0, sizeof *xp);
		snprintf(err, errlen, "out of memory");
		return r;
	}
	x->n++;
	return 0;
}

int
exclude_add_list(struct exclude *x, const char *list, char *err,
    size_t errlen)
{
	char one[EXCLUDE_PAT_MAX + 1];
	const char *p = list, *e;
	size_t len;
	int r;

	while (*p != '\0') {
		e = p + strcspn(p, ",\n");
		/* Surrounding blanks are formatting, not part of a name. */
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		len = (size_t)(e - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
		    p[len - 1] == '\r'))
			len--;
		if (len > EXCLUDE_PAT_MAX) {
			snprintf(err, errlen, "exclude pattern is too long");
			return -AR_EUSAGE;
		}
		if (len > 0) {
			memcpy(one, p, len);
			one[len] = '\0';
			r = exclude_add(x, one, err, errlen);
			if (r != 0)
				return r;
		}
		p = *e == '\0' ? e : e + 1;
	}
	return 0;
}

/*
 * Does xp match s[0..len)? cur/nxt are scratch arrays of len + 1 bytes:
 * cur[i] says "the tokens so far can end exactly before s[i]". Start
 * positions are 0, and for an unanchored full-path pattern also every
 * position after a '/', so "b/c" matches "a/b/c" at a component border.
 */
static int
exclude_run(const struct exclude_pat *xp, const char *s, size_t len,
    uint8_t *cur, uint8_t *nxt)
{
	const struct exclude_tok *t;
	const uint8_t *set;
	unsigned char c;
	size_t i, k;
	int run, any;

	memset(cur, 0, len + 1);
	cur[0] = 1;
	if (xp->fullpath && !xp->anchored) {
		for (i = 0; i < len; i++)
			if (s[i] == '/')
				cur[i + 1] = 1;
	}
	for (k = 0; k < xp->ntoks; k++) {
		t = &xp->toks[k];
		any = 0;
		switch (t->type) {
		case EXCLUDE_STAR:
		case EXCLUDE_STAR2:
			run = 0;
			for (i = 0; i <= len; i++) {
				if (cur[i])
					run = 1;
				nxt[i] = (uint8_t)run;
				any |= run;
				if (i < len && s[i] == '/' &&
				    t->type == EXCLUDE_STAR)
					run = 0;
			}
			break;
		default:
			nxt[0] = 0;
			for (i = 0; i < len; i++) {
				c = (unsigned char)s[i];
				if (!cur[i]) {
					nxt[i + 1] = 0;
					continue;
				}
				if (t->type == EXCLUDE_LIT)
					nxt[i + 1] = c == t->c;
				else if (t->type == EXCLUDE_ANY)
					nxt[i + 1] = c != '/';
				else {
					set = xp->sets[t->set];
					nxt[i + 1] = (set[c >> 3] >>
					    (c & 7)) & 1;
				}
				any |= nxt[i + 1];
			}
			break;
		}
		if (!any)
			return 0;
		memcpy(cur, nxt, len + 1);
	}
	return cur[len];
}

static int
exclude_is_tmp(const char *name, size_t len)
{
	return len >= sizeof FS_TMP_PREFIX - 1 &&
	    memcmp(name, FS_TMP_PREFIX, sizeof FS_TMP_PREFIX - 1) == 0;
}

/* One path (no ancestors) against every pattern. */
static int
exclude_one(const struct exclude *x, const char *path, size_t len,
    int is_dir, uint8_t *cur, uint8_t *nxt)
{
	const struct exclude_pat *xp;
	const char *base;
	size_t i, blen;

	base = memrchr(path, '/', len);
	base = base == NULL ? path : base + 1;
	blen = len - (size_t)(base - path);
	if (exclude_is_tmp(base, blen))
		return 1;
	if (x == NULL)
		return 0;
	for (i = 0; i < x->n; i++) {
		xp = &x->pats[i];
		if (xp->dironly && !is_dir)
			continue;
		if (xp->fullpath) {
			if (exclude_run(xp, path, len, cur, nxt))
				return 1;
		} else if (exclude_run(xp, base, blen, cur, nxt))
			return 1;
	}
	return 0;
}

/*
 * A path under an excluded directory is excluded too, as with rsync,
 * whose traversal never enters one: so each leading directory is
 * tried before the path itself, and callers that do not walk (events,
 * wire paths) get the same answer as those that do.
 */
int
exclude_match(const struct exclude *x, const char *path, size_t len,
    int is_dir)
{
	uint8_t cur[EXCLUDE_PATH_MAX + 1], nxt[EXCLUDE_PATH_MAX + 1];
	size_t i;

	if (len == 0 || len > EXCLUDE_PATH_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (path[i] == '/' && i > 0 &&
		    exclude_one(x, path, i, 1, cur, nxt))
			return 1;
	}
	return exclude_one(x, path, len, is_dir, cur, nxt);
}
