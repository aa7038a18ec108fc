/*
 * scratch.h: a unit test's scratch directory, made with mkdtemp() under
 * $TMPDIR (else /tmp) and removed with everything in it.
 */
#ifndef ASYNCREP_TEST_SCRATCH_H
#define ASYNCREP_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

/* top (toplen bytes) becomes a new directory named after name; 0 or -1. */
static inline int
scratch_make(char *top, size_t toplen, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	n = snprintf(top, toplen, "%s/%s.XXXXXX", tmp, name);
	if (n < 0 || (size_t)n >= toplen)
		return -1;
	return mkdtemp(top) != NULL ? 0 : -1;
}

static inline int
scratch_rm_one(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove top and all beneath it (cleanup: failures are ignored). */
static inline void
scratch_remove(const char *top)
{
	(void)nftw(top, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
