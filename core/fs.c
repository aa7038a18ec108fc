/*
 * fs.c: confinement beneath a directory fd, durable writes, removal of
 * trees that never follows a symlink.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "limit.h"
#include "util.h"

/*
 * openat2 needs both the kernel header and the syscall number; without
 * either, every open takes the O_NOFOLLOW walk, which is just as
 * confining, only slower.
 */
#if defined(HAVE_LINUX_OPENAT2_H)
#define FS_HAVE_OPENAT2 1
#elif defined(__has_include)
#if __has_include(<linux/openat2.h>)
#define FS_HAVE_OPENAT2 1
#endif
#endif
#if defined(FS_HAVE_OPENAT2) && !defined(SYS_openat2)
#undef FS_HAVE_OPENAT2
#endif
#ifdef FS_HAVE_OPENAT2
#include <linux/openat2.h>
#endif

/* Attempts at a fresh temp name before giving up: with 62^6 names a
 * collision is already unlikely, so a long run means something is wrong. */
#define FS_TMP_TRIES 100
/* Bytes of the target's name kept in a temp name, so a leftover can be
 * traced to its file while the whole name stays far below NAME_MAX. */
#define FS_TMP_BASE 40
#define FS_TMP_RAND 6

/* Deepest directory fs_remove_tree descends into. A wire path of 4095
 * bytes has at most 2048 components, so no tree we build is deeper. */
#define FS_REMOVE_DEPTH 2048
/* Bytes of subdirectory names remembered per pass over one directory:
 * the directory stream is closed before descending, so each level holds
 * one fd and this much memory, never a whole listing. */
#define FS_REMOVE_BATCH 4096
/* Passes over one directory that remove nothing before giving up (a
 * writer racing with us, or entries readdir does not show). */
#define FS_REMOVE_STALL 3

/* A removed regular file with at least this much allocated has its
 * blocks freed by the release thread (fs_remove_tree_bg). */
#define FS_RELEASE_MIN (8u * 1024 * 1024)
/* Files the release thread may hold at once; past it, freed in place. */
#define FS_RELEASE_MAX 16

/* How fs_remove_at frees what it unlinks. */
enum fs_remove_how {
	FS_REMOVE_NOW,		/* in the unlinking call */
	FS_REMOVE_RELEASED,	/* a big file's blocks by the release thread */
};

int fs_force_fallback;

/* Set once openat2 answered ENOSYS: the kernel will not grow it later. */
static int fs_no_openat2;

int
fs_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0) {
			/* Never for files; a device that accepts nothing
			 * would make us spin forever. */
			errno = EIO;
			return -AR_EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_zero_block(const uint8_t *buf, size_t len, size_t i, uint64_t off,
    size_t *n)
{
	*n = FS_HOLE_BLOCK - (size_t)((off + i) % FS_HOLE_BLOCK);
	if (*n > len - i)
		*n = len - i;
	return *n == FS_HOLE_BLOCK && util_all_zero(buf + i, *n);
}

int
fs_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off,
    uint64_t *written)
{
	const uint8_t *p = buf;
	size_t i = 0, n, start;
	int r;

	while (i < len) {
		if (fs_zero_block(p, len, i, off, &n)) {
			i += n;
			continue;
		}
		/* Data up to the next whole zero block. */
		start = i;
		for (i += n; i < len && !fs_zero_block(p, len, i, off, &n);
		    i += n)
			;
		r = fs_pwrite_full(fd, p + start, i - start, off + start);
		if (r != 0)
			return r;
		*written += i - start;
	}
	return 0;
}

