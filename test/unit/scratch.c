/*
 * scratch.c: the unit tests' scratch directories (scratch.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scratch.h"

int
scratch_make(char *dir, size_t dirlen, const char *prefix)
{
	const char *tmp;
	int n;

	tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	n = snprintf(dir, dirlen, "%s/%s.XXXXXX", tmp, prefix);
	if (n < 0 || (size_t)n >= dirlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkdtemp(dir) != NULL ? 0 : -1;
}

int
scratch_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n;

	n = snprintf(out, outlen, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Failures below name are not reported: the final rmdir tells whether
 * everything went. */
int
scratch_remove_at(int at, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, pass, removed;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (fchmodat(at, name, 0700, 0) != 0) {
		/* Not ours to fix here: the open below tells. */
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	/* Removing while reading may skip names: pass again until a pass
	 * finds nothing. */
	for (pass = 0; pass < 8; pass++) {
		removed = 0;
		rewinddir(d);
		for (;;) {
			de = scratch_readdir(d);
			if (de == NULL)
				break;
			scratch_remove_at(dirfd(d), de->d_name);
			removed = 1;
		}
		if (!removed)
			break;
	}
	closedir(d);
	return unlinkat(at, name, AT_REMOVEDIR);
}

struct dirent *
scratch_readdir(DIR *d)
{
	struct dirent *de;

	for (;;) {
		de = readdir(d);
		if (de == NULL || (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0))
			return de;
	}
}

int
scratch_remove(const char *dir)
{
	return scratch_remove_at(AT_FDCWD, dir);
}
