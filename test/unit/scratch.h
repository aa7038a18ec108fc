/*
 * scratch.h: the unit tests' scratch directories. A test makes a fresh
 * directory under $TMPDIR (/tmp when unset) and removes it, with
 * whatever it left inside, at the end. Test code only.
 */
#ifndef SCRATCH_H
#define SCRATCH_H

#include <dirent.h>
#include <stddef.h>

/*
 * Make a new directory $TMPDIR/PREFIX.XXXXXX (mkdtemp); its path goes in
 * dir, of dirlen bytes. Returns 0, or -1 with errno set: ENAMETOOLONG if
 * the path does not fit, or mkdtemp's error.
 */
int	scratch_make(char *dir, size_t dirlen, const char *prefix);

/*
 * dir/name in out (outlen bytes), for a path in a scratch directory.
 * Returns 0, or -1 with errno ENAMETOOLONG if it does not fit (a cut
 * path would name another file).
 */
int	scratch_path(char *out, size_t outlen, const char *dir,
	    const char *name);

/*
 * Remove dir and everything under it. Symlinks are removed, never
 * followed; each level is opened by its parent's fd, so trees deeper
 * than PATH_MAX go too (one fd per level); a directory the test made
 * unreadable or unwritable is given mode 0700 first. Returns 0, or -1
 * if dir is still there.
 */
int	scratch_remove(const char *dir);

/* The same for at/name: at is a directory fd, or AT_FDCWD. */
int	scratch_remove_at(int at, const char *name);

/* readdir without "." and "..": the next entry of d, or NULL at the end
 * (or on an error, errno set). */
struct dirent	*scratch_readdir(DIR *d);

#endif
