/*
 * walk.c: one directory's listing, lstat-ed and sorted by name bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "guard.h"
#include "util.h"
#include "walk.h"

#define WALK_ENTS_MIN 64
_Static_assert(((WALK_MAX_ENTRIES / WALK_ENTS_MIN) &
    (WALK_MAX_ENTRIES / WALK_ENTS_MIN - 1)) == 0 &&
    WALK_MAX_ENTRIES % WALK_ENTS_MIN == 0,
    "doubling from WALK_ENTS_MIN must reach WALK_MAX_ENTRIES exactly");
#define WALK_NAMES_MIN 4096

void
walk_dir_init(struct walk_dir *d)
{
	memset(d, 0, sizeof *d);
}

void
walk_dir_release(struct walk_dir *d)
{
	free(d->ents);
	free(d->names);
	memset(d, 0, sizeof *d);
}

int
walk_type_of(mode_t mode)
{
	if (S_ISREG(mode))
		return WALK_FILE;
	if (S_ISDIR(mode))
		return WALK_DIR;
	if (S_ISLNK(mode))
		return WALK_LINK;
	return WALK_OTHER;
}

int
walk_special_of(mode_t mode)
{
	if (S_ISFIFO(mode))
		return WALK_FIFO;
	if (S_ISSOCK(mode))
		return WALK_SOCK;
	if (S_ISCHR(mode))
		return WALK_CHR;
	if (S_ISBLK(mode))
		return WALK_BLK;
	return 0;
}

/* Byte order of names, a prefix before its extensions: strcmp's order
 * on unsigned bytes, without needing the NUL. */
static int
walk_cmp_names(const char *a, size_t alen, const char *b, size_t blen)
{
	int c;

	c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

static int
walk_cmp(const void *pa, const void *pb)
{
	const struct walk_ent *a = pa, *b = pb;

	return walk_cmp_names(a->name, a->namelen, b->name, b->namelen);
}

static int
walk_grow_ents(struct walk_dir *d)
{
	if (d->n >= WALK_MAX_ENTRIES)
		return -AR_ENOMEM;
	/* Doubling never passes WALK_MAX_ENTRIES (the _Static_assert). */
	return util_grow(&d->ents, &d->cap, d->n + 1, sizeof *d->ents,
	    WALK_ENTS_MIN);
}

static int
walk_add_name(struct walk_dir *d, const char *name, size_t len)
{
	if (util_grow(&d->names, &d->names_cap, d->names_len + len + 1, 1,
	    WALK_NAMES_MIN) != 0)
		return -AR_ENOMEM;
	memcpy(d->names + d->names_len, name, len + 1);
	d->names_len += len + 1;
	return 0;
}

/*
 * Read every name of dir into d in readdir order. Entry pointers are
 * left NULL: the name storage may still move when it grows.
 */
static int
walk_read(int dirfd, DIR *dir, int flags, struct walk_dir *d)
{
	struct walk_ent *e;
	struct dirent *de;
	struct stat st;
	size_t len;
	int r;

	for (;;) {
		guard_progress();
		errno = 0;
		de = readdir(dir);
		if (de == NULL)
			return errno == 0 ? 0 : -AR_EIO;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name);
		if ((flags & WALK_SKIP_TMP) &&
		    len >= sizeof FS_TMP_PREFIX - 1 &&
		    memcmp(de->d_name, FS_TMP_PREFIX,
		    sizeof FS_TMP_PREFIX - 1) == 0)
			continue;
		memset(&st, 0, sizeof st);
		/* Only the type is wanted, and readdir knows it. */
		if ((flags & WALK_TYPE_ONLY) && de->d_type != DT_UNKNOWN)
			st.st_mode = de->d_type == DT_DIR ? S_IFDIR :
			    de->d_type == DT_REG ? S_IFREG :
			    de->d_type == DT_LNK ? S_IFLNK : S_IFIFO;
		else if (fstatat(dirfd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			/* Gone between readdir and stat: a listing taken a
			 * moment later would not have it either. */
			if (errno == ENOENT)
				continue;
			return -AR_EIO;
		}
		r = walk_grow_ents(d);
		if (r != 0)
			return r;
		r = walk_add_name(d, de->d_name, len);
		if (r != 0)
			return r;
		e = &d->ents[d->n++];
		memset(e, 0, sizeof *e);
		e->namelen = len;
		e->type = walk_type_of(st.st_mode);
		e->st = st;
	}
}

int
walk_list(int dirfd, int flags, struct walk_dir *d)
{
	DIR *dir;
	size_t i, off;
	int r, saved;

	d->n = 0;
	d->names_len = 0;
	if (fs_opendir(dirfd, &dir) != 0)
		return -AR_EIO;
	r = walk_read(dirfd, dir, flags, d);
	saved = errno;
	closedir(dir);
	errno = saved;
	if (r != 0) {
		d->n = 0;
		d->names_len = 0;
		return r;
	}
	/* Names were appended in entry order, so offsets follow. */
	off = 0;
	for (i = 0; i < d->n; i++) {
		d->ents[i].name = d->names + off;
		off += d->ents[i].namelen + 1;
	}
	if (d->n > 1)
		qsort(d->ents, d->n, sizeof *d->ents, walk_cmp);
	return 0;
}

struct walk_ent *
walk_find(struct walk_dir *d, const char *name)
{
	struct walk_ent key;

	if (d->n == 0)
		return NULL;
	memset(&key, 0, sizeof key);
	key.name = name;
	key.namelen = strlen(name);
	return bsearch(&key, d->ents, d->n, sizeof *d->ents, walk_cmp);
}