int
fs_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	ssize_t n;

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off) {
		errno = EOVERFLOW;
		return -AR_EIO;
	}
	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0) {
			errno = EIO;
			return -AR_EIO;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

ssize_t
fs_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;

	if (len > SSIZE_MAX) {
		errno = EINVAL;
		return -AR_EIO;
	}
	while (done < len) {
		n = read(fd, p + done, len - done);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t
fs_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;

	if (len > SSIZE_MAX || off > (uint64_t)INT64_MAX ||
	    len > (uint64_t)INT64_MAX - off) {
		errno = EINVAL;
		return -AR_EIO;
	}
	while (done < len) {
		n = pread(fd, p + done, len - done, (off_t)(off + done));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int
fs_open_dir(const char *path, int *fd)
{
	int r;

	do {
		r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return -AR_EIO;
	*fd = r;
	return 0;
}

/*
 * The rules of wire_path_valid(), kept here so that confinement does not
 * depend on the wire module: whatever reaches the filesystem is checked
 * again where it is used.
 */
static int
fs_path_valid(const char *p, size_t len)
{
	size_t i, start = 0, n;

	if (len == 0)
		return 1;
	if (len > LIMIT_PATH_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i < len && p[i] == '\0')
			return 0;
		if (i < len && p[i] != '/')
			continue;
		n = i - start;
		if (n == 0 || n > LIMIT_NAME_MAX)
			return 0;
		if (n == 1 && p[start] == '.')
			return 0;
		if (n == 2 && p[start] == '.' && p[start + 1] == '.')
			return 0;
		start = i + 1;
	}
	return 1;
}

/* A symlink met on the way, or an escape, is the peer's doing. */
static int
fs_open_errno(void)
{
	if (errno == ELOOP || errno == EXDEV)
		return -AR_EPROTO;
	return -AR_EIO;
}

/* How fs_openat2 resolves: a wire path (beneath, no symlink at all) or
 * an operator's path under another node's mount (in root). */
enum fs_resolve {
	FS_RESOLVE_BENEATH,
	FS_RESOLVE_IN_ROOT,
};

/*
 * One openat2 call. Returns the fd, -1 with errno for a real answer, or
 * -2 when openat2 cannot be used here (missing, or refused by a seccomp
 * filter, which answers EPERM for syscalls it does not know).
 */
static int
fs_openat2(int rootfd, const char *relpath, int flags, mode_t mode,
    enum fs_resolve how_resolve)
{
#ifdef FS_HAVE_OPENAT2
	struct open_how how;
	long r;
	int tries = 0;

	if (fs_no_openat2 || fs_force_fallback)
		return -2;
	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(unsigned int)flags;
	/* openat2 rejects a mode that open(2) would ignore. */
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		how.mode = mode & 07777;
	/*
	 * No RESOLVE_NO_XDEV: a bind mount inside the tree is the
	 * operator's choice and does not lead outside it.
	 */
	how.resolve = how_resolve == FS_RESOLVE_IN_ROOT ?
	    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS :
	    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	for (;;) {
		r = syscall(SYS_openat2, rootfd, relpath, &how, sizeof how);
		if (r >= 0)
			return (int)r;
		if (errno == EINTR)
			continue;
		/* A concurrent rename can make the kernel unsure that
		 * resolution stayed beneath; asking again is safe. */
		if (errno == EAGAIN && ++tries < 8)
			continue;
		break;
	}
	if (errno == ENOSYS) {
		fs_no_openat2 = 1;
		return -2;
	}
	if (errno == EPERM || errno == EAGAIN)
		return -2;
	return -1;
#else
	(void)rootfd;
	(void)relpath;
	(void)flags;
	(void)mode;
	(void)how_resolve;
	return -2;
#endif
}

/*
 * O_NOFOLLOW|O_DIRECTORY (or O_PATH) on a symlink answers ENOTDIR, as
 * for a file: report a symlink as one.
 */
static int
fs_link_errno(int dirfd, const char *name, int err)
{
	struct stat st;

	if (err == ENOTDIR &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return ELOOP;
	return err;
}

/*
 * The walk for kernels without openat2: every directory on the way is
 * opened O_PATH|O_NOFOLLOW, so a symlink stops the walk, and relpath has
 * no ".." to climb with. Returns the fd or -1 with errno; ELOOP stands
 * for any symlink met.
 */
static int
fs_open_walk(int rootfd, const char *relpath, int flags, mode_t mode)
{
	char comp[LIMIT_NAME_MAX + 1];
	const char *p = relpath, *slash;
	size_t n;
	int cur = rootfd, next, saved;

	for (;;) {
		slash = strchr(p, '/');
		if (slash == NULL)
			break;
		n = (size_t)(slash - p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		do {
			next = openat(cur, comp,
			    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} while (next == -1 && errno == EINTR);
		if (next == -1) {
			saved = fs_link_errno(cur, comp, errno);
			if (cur != rootfd)
				close(cur);
			errno = saved;
			return -1;
		}
		if (cur != rootfd)
			close(cur);
		cur = next;
		p = slash + 1;
	}
	do {
		next = openat(cur, p, flags, mode);
	} while (next == -1 && errno == EINTR);
	saved = next == -1 ? fs_link_errno(cur, p, errno) : 0;
	if (cur != rootfd)
		close(cur);
	errno = saved;
	return next;
}

int
fs_open_beneath(int rootfd, const char *relpath, int flags, mode_t mode,
    int *fd)
{
	size_t len;
	int r;

	len = strnlen(relpath, LIMIT_PATH_MAX + 1);
	if (!fs_path_valid(relpath, len)) {
		errno = EINVAL;
		return -AR_EPROTO;
	}
	flags |= O_NOFOLLOW | O_CLOEXEC;
#ifdef O_LARGEFILE
	/* The raw syscall does not get the flag glibc's open adds. */
	flags |= O_LARGEFILE;
#endif
	/* openat2 refuses an empty path; "." beneath the root is the root. */
	if (len == 0)
		relpath = ".";
	r = fs_openat2(rootfd, relpath, flags, mode, FS_RESOLVE_BENEATH);
	/* openat2 does not say whether ENOTDIR came from a symlink or a
	 * file: the walk, as confined, finds out. */
	if (r == -2 || (r == -1 && errno == ENOTDIR))
		r = fs_open_walk(rootfd, relpath, flags, mode);
	if (r < 0)
		return fs_open_errno();
	*fd = r;
	return 0;
}

int
fs_open_in_root(int rootfd, const char *path, int flags, int *fd)
{
	const char *rel = path;
	int r;

	flags |= O_CLOEXEC | O_NOCTTY;
#ifdef O_LARGEFILE
	flags |= O_LARGEFILE;
#endif
	r = fs_openat2(rootfd, path, flags, 0, FS_RESOLVE_IN_ROOT);
	if (r == -2) {
		/* Without openat2: the walk, which follows no symlink and
		 * refuses "..", confines as well, only more strictly. */
		while (*rel == '/')
			rel++;
		return fs_open_beneath(rootfd, rel, flags, 0, fd);
	}
	if (r < 0)
		return -AR_EIO;
	*fd = r;
	return 0;
}

int
fs_open_parent(int rootfd, const char *relpath, int *dirfd,
    const char **base)
{
	char dir[LIMIT_PATH_MAX + 1];
	const char *slash;
	size_t len, n;
	int r;

	len = strnlen(relpath, LIMIT_PATH_MAX + 1);
	if (len == 0 || !fs_path_valid(relpath, len)) {
		errno = EINVAL;
		return -AR_EPROTO;
	}
	slash = strrchr(relpath, '/');
	if (slash == NULL) {
		r = fs_open_beneath(rootfd, "", O_RDONLY | O_DIRECTORY, 0,
		    dirfd);
		if (r == 0)
			*base = relpath;
		return r;
	}
	n = (size_t)(slash - relpath);
	memcpy(dir, relpath, n);
	dir[n] = '\0';
	r = fs_open_beneath(rootfd, dir, O_RDONLY | O_DIRECTORY, 0, dirfd);
	if (r == 0)
		*base = slash + 1;
	return r;
}

static int
fs_random(unsigned char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = getrandom(buf, len, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -AR_EIO;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_tmpfile(int dirfd, const char *base, int *fd, char *name,
    size_t namelen)
{
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[FS_TMP_RAND];
	size_t plen = sizeof FS_TMP_PREFIX - 1, blen, off, i;
	int tries, r;

	if (base == NULL)
		base = "";
	blen = strnlen(base, FS_TMP_BASE);
	/* A '/' would put the file somewhere other than dirfd. */
	if (memchr(base, '/', blen) != NULL) {
		errno = EINVAL;
		return -AR_EINTERNAL;
	}
	if (namelen < plen + blen + 1 + FS_TMP_RAND + 1) {
		errno = ENAMETOOLONG;
		return -AR_ENOMEM;
	}
	memcpy(name, FS_TMP_PREFIX, plen);
	memcpy(name + plen, base, blen);
	off = plen + blen;
	name[off++] = '.';
	name[off + FS_TMP_RAND] = '\0';

	for (tries = 0; tries < FS_TMP_TRIES; tries++) {
		if (fs_random(rnd, sizeof rnd) != 0)
			return -AR_EIO;
		for (i = 0; i < FS_TMP_RAND; i++)
			name[off + i] = alnum[rnd[i] % (sizeof alnum - 1)];
		do {
			r = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
		} while (r == -1 && errno == EINTR);
		if (r >= 0) {
			*fd = r;
			return 0;
		}
		if (errno != EEXIST)
			return -AR_EIO;
	}
	return -AR_EIO;
}

int
fs_fsync_dir(int dirfd)
{
	int r;

	do {
		r = fsync(dirfd);
	} while (r == -1 && errno == EINTR);
	return r == 0 ? 0 : -AR_EIO;
}

/* 1 when name is something a directory can hold: not "", ".", "..". */
static int
fs_name_ok(const char *name)
{
	if (name[0] == '\0')
		return 0;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	return 1;
}

/*
 * Open the directory that holds dirfd/name and point *base at the last
 * component. name is an operator's or a caller's path (state files),
 * not wire data: wire paths go through fs_open_parent.
 */
static int
fs_open_holder(int dirfd, const char *name, int *pfd, const char **base)
{
	char dir[PATH_MAX];
	const char *slash, *dirpath;
	size_t n;
	int r;

	slash = strrchr(name, '/');
	if (slash == NULL) {
		dirpath = ".";
		*base = name;
	} else {
		n = (size_t)(slash - name);
		if (n == 0)
			n = 1;	/* "/name": the holder is "/" */
		if (n >= sizeof dir) {
			errno = ENAMETOOLONG;
			return -AR_EIO;
		}
		memcpy(dir, name, n);
		dir[n] = '\0';
		dirpath = dir;
		*base = slash + 1;
	}
	if (!fs_name_ok(*base)) {
		errno = EINVAL;
		return -AR_EIO;
	}
	do {
		r = openat(dirfd, dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return -AR_EIO;
	*pfd = r;
	return 0;
}

int
fs_write_durable(int dirfd, const char *name, const void *data,
    size_t len, mode_t mode)
{
	char tmp[NAME_MAX + 1];
	const char *base;
	int pfd, fd = -1, r, saved;

	r = fs_open_holder(dirfd, name, &pfd, &base);
	if (r != 0)
		return r;
	r = fs_tmpfile(pfd, base, &fd, tmp, sizeof tmp);
	if (r != 0)
		goto out;
	r = fs_write_full(fd, data, len);
	if (r != 0)
		goto fail;
	/* fchmod ignores the umask: the mode asked for is the mode kept. */
	if (fchmod(fd, mode & 07777) == -1) {
		r = -AR_EIO;
		goto fail;
	}
	if (fsync(fd) == -1) {
		r = -AR_EIO;
		goto fail;
	}
	r = close(fd);
	fd = -1;
	if (r == -1 && errno != EINTR) {
		r = -AR_EIO;
		goto fail;
	}
	if (renameat(pfd, tmp, pfd, base) == -1) {
		r = -AR_EIO;
		goto fail;
	}
	r = fs_fsync_dir(pfd);
	goto out;

fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlinkat(pfd, tmp, 0);
	errno = saved;
out:
	saved = errno;
	close(pfd);
	errno = saved;
	return r;
}

/* fs_read_small, with extra flags for openat (O_NOFOLLOW). */
static int
fs_read_small_flags(int dirfd, const char *name, int extra, char *buf,
    size_t buflen, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd, saved;

	if (buflen == 0)
		return -AR_ENOMEM;
	/* O_NONBLOCK so that a fifo put where a file was expected cannot
	 * hang us in open; it is refused below. */
	do {
		fd = openat(dirfd, name,
		    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | extra);
	} while (fd == -1 && errno == EINTR);
	if (fd == -1)
		return -AR_EIO;
	if (fstat(fd, &st) == -1) {
		n = -AR_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		n = -AR_EIO;
		goto out;
	}
	/* One byte more than fits tells "too big" from "exactly full". */
	n = fs_read_full(fd, buf, buflen);
	if (n < 0)
		goto out;
	if ((size_t)n >= buflen) {
		buf[buflen - 1] = '\0';
		errno = EFBIG;
		n = -AR_ENOMEM;
		goto out;
	}
	buf[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
out:
	saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? (int)n : 0;
}

int
fs_read_small(int dirfd, const char *name, char *buf, size_t buflen,
    size_t *len)
{
	return fs_read_small_flags(dirfd, name, 0, buf, buflen, len);
}

int
fs_read_entry(int dirfd, const char *name, char *buf, size_t buflen,
    size_t *len)
{
	return fs_read_small_flags(dirfd, name, O_NOFOLLOW, buf, buflen,
	    len);
}

int
fs_opendir(int dirfd, DIR **dir)
{
	int dfd, saved;

	dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (dfd == -1)
		return -AR_EIO;
	*dir = fdopendir(dfd);
	if (*dir == NULL) {
		saved = errno;
		close(dfd);
		errno = saved;
		return -AR_EIO;
	}
	/* The dup shares dirfd's offset: start from the top, however
	 * dirfd was read before. */
	rewinddir(*dir);
	return 0;
}

/* The next entry of dir but "." and "..", in *de (NULL at the end);
 * -AR_EIO when readdir fails. */
static int
fs_next_entry(DIR *dir, struct dirent **de)
{
	do {
		errno = 0;
		*de = readdir(dir);
		if (*de == NULL)
			return errno != 0 ? -AR_EIO : 0;
	} while (!fs_name_ok((*de)->d_name));
	return 0;
}

/* A batch of subdirectory names met in one pass, NUL-separated. */
struct fs_batch {
	char *buf;
	size_t len;
};

static int fs_remove_at(int dirfd, const char *name, int depth,
    enum fs_remove_how how);

/* ---------------------------------------------------------------- */
/* The release thread */

/*
 * Unlinking a big file frees its blocks inside the unlink: for each GB,
 * about 0.35 s on ext4 mounted with discard (the discard is issued
 * there and then), tens of ms without. A follower that deletes a big
 * file would not ask for its next batch meanwhile: the small file
 * behind a big deletion waited for it. So the file is pinned by an
 * O_PATH descriptor before its name goes, and the last reference, with
 * the freeing, is dropped by this thread. The name is gone (and durable
 * once its directory is fsynced) at once; a crash before the close
 * leaves an orphan inode, which the file system frees at mount.
 */
static pthread_mutex_t fs_release_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fs_release_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fs_release_done_cv = PTHREAD_COND_INITIALIZER;
static int fs_release_fds[FS_RELEASE_MAX];
static size_t fs_release_n;
static size_t fs_release_busy;	/* queued or being closed */
static int fs_release_held;	/* fs_release_hold */
static int fs_release_started;

static void *
fs_release_thread(void *arg)
{
	int fd;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&fs_release_mu);
		while (fs_release_n == 0 || fs_release_held)
			pthread_cond_wait(&fs_release_cv, &fs_release_mu);
		fd = fs_release_fds[--fs_release_n];
		pthread_mutex_unlock(&fs_release_mu);
		close(fd);
		pthread_mutex_lock(&fs_release_mu);
		if (--fs_release_busy == 0)
			pthread_cond_broadcast(&fs_release_done_cv);
		pthread_mutex_unlock(&fs_release_mu);
	}
	return NULL;
}

int
fs_release_wait(unsigned timeout_ms)
{
	struct timespec until;
	int had, r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fs_release_mu);
	had = fs_release_busy > 0;
	while (fs_release_busy > 0 && r == 0)
		r = pthread_cond_timedwait(&fs_release_done_cv,
		    &fs_release_mu, &until);
	if (fs_release_busy > 0)
		had = -1;
	pthread_mutex_unlock(&fs_release_mu);
	return had;
}

void
fs_release_hold(int hold)
{
	pthread_mutex_lock(&fs_release_mu);
	fs_release_held = hold;
	pthread_cond_signal(&fs_release_cv);
	pthread_mutex_unlock(&fs_release_mu);
}

/* Start the thread once, with every signal blocked (they are the
 * main thread's); 0, or -AR_ENOMEM when it cannot run. */
static int
fs_release_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	if (fs_release_started)
		return 0;
	if (pthread_attr_init(&attr) != 0)
		return -AR_ENOMEM;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t, &attr, fs_release_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return -AR_ENOMEM;
	fs_release_started = 1;
	return 0;
}

/* fd's last reference goes in the release thread, or here when it
 * cannot take it. */
static void
fs_release_fd(int fd)
{
	pthread_mutex_lock(&fs_release_mu);
	if (fs_release_start() == 0 && fs_release_n < FS_RELEASE_MAX) {
		fs_release_fds[fs_release_n++] = fd;
		fs_release_busy++;
		pthread_cond_signal(&fs_release_cv);
		fd = -1;
	}
	pthread_mutex_unlock(&fs_release_mu);
	if (fd >= 0)
		close(fd);
}

/* unlinkat(dirfd, name, 0): 0, or -AR_EIO with its errno; with how
 * FS_REMOVE_RELEASED a big regular file's blocks are freed by the
 * release thread. */
static int
fs_unlink_file(int dirfd, const char *name, enum fs_remove_how how)
{
	struct stat st;
	int fd = -1, saved;

	if (how == FS_REMOVE_RELEASED) {
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 ||
		    (uint64_t)st.st_blocks * 512 < FS_RELEASE_MIN)) {
			close(fd);
			fd = -1;
		}
	}
	if (unlinkat(dirfd, name, 0) != 0) {
		saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -AR_EIO;
	}
	if (fd >= 0)
		fs_release_fd(fd);
	return 0;
}

/*
 * Empty the directory open as fd. Non-directories go at once; names of
 * subdirectories are batched and descended into after the stream is
 * closed, and passes repeat until one finds nothing to do.
 */
static int
fs_empty_dir(int fd, int depth, enum fs_remove_how how)
{
	struct fs_batch b = { NULL, 0 };
	struct dirent *de;
	struct stat st;
	DIR *dir;
	size_t off, n;
	int r = 0, stall = 0, progress, full, saved;

	for (;;) {
		r = fs_opendir(fd, &dir);
		if (r != 0)
			break;
		b.len = 0;
		progress = 0;
		full = 0;
		for (;;) {
			r = fs_next_entry(dir, &de);
			if (r != 0 || de == NULL)
				break;
			if (fs_unlink_file(fd, de->d_name, how) == 0 ||
			    errno == ENOENT) {
				progress = 1;
				continue;
			}
			/* Linux answers EISDIR, POSIX allows EPERM. */
			if (errno != EISDIR && errno != EPERM) {
				r = -AR_EIO;
				break;
			}
			saved = errno;
			if (fstatat(fd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1) {
				if (errno == ENOENT) {
					progress = 1;
					continue;
				}
				r = -AR_EIO;
				break;
			}
			if (!S_ISDIR(st.st_mode)) {
				errno = saved;
				r = -AR_EIO;
				break;
			}
			n = strlen(de->d_name) + 1;
			if (b.buf == NULL) {
				b.buf = malloc(FS_REMOVE_BATCH);
				if (b.buf == NULL) {
					r = -AR_ENOMEM;
					break;
				}
			}
			if (b.len + n > FS_REMOVE_BATCH) {
				full = 1;
				continue;
			}
			memcpy(b.buf + b.len, de->d_name, n);
			b.len += n;
		}
		saved = errno;
		closedir(dir);
		errno = saved;
		if (r != 0)
			break;
		for (off = 0; off < b.len; off += strlen(b.buf + off) + 1) {
			r = fs_remove_at(fd, b.buf + off, depth + 1, how);
			if (r != 0)
				break;
			progress = 1;
		}
		if (r != 0)
			break;
		if (b.len == 0 && !full)
			break;	/* the caller's rmdir tells if all went */
		if (!progress && ++stall >= FS_REMOVE_STALL) {
			errno = ENOTEMPTY;
			r = -AR_EIO;
			break;
		}
		if (progress)
			stall = 0;
	}
	saved = errno;
	free(b.buf);
	errno = saved;
	return r;
}

/* Remove dirfd/name, descending if it is a directory (never a link). */
static int
fs_remove_at(int dirfd, const char *name, int depth, enum fs_remove_how how)
{
	struct stat st;
	int fd, r, saved, stall;

	for (stall = 0; stall < FS_REMOVE_STALL; stall++) {
		if (fs_unlink_file(dirfd, name, how) == 0 || errno == ENOENT)
			return 0;
		if (errno != EISDIR && errno != EPERM)
			return -AR_EIO;
		saved = errno;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return errno == ENOENT ? 0 : -AR_EIO;
		if (!S_ISDIR(st.st_mode)) {
			errno = saved;
			return -AR_EIO;
		}
		if (depth >= FS_REMOVE_DEPTH) {
			errno = ELOOP;
			return -AR_ENOMEM;
		}
		/* O_NOFOLLOW: if the directory was swapped for a link since
		 * fstatat, this fails instead of entering the link. */
		do {
			fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		} while (fd == -1 && errno == EINTR);
		if (fd == -1) {
			if (errno == ENOENT)
				return 0;
			if (errno == ELOOP || errno == ENOTDIR)
				continue;	/* swapped: look again */
			return -AR_EIO;
		}
		r = fs_empty_dir(fd, depth, how);
		saved = errno;
		close(fd);
		errno = saved;
		if (r != 0)
			return r;
		if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 ||
		    errno == ENOENT)
			return 0;
		/* Filled again behind our back, or readdir skipped an
		 * entry while we deleted: another round. */
		if (errno != ENOTEMPTY && errno != EEXIST)
			return -AR_EIO;
	}
	return -AR_EIO;
}

static int
fs_remove_named(int dirfd, const char *name, enum fs_remove_how how)
{
	const char *last;
	size_t len;

	/*
	 * A trailing '/' would make openat follow a final symlink, and
	 * "." or ".." would empty the wrong directory.
	 */
	len = strlen(name);
	last = strrchr(name, '/');
	last = last == NULL ? name : last + 1;
	if (len == 0 || !fs_name_ok(last)) {
		errno = EINVAL;
		return -AR_EIO;
	}
	return fs_remove_at(dirfd, name, 0, how);
}

int
fs_remove_tree(int dirfd, const char *name)
{
	return fs_remove_named(dirfd, name, FS_REMOVE_NOW);
}

/*
 * Start writing back each FS_WRITEBACK_CHUNK that the write of [end -
 * len, end) completed, and wait for the chunk before it: at most two
 * chunks of a big file are in flight at a time. Without the wait, a
 * writer faster than the disk (a lane's file arriving at loopback speed,
 * a copy in the kernel) queued hundreds of MB, and any fsync of the same
 * file system, a small file's next to it, waited for the device to
 * take them all (up to 0.6 s measured: the journal commit and the cache
 * flush queue behind the queued writes). Only a hint: errors surface
 * at the fsync that follows.
 */
void
fs_writeback(int fd, uint64_t end, uint64_t len)
{
	uint64_t c, last;

	if (len == 0 || len > end)
		return;
	last = end / FS_WRITEBACK_CHUNK;
	for (c = (end - len) / FS_WRITEBACK_CHUNK; c < last; c++) {
		(void)sync_file_range(fd, (off_t)(c * FS_WRITEBACK_CHUNK),
		    FS_WRITEBACK_CHUNK, SYNC_FILE_RANGE_WRITE);
		if (c > 0)
			(void)sync_file_range(fd,
			    (off_t)((c - 1) * FS_WRITEBACK_CHUNK),
			    FS_WRITEBACK_CHUNK, SYNC_FILE_RANGE_WAIT_BEFORE |
			    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	}
}

int
fs_remove_tree_bg(int dirfd, const char *name)
{
	return fs_remove_named(dirfd, name, FS_REMOVE_RELEASED);
}

/*
 * fs_count_tree for the directory open as fd (consumed: the stream owns
 * it, so each level holds one descriptor), depth levels down.
 */
static int
fs_count_in(int fd, int depth, uint64_t limit, uint64_t *count)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int sub, isdir, r = 0, saved;

	dir = fdopendir(fd);
	if (dir == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -AR_EIO;
	}
	while (*count < limit) {
		r = fs_next_entry(dir, &de);
		if (r != 0 || de == NULL)
			break;
		/* Our temp files are not part of the tree. */
		if (strncmp(de->d_name, FS_TMP_PREFIX,
		    strlen(FS_TMP_PREFIX)) == 0)
			continue;
		(*count)++;
		isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN)
			isdir = fstatat(fd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		if (!isdir || *count >= limit)
			continue;
		if (depth >= FS_REMOVE_DEPTH) {
			errno = ELOOP;
			r = -AR_ENOMEM;
			break;
		}
		do {
			sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		} while (sub == -1 && errno == EINTR);
		if (sub == -1) {
			/* Gone or swapped for another type since readdir. */
			if (errno == ENOENT || errno == ENOTDIR ||
			    errno == ELOOP)
				continue;
			r = -AR_EIO;
			break;
		}
		r = fs_count_in(sub, depth + 1, limit, count);
		if (r != 0)
			break;
	}
	saved = errno;
	closedir(dir);
	errno = saved;
	return r;
}

int
fs_count_tree(int dirfd, const char *name, uint64_t limit, uint64_t *count)
{
	int fd;

	/* A descriptor of our own, even for dirfd itself: a stream on a
	 * dup would move the offset that dirfd's other users share. */
	do {
		fd = openat(dirfd, name != NULL ? name : ".", O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} while (fd == -1 && errno == EINTR);
	if (fd == -1)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ?
		    0 : -AR_EIO;
	return fs_count_in(fd, name != NULL, limit, count);
}

int
fs_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len, i;
	int end;

	len = strnlen(path, sizeof buf);
	if (len == 0) {
		errno = ENOENT;
		return -AR_EIO;
	}
	if (len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -AR_EIO;
	}
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		end = i == len;
		if (!end && (buf[i] != '/' || buf[i - 1] == '/'))
			continue;
		if (end && buf[i - 1] == '/')
			break;	/* trailing slash: done at the last '/' */
		buf[i] = '\0';
		if (mkdir(buf, mode) == -1) {
			if (errno != EEXIST)
				return -AR_EIO;
			/* Operator paths may go through a symlink. */
			if (stat(buf, &st) == -1)
				return -AR_EIO;
			if (!S_ISDIR(st.st_mode)) {
				errno = ENOTDIR;
				return -AR_EIO;
			}
		}
		if (!end)
			buf[i] = '/';
	}
	return 0;
}
