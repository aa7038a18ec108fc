/*
 * links.c: the hard-link groups of one manifest (links.h), an open
 * addressing table of (device, inode) to the first path listed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "links.h"

struct links_ent {
	dev_t dev;
	ino_t ino;
	char *path;		/* NULL: a free slot */
	size_t len;
};

struct links {
	struct links_ent *tab;
	size_t cap;		/* a power of two */
	size_t n;
};

#define LINKS_CAP_MIN 64

int
links_new(struct links **out)
{
	struct links *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (l == NULL)
		return -AR_ENOMEM;
	l->tab = calloc(LINKS_CAP_MIN, sizeof(*l->tab));
	if (l->tab == NULL) {
		free(l);
		return -AR_ENOMEM;
	}
	l->cap = LINKS_CAP_MIN;
	*out = l;
	return 0;
}

void
links_free(struct links *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->cap; i++)
		free(l->tab[i].path);
	free(l->tab);
	free(l);
}

static size_t
links_slot(const struct links *l, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15)) ^
	    ((uint64_t)dev * UINT64_C(0xc2b2ae3d27d4eb4f));
	size_t i = (size_t)(h >> 17) & (l->cap - 1);

	while (l->tab[i].path != NULL && (l->tab[i].dev != dev ||
	    l->tab[i].ino != ino))
		i = (i + 1) & (l->cap - 1);
	return i;
}

/* Double the table: kept at most half full, so a probe always ends. */
static int
links_grow(struct links *l)
{
	struct links_ent *old = l->tab;
	size_t oldcap = l->cap, i, j;

	l->tab = calloc(oldcap * 2, sizeof(*l->tab));
	if (l->tab == NULL) {
		l->tab = old;
		return -AR_ENOMEM;
	}
	l->cap = oldcap * 2;
	for (i = 0; i < oldcap; i++) {
		if (old[i].path == NULL)
			continue;
		j = links_slot(l, old[i].dev, old[i].ino);
		l->tab[j] = old[i];
	}
	free(old);
	return 0;
}

int
links_find_or_add(struct links *l, dev_t dev, ino_t ino,
    const char *path, size_t len, const char **target, size_t *tlen)
{
	struct links_ent *e;
	size_t i;

	i = links_slot(l, dev, ino);
	e = &l->tab[i];
	if (e->path != NULL) {
		*target = e->path;
		*tlen = e->len;
		return 1;
	}
	if (l->n >= LINKS_MAX)
		return 0;
	if (2 * (l->n + 1) > l->cap) {
		if (links_grow(l) != 0)
			return -AR_ENOMEM;
		i = links_slot(l, dev, ino);
		e = &l->tab[i];
	}
	e->path = malloc(len + 1);
	if (e->path == NULL)
		return -AR_ENOMEM;
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->len = len;
	e->dev = dev;
	e->ino = ino;
	l->n++;
	return 0;
}
