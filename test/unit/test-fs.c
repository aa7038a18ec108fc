/*
 * test-fs.c: confinement, temp files, durable writes, tree removal.
 *
 * Every test works in its own mkdtemp() directory: "root" is the tree
 * handed to fs_open_beneath, "outside" is what an escape would reach.
 * Confinement tests run twice, with openat2 and with the fallback walk.
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
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "scratch.h"

struct tctx {
	char top[PATH_MAX];	/* the mkdtemp() directory */
	char root[PATH_MAX];	/* top/root: the tree */
	char out[PATH_MAX];	/* top/outside */
	int topfd;
	int rootfd;
};

/*
 * getrandom() interposed for the exclusivity test: with rand_fixed set
 * every temp name fs_tmpfile tries is the same one, so a collision can
 * be arranged on purpose.
 */
static int rand_fixed;

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	if (rand_fixed) {
		memset(buf, 0, len);
		return (ssize_t)len;
	}
	return syscall(SYS_getrandom, buf, len, flags);
}

static void
cat(char *out, size_t outlen, const char *a, const char *b)
{
	int n;

	n = snprintf(out, outlen, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < outlen);
}

static void
put(int dirfd, const char *name, const char *content)
{
	int fd;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_full(fd, content, strlen(content)), 0);
	assert_int_equal(close(fd), 0);
}

/* Content of dirfd/name (must exist and hold less than 256 bytes). */
static void
expect_content(int dirfd, const char *name, const char *content)
{
	char buf[256];
	size_t len;

	assert_int_equal(fs_read_small(dirfd, name, buf, sizeof buf, &len), 0);
	assert_int_equal(len, strlen(content));
	assert_memory_equal(buf, content, len);
}

static int
count_entries(int dirfd)
{
	DIR *d;
	int n = 0, fd;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while (scratch_readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static int
exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * root/
 *   sub/deep/f      "deep"
 *   sub/file        "file"
 *   esc   -> ../outside        (relative, leads out)
 *   abs   -> /abs/path/outside (absolute, leads out)
 *   inlink -> sub              (stays inside, still refused)
 *   flink -> sub/file
 *   dangling -> nowhere
 * outside/secret    "secret"
 */
static int
setup(void **state)
{
	struct tctx *t;
	char abs[PATH_MAX];

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-fs"), 0);
	cat(t->root, sizeof t->root, t->top, "root");
	cat(t->out, sizeof t->out, t->top, "outside");
	t->topfd = open(t->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->topfd >= 0);
	assert_int_equal(mkdirat(t->topfd, "root", 0755), 0);
	assert_int_equal(mkdirat(t->topfd, "outside", 0755), 0);
	put(t->topfd, "outside/secret", "secret");
	t->rootfd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->rootfd >= 0);
	assert_int_equal(mkdirat(t->rootfd, "sub", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "sub/deep", 0755), 0);
	put(t->rootfd, "sub/deep/f", "deep");
	put(t->rootfd, "sub/file", "file");
	assert_int_equal(symlinkat("../outside", t->rootfd, "esc"), 0);
	cat(abs, sizeof abs, t->top, "outside");
	assert_int_equal(symlinkat(abs, t->rootfd, "abs"), 0);
	assert_int_equal(symlinkat("sub", t->rootfd, "inlink"), 0);
	assert_int_equal(symlinkat("sub/file", t->rootfd, "flink"), 0);
	assert_int_equal(symlinkat("nowhere", t->rootfd, "dangling"), 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	fs_force_fallback = 0;
	rand_fixed = 0;
	close(t->rootfd);
	close(t->topfd);
	scratch_remove(t->top);
	free(t);
	return 0;
}

static void
same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_int_equal(sa.st_dev, sb.st_dev);
	assert_int_equal(sa.st_ino, sb.st_ino);
}

static void
test_beneath_refuses(void **state)
{
	static const char *const bad[] = {
		"../x", "..", ".", "/etc/passwd", "/", "a//b", "a/./b",
		"./a", "a/..", "a/", "sub/", "sub/../sub/file", "//sub",
	};
	struct tctx *t = *state;
	char longname[300], longpath[5000];
	size_t i;
	int fd = -1;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(fs_open_beneath(t->rootfd, bad[i], O_RDONLY,
		    0, &fd), -AR_EPROTO);
	}
	memset(longname, 'n', 256);
	longname[256] = '\0';
	assert_int_equal(fs_open_beneath(t->rootfd, longname,
	    O_RDONLY | O_CREAT, 0600, &fd), -AR_EPROTO);
	for (i = 0; i + 2 < sizeof longpath; i += 2) {
		longpath[i] = 'd';
		longpath[i + 1] = '/';
	}
	longpath[4096] = '\0';
	longpath[4095] = 'd';
	assert_int_equal(fs_open_beneath(t->rootfd, longpath, O_RDONLY, 0,
	    &fd), -AR_EPROTO);

	/* Symlinks anywhere on the way, whether they lead out or not. */
	assert_int_equal(fs_open_beneath(t->rootfd, "esc/secret", O_RDONLY,
	    0, &fd), -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "abs/secret", O_RDONLY,
	    0, &fd), -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "inlink/deep/f", O_RDONLY,
	    0, &fd), -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "inlink/file", O_RDONLY,
	    0, &fd), -AR_EPROTO);
	/* ... and as the last component. */
	assert_int_equal(fs_open_beneath(t->rootfd, "esc", O_RDONLY, 0, &fd),
	    -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "esc",
	    O_RDONLY | O_DIRECTORY, 0, &fd), -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "flink", O_RDONLY, 0, &fd),
	    -AR_EPROTO);
	assert_int_equal(fs_open_beneath(t->rootfd, "dangling",
	    O_WRONLY | O_CREAT, 0600, &fd), -AR_EPROTO);
	assert_false(exists(t->rootfd, "nowhere"));
	assert_int_equal(fs_open_beneath(t->rootfd, "esc/new",
	    O_WRONLY | O_CREAT, 0600, &fd), -AR_EPROTO);
	assert_false(exists(t->topfd, "outside/new"));
	assert_int_equal(fd, -1);

	/* Not found, or not a directory: I/O errors with errno kept. */
	assert_int_equal(fs_open_beneath(t->rootfd, "sub/nope", O_RDONLY, 0,
	    &fd), -AR_EIO);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_open_beneath(t->rootfd, "nope/x", O_RDONLY, 0,
	    &fd), -AR_EIO);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_open_beneath(t->rootfd, "sub/file/x", O_RDONLY, 0,
	    &fd), -AR_EIO);
	assert_int_equal(errno, ENOTDIR);
	/* The root is a directory: it cannot be opened for writing. */
	assert_int_equal(fs_open_beneath(t->rootfd, "", O_WRONLY, 0, &fd),
	    -AR_EIO);
	assert_int_equal(fd, -1);
}

static void
test_beneath_accepts(void **state)
{
	struct tctx *t = *state;
	char buf[64], name[300];
	struct stat st;
	ssize_t n;
	int fd = -1, dfd;

	assert_int_equal(fs_open_beneath(t->rootfd, "sub/deep/f", O_RDONLY, 0,
	    &fd), 0);
	n = fs_read_full(fd, buf, sizeof buf);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "deep", 4);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* "" is the root itself. */
	assert_int_equal(fs_open_beneath(t->rootfd, "", O_RDONLY | O_DIRECTORY,
	    0, &fd), 0);
	same_file(fd, t->rootfd);
	close(fd);

	/* Creation beneath, with the mode asked for (less the umask). */
	umask(022);
	assert_int_equal(fs_open_beneath(t->rootfd, "sub/deep/new",
	    O_WRONLY | O_CREAT | O_EXCL, 0640, &fd), 0);
	assert_int_equal(fs_write_full(fd, "x", 1), 0);
	close(fd);
	assert_int_equal(fstatat(t->rootfd, "sub/deep/new", &st,
	    AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);

	/* Any byte but '/' and NUL, and a 255-byte component. */
	assert_int_equal(fs_open_beneath(t->rootfd, "sub/n\nl\xff\x01",
	    O_WRONLY | O_CREAT, 0600, &fd), 0);
	close(fd);
	assert_true(exists(t->rootfd, "sub/n\nl\xff\x01"));
	memcpy(name, "sub/", 4);
	memset(name + 4, 'n', 255);
	name[259] = '\0';
	assert_int_equal(fs_open_beneath(t->rootfd, name, O_WRONLY | O_CREAT,
	    0600, &fd), 0);
	close(fd);

	/* A directory, then its parent through fs_open_parent. */
	assert_int_equal(fs_open_beneath(t->rootfd, "sub/deep",
	    O_RDONLY | O_DIRECTORY, 0, &dfd), 0);
	{
		const char *base = NULL;
		int pfd = -1;

		assert_int_equal(fs_open_parent(t->rootfd, "sub/deep/f", &pfd,
		    &base), 0);
		same_file(pfd, dfd);
		assert_string_equal(base, "f");
		close(pfd);
		assert_int_equal(fs_open_parent(t->rootfd, "top", &pfd,
		    &base), 0);
		same_file(pfd, t->rootfd);
		assert_string_equal(base, "top");
		close(pfd);
		/* The last component may be anything, even a link: the
		 * caller decides what to do with it. */
		assert_int_equal(fs_open_parent(t->rootfd, "esc", &pfd,
		    &base), 0);
		close(pfd);
		pfd = -1;
		assert_int_equal(fs_open_parent(t->rootfd, "", &pfd, &base),
		    -AR_EPROTO);
		assert_int_equal(fs_open_parent(t->rootfd, "esc/secret", &pfd,
		    &base), -AR_EPROTO);
		assert_int_equal(fs_open_parent(t->rootfd, "inlink/deep/f",
		    &pfd, &base), -AR_EPROTO);
		assert_int_equal(fs_open_parent(t->rootfd, "a/../b", &pfd,
		    &base), -AR_EPROTO);
		assert_int_equal(fs_open_parent(t->rootfd, "sub/file/x", &pfd,
		    &base), -AR_EIO);
		assert_int_equal(errno, ENOTDIR);
		assert_int_equal(pfd, -1);
	}
	close(dfd);
}

static int
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static void
test_tmpfile(void **state)
{
	struct tctx *t = *state;
	char names[100][NAME_MAX + 1], big[256], expect[128];
	size_t plen = strlen(FS_TMP_PREFIX), len;
	struct stat st;
	int fd, i, j;

	umask(0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(fs_tmpfile(t->rootfd, "target", &fd, names[i],
		    sizeof names[i]), 0);
		len = strlen(names[i]);
		assert_int_equal(len, plen + 6 + 1 + 6);
		assert_memory_equal(names[i], FS_TMP_PREFIX, plen);
		assert_memory_equal(names[i] + plen, "target.", 7);
		for (j = 0; j < 6; j++)
			assert_true(is_alnum(names[i][plen + 7 + j]));
		assert_int_equal(fstat(fd, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(st.st_size, 0);
		assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
		close(fd);
		for (j = 0; j < i; j++)
			assert_string_not_equal(names[i], names[j]);
	}
	/* 100 files plus the six entries of the fixture. */
	assert_int_equal(count_entries(t->rootfd), 100 + 6);

	/* A long base is cut so that the name stays short. */
	memset(big, 'b', 255);
	big[255] = '\0';
	assert_int_equal(fs_tmpfile(t->rootfd, big, &fd, names[0],
	    sizeof names[0]), 0);
	close(fd);
	assert_int_equal(strlen(names[0]), plen + 40 + 1 + 6);
	assert_true(strlen(names[0]) <= NAME_MAX);

	assert_int_equal(fs_tmpfile(t->rootfd, "a/b", &fd, names[0],
	    sizeof names[0]), -AR_EINTERNAL);
	assert_int_equal(fs_tmpfile(t->rootfd, "target", &fd, names[0], 20),
	    -AR_ENOMEM);

	/*
	 * Exclusivity: with every random draw the same, the first call
	 * takes the name, and a later one finds it taken every time;
	 * a symlink planted under that name is not followed either.
	 */
	rand_fixed = 1;
	assert_int_equal(fs_tmpfile(t->rootfd, "x", &fd, names[0],
	    sizeof names[0]), 0);
	close(fd);
	len = (size_t)snprintf(expect, sizeof expect, "%sx.AAAAAA",
	    FS_TMP_PREFIX);
	assert_int_equal(strlen(names[0]), len);
	assert_string_equal(names[0], expect);
	errno = 0;
	assert_int_equal(fs_tmpfile(t->rootfd, "x", &fd, names[1],
	    sizeof names[1]), -AR_EIO);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(symlinkat("../outside/planted", t->rootfd,
	    FS_TMP_PREFIX "y.AAAAAA"), 0);
	assert_int_equal(fs_tmpfile(t->rootfd, "y", &fd, names[1],
	    sizeof names[1]), -AR_EIO);
	assert_int_equal(errno, EEXIST);
	assert_false(exists(t->topfd, "outside/planted"));
	rand_fixed = 0;
}

static void
test_write_durable(void **state)
{
	struct tctx *t = *state;
	char path[PATH_MAX], big[5000];
	struct stat st;
	int i;

	umask(077);
	assert_int_equal(fs_write_durable(t->rootfd, "state", "one", 3, 0644),
	    0);
	expect_content(t->rootfd, "state", "one");
	assert_int_equal(fstatat(t->rootfd, "state", &st, 0), 0);
	/* The mode asked for, not one cut by the umask. */
	assert_int_equal(st.st_mode & 07777, 0644);

	assert_int_equal(fs_write_durable(t->rootfd, "state", "second one", 10,
	    0600), 0);
	expect_content(t->rootfd, "state", "second one");
	assert_int_equal(fstatat(t->rootfd, "state", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1);

	/* Empty and larger contents. */
	assert_int_equal(fs_write_durable(t->rootfd, "empty", "", 0, 0600), 0);
	assert_int_equal(fstatat(t->rootfd, "empty", &st, 0), 0);
	assert_int_equal(st.st_size, 0);
	for (i = 0; i < (int)sizeof big; i++)
		big[i] = (char)(i * 7);
	assert_int_equal(fs_write_durable(t->rootfd, "sub/big", big,
	    sizeof big, 0640), 0);
	{
		char back[sizeof big + 1];
		size_t len;

		assert_int_equal(fs_read_small(t->rootfd, "sub/big", back,
		    sizeof back, &len), 0);
		assert_int_equal(len, sizeof big);
		assert_memory_equal(back, big, sizeof big);
	}

	/* A symlink under the name is replaced, its target left alone. */
	assert_int_equal(fs_write_durable(t->rootfd, "esc", "mine", 4, 0600),
	    0);
	assert_int_equal(fstatat(t->rootfd, "esc", &st, AT_SYMLINK_NOFOLLOW),
	    0);
	assert_true(S_ISREG(st.st_mode));
	expect_content(t->topfd, "outside/secret", "secret");

	/* An absolute path from AT_FDCWD. */
	cat(path, sizeof path, t->out, "abs-state");
	assert_int_equal(fs_write_durable(AT_FDCWD, path, "abs", 3, 0600), 0);
	expect_content(AT_FDCWD, path, "abs");

	/* Failure (a directory under the name) leaves no temp file. */
	assert_int_equal(count_entries(t->rootfd), 8);
	assert_int_equal(fs_write_durable(t->rootfd, "sub", "x", 1, 0600),
	    -AR_EIO);
	assert_int_equal(count_entries(t->rootfd), 8);
	assert_true(exists(t->rootfd, "sub/deep/f"));
	assert_int_equal(fs_write_durable(t->rootfd, "nodir/x", "x", 1, 0600),
	    -AR_EIO);
	assert_int_equal(fs_write_durable(t->rootfd, "sub/", "x", 1, 0600),
	    -AR_EIO);
	assert_int_equal(count_entries(t->rootfd), 8);
}

static void
test_read_small(void **state)
{
	struct tctx *t = *state;
	char buf[16], path[PATH_MAX];
	size_t len = 99;

	put(t->rootfd, "five", "hello");
	assert_int_equal(fs_read_small(t->rootfd, "five", buf, 6, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	/* No room for the NUL: too big. */
	assert_int_equal(fs_read_small(t->rootfd, "five", buf, 5, &len),
	    -AR_ENOMEM);
	assert_int_equal(fs_read_small(t->rootfd, "five", buf, 0, &len),
	    -AR_ENOMEM);
	assert_int_equal(fs_read_small(t->rootfd, "missing", buf, sizeof buf,
	    &len), -AR_EIO);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_read_small(t->rootfd, "sub", buf, sizeof buf,
	    &len), -AR_EIO);
	/* A fifo is refused, not waited on. */
	assert_int_equal(mkfifoat(t->rootfd, "fifo", 0600), 0);
	assert_int_equal(fs_read_small(t->rootfd, "fifo", buf, sizeof buf,
	    &len), -AR_EIO);
	cat(path, sizeof path, t->root, "five");
	assert_int_equal(fs_read_small(AT_FDCWD, path, buf, sizeof buf, NULL),
	    0);
	assert_string_equal(buf, "hello");
}

static void
test_io_full(void **state)
{
	struct tctx *t = *state;
	char out[70000], in[70000];
	size_t i;
	ssize_t n;
	int fd;

	for (i = 0; i < sizeof out; i++)
		out[i] = (char)(i % 251);
	fd = openat(t->rootfd, "io", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_pwrite_full(fd, out, sizeof out, 1 << 20), 0);
	n = fs_pread_full(fd, in, sizeof in, 1 << 20);
	assert_int_equal(n, sizeof in);
	assert_memory_equal(in, out, sizeof in);
	/* Short only at EOF. */
	n = fs_pread_full(fd, in, sizeof in, (1 << 20) + 100);
	assert_int_equal(n, sizeof in - 100);
	assert_int_equal(lseek(fd, (1 << 20) + 10, SEEK_SET), (1 << 20) + 10);
	n = fs_read_full(fd, in, sizeof in);
	assert_int_equal(n, sizeof in - 10);
	assert_memory_equal(in, out + 10, sizeof in - 10);
	n = fs_read_full(fd, in, sizeof in);
	assert_int_equal(n, 0);
	close(fd);
	assert_int_equal(fs_write_full(-1, "x", 1), -AR_EIO);
	assert_int_equal(errno, EBADF);
}

/*
 * fs_pwrite_sparse: a buffer at an unaligned offset, holding a whole
 * aligned block of zeros, a partial one (written: not whole) and data,
 * reads back the same, the whole zero block stays a hole (the file's
 * allocation on a file system that shows holes), and *written counts
 * only what was written.
 */
static void
test_pwrite_sparse(void **state)
{
	struct tctx *t = *state;
	static uint8_t out[5 * FS_HOLE_BLOCK], in[sizeof(out)];
	uint64_t off = 3 * FS_HOLE_BLOCK - 100, written = 0;
	size_t n;
	struct stat st;
	int fd;

	/* [0, 100): data, to the first aligned offset; then a whole block
	 * of zeros; data; zeros to the end, the last block partial. */
	memset(out, 0, sizeof(out));
	memset(out, 'a', 100);
	memset(out + 100 + FS_HOLE_BLOCK, 'b', FS_HOLE_BLOCK);
	out[sizeof(out) - 1] = 0;
	assert_int_equal(fs_zero_block(out, sizeof(out), 0, off, &n), 0);
	assert_int_equal(n, 100);
	assert_int_equal(fs_zero_block(out, sizeof(out), 100, off, &n), 1);
	assert_int_equal(n, FS_HOLE_BLOCK);
	assert_int_equal(fs_zero_block(out, sizeof(out), sizeof(out) - 50,
	    off, &n), 0);
	assert_int_equal(n, 50);
	fd = openat(t->rootfd, "sparse", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_pwrite_sparse(fd, out, sizeof(out), off,
	    &written), 0);
	/* Skipped: the block at 100 and the two whole ones after the
	 * data; the tail, short of a block, is written. */
	assert_int_equal(written, sizeof(out) - 3 * FS_HOLE_BLOCK);
	assert_int_equal(ftruncate(fd, (off_t)(off + sizeof(out))), 0);
	assert_int_equal(fs_pread_full(fd, in, sizeof(in), off), sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(lseek(fd, (off_t)off + 100, SEEK_HOLE),
	    (off_t)off + 100);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= 5 * FS_HOLE_BLOCK);
	/* Nothing but zeros: nothing written. */
	memset(out, 0, sizeof(out));
	written = 0;
	assert_int_equal(fs_pwrite_sparse(fd, out, 4 * FS_HOLE_BLOCK,
	    16 * FS_HOLE_BLOCK, &written), 0);
	assert_int_equal(written, 0);
	close(fd);
}

static void
test_open_dir(void **state)
{
	struct tctx *t = *state;
	char path[PATH_MAX];
	int fd = -1;

	assert_int_equal(fs_open_dir(t->root, &fd), 0);
	same_file(fd, t->rootfd);
	close(fd);
	/* An operator's path may be a symlink. */
	cat(path, sizeof path, t->root, "esc");
	assert_int_equal(fs_open_dir(path, &fd), 0);
	close(fd);
	cat(path, sizeof path, t->root, "sub/file");
	assert_int_equal(fs_open_dir(path, &fd), -AR_EIO);
	assert_int_equal(errno, ENOTDIR);
	cat(path, sizeof path, t->root, "none");
	assert_int_equal(fs_open_dir(path, &fd), -AR_EIO);
	assert_int_equal(errno, ENOENT);
}

static void
test_mkdir_p(void **state)
{
	struct tctx *t = *state;
	char path[PATH_MAX];
	struct stat st;

	cat(path, sizeof path, t->root, "m/n//o/p");
	assert_int_equal(fs_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fs_mkdir_p(path, 0700), 0);
	cat(path, sizeof path, t->root, "m/n/o/p/q/");
	assert_int_equal(fs_mkdir_p(path, 0700), 0);
	assert_true(exists(t->rootfd, "m/n/o/p/q"));
	/* Through a symlink to a directory: operator paths may. */
	cat(path, sizeof path, t->root, "inlink/made");
	assert_int_equal(fs_mkdir_p(path, 0700), 0);
	assert_true(exists(t->rootfd, "sub/made"));
	/* A file in the way. */
	cat(path, sizeof path, t->root, "sub/file/x");
	assert_int_equal(fs_mkdir_p(path, 0700), -AR_EIO);
	assert_int_equal(errno, ENOTDIR);
	cat(path, sizeof path, t->root, "sub/file");
	assert_int_equal(fs_mkdir_p(path, 0700), -AR_EIO);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(fs_mkdir_p("", 0700), -AR_EIO);
	assert_int_equal(fs_mkdir_p("/", 0700), 0);
}

static void
test_remove_tree(void **state)
{
	struct tctx *t = *state;
	char abs[PATH_MAX], name[160];
	struct stat st;
	int i, fd, n;

	/* A tree holding links out of it, to directories and files. */
	assert_int_equal(mkdirat(t->rootfd, "t", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "t/a", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "t/a/b", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "t/a/b/empty", 0755), 0);
	put(t->rootfd, "t/a/b/f", "f");
	cat(abs, sizeof abs, t->top, "outside");
	assert_int_equal(symlinkat(abs, t->rootfd, "t/a/out-abs"), 0);
	assert_int_equal(symlinkat("../../outside", t->rootfd, "t/out-rel"), 0);
	assert_int_equal(symlinkat(t->out, t->rootfd, "t/a/b/out2"), 0);
	assert_int_equal(symlinkat("../../../outside/secret", t->rootfd,
	    "t/a/b/secret-link"), 0);
	assert_int_equal(mkfifoat(t->rootfd, "t/fifo", 0600), 0);
	/* Files and subdirectories mixed, more than one batch of names. */
	assert_int_equal(mkdirat(t->rootfd, "t/many", 0755), 0);
	for (i = 0; i < 300; i++) {
		/* Long names: 100 directories need several batches. */
		n = snprintf(name, sizeof name, "t/many/%d.%0120d", i, i);
		assert_true(n > 0 && (size_t)n < sizeof name);
		if (i % 3 == 0) {
			assert_int_equal(mkdirat(t->rootfd, name, 0755), 0);
			assert_true(strlen(name) + 2 < sizeof name);
			memcpy(name + strlen(name), "/f", 3);
			put(t->rootfd, name, "x");
		} else
			put(t->rootfd, name, "x");
	}
	assert_int_equal(fs_remove_tree(t->rootfd, "t"), 0);
	assert_false(exists(t->rootfd, "t"));
	expect_content(t->topfd, "outside/secret", "secret");
	assert_int_equal(count_entries(t->topfd), 2);
	fd = openat(t->topfd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(count_entries(fd), 1);
	close(fd);

	/* A file, a symlink to a directory, a missing name. */
	assert_int_equal(fs_remove_tree(t->rootfd, "sub/file"), 0);
	assert_false(exists(t->rootfd, "sub/file"));
	assert_int_equal(fs_remove_tree(t->rootfd, "esc"), 0);
	assert_false(exists(t->rootfd, "esc"));
	assert_int_equal(fs_remove_tree(t->rootfd, "abs"), 0);
	assert_int_equal(fs_remove_tree(t->rootfd, "inlink"), 0);
	assert_true(exists(t->rootfd, "sub/deep/f"));
	expect_content(t->topfd, "outside/secret", "secret");
	assert_int_equal(fs_remove_tree(t->rootfd, "nothing"), 0);
	assert_int_equal(fs_remove_tree(t->rootfd, "nodir/nothing"), 0);

	/* Names that would name the wrong thing. */
	assert_int_equal(fs_remove_tree(t->rootfd, ""), -AR_EIO);
	assert_int_equal(fs_remove_tree(t->rootfd, "."), -AR_EIO);
	assert_int_equal(fs_remove_tree(t->rootfd, ".."), -AR_EIO);
	assert_int_equal(fs_remove_tree(t->rootfd, "sub/"), -AR_EIO);
	assert_int_equal(fs_remove_tree(t->rootfd, "sub/.."), -AR_EIO);
	assert_true(exists(t->rootfd, "sub/deep/f"));

	/* A path from AT_FDCWD works too. */
	cat(abs, sizeof abs, t->root, "sub");
	assert_int_equal(fs_remove_tree(AT_FDCWD, abs), 0);
	assert_int_equal(fstatat(t->rootfd, "sub", &st, 0), -1);
	assert_int_equal(errno, ENOENT);
}

/* A chain of single-letter directories, depth levels deep, below
 * dirfd/"d". Returns an fd of the directory at level keep. */
static int
make_chain(int dirfd, int depth, int keep)
{
	int fd, next, kept = -1, i;

	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	assert_true(fd >= 0);
	for (i = 0; i < depth; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		if (i == keep)
			kept = fd;
		else
			close(fd);
		fd = next;
	}
	put(fd, "leaf", "leaf");
	close(fd);
	return kept;
}

static void
test_remove_deep(void **state)
{
	struct tctx *t = *state;
	int mid, r;

	/* Deep but within the bound. */
	mid = make_chain(t->rootfd, 300, 0);
	close(mid);
	assert_int_equal(fs_remove_tree(t->rootfd, "d"), 0);
	assert_false(exists(t->rootfd, "d"));

	/*
	 * Beyond the bound: refused (or out of fds first, where the limit
	 * is low), never a crash. The middle fd lets the test clean up a
	 * chain whose path is longer than PATH_MAX.
	 */
	mid = make_chain(t->rootfd, 2100, 1000);
	r = fs_remove_tree(t->rootfd, "d");
	assert_true(r == -AR_ENOMEM || r == -AR_EIO);
	assert_true(exists(t->rootfd, "d"));
	assert_int_equal(fs_remove_tree(mid, "d"), 0);
	close(mid);
	assert_int_equal(fs_remove_tree(t->rootfd, "d"), 0);
	assert_false(exists(t->rootfd, "d"));
}

static void
test_count_tree(void **state)
{
	struct tctx *t = *state;
	uint64_t n;
	int mid;

	/* c holds a, a/b, a/b/f, a/link (to outside, not followed), g, a
	 * fifo; our temp files do not count. */
	assert_int_equal(mkdirat(t->rootfd, "c", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "c/a", 0755), 0);
	assert_int_equal(mkdirat(t->rootfd, "c/a/b", 0755), 0);
	put(t->rootfd, "c/a/b/f", "f");
	assert_int_equal(symlinkat(t->out, t->rootfd, "c/a/link"), 0);
	put(t->rootfd, "c/g", "g");
	assert_int_equal(mkfifoat(t->rootfd, "c/fifo", 0600), 0);
	put(t->rootfd, "c/a/" FS_TMP_PREFIX "left", "a leftover");
	put(t->topfd, "outside/o1", "o");
	n = 0;
	assert_int_equal(fs_count_tree(t->rootfd, "c", UINT64_MAX, &n), 0);
	assert_int_equal(n, 6);
	/* Added to what *count holds; the whole root: the 9 entries setup
	 * made and c with its 6. */
	assert_int_equal(fs_count_tree(t->rootfd, NULL, UINT64_MAX, &n), 0);
	assert_int_equal(n, 6 + 16);
	/* Stops at the limit. */
	n = 0;
	assert_int_equal(fs_count_tree(t->rootfd, "c", 2, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(fs_count_tree(t->rootfd, NULL, 1, &n), 0);
	assert_int_equal(n, 1);
	/* A file, a link, a missing name hold nothing. */
	n = 0;
	assert_int_equal(fs_count_tree(t->rootfd, "c/g", UINT64_MAX, &n), 0);
	assert_int_equal(fs_count_tree(t->rootfd, "c/a/link", UINT64_MAX,
	    &n), 0);
	assert_int_equal(fs_count_tree(t->rootfd, "nope", UINT64_MAX, &n), 0);
	assert_int_equal(n, 0);
	/* An empty directory. */
	assert_int_equal(mkdirat(t->rootfd, "e", 0755), 0);
	assert_int_equal(fs_count_tree(t->rootfd, "e", UINT64_MAX, &n), 0);
	assert_int_equal(n, 0);
	/* Deeper than fs_remove_tree goes: refused (or out of fds). */
	mid = make_chain(t->rootfd, 2100, 1000);
	n = 0;
	assert_int_not_equal(fs_count_tree(t->rootfd, "d", UINT64_MAX, &n), 0);
	assert_int_equal(fs_remove_tree(mid, "d"), 0);
	close(mid);
	assert_int_equal(fs_remove_tree(t->rootfd, "d"), 0);
}

/* The confinement tests again, on the walk used without openat2. */
static void
test_beneath_refuses_walk(void **state)
{
	fs_force_fallback = 1;
	test_beneath_refuses(state);
}

static void
test_beneath_accepts_walk(void **state)
{
	fs_force_fallback = 1;
	test_beneath_accepts(state);
}

/* A file of size bytes of data (no holes), each MiB written through
 * fs_writeback as it goes. */
static void
put_big(int dirfd, const char *name, uint64_t size)
{
	static char buf[1024 * 1024];
	uint64_t off;
	int fd;

	memset(buf, 'b', sizeof(buf));
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	assert_true(fd >= 0);
	for (off = 0; off < size; off += sizeof(buf)) {
		assert_int_equal(fs_write_full(fd, buf, sizeof(buf)), 0);
		fs_writeback(fd, off + sizeof(buf), sizeof(buf));
	}
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(close(fd), 0);
}

/* Big files removed, their blocks freed by the release thread: the
 * names go at once, a second link and a link's target stay. */
static int
stat_at(int dirfd, const char *name, struct stat *st)
{
	return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}

static void
test_remove_tree_bg(void **state)
{
	struct tctx *t = *state;
	char abs[PATH_MAX];
	struct stat st;
	int i;

	put_big(t->rootfd, "big", 16u << 20);
	assert_int_equal(stat_at(t->rootfd, "big", &st), 0);
	assert_int_equal((uint64_t)st.st_size, 16u << 20);
	assert_int_equal(mkdirat(t->rootfd, "d", 0755), 0);
	put_big(t->rootfd, "d/big", 9u << 20);
	put(t->rootfd, "d/small", "s");
	put_big(t->rootfd, "linked", 9u << 20);
	assert_int_equal(linkat(t->rootfd, "linked", t->rootfd, "linked2", 0),
	    0);
	put_big(t->topfd, "outside/big", 9u << 20);
	cat(abs, sizeof abs, t->out, "big");
	assert_int_equal(symlinkat(abs, t->rootfd, "lnk"), 0);
	/* Again and again: each name goes at once. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(fs_remove_tree_bg(t->rootfd, "big"), 0);
		assert_false(exists(t->rootfd, "big"));
		if (i < 2)
			put_big(t->rootfd, "big", 9u << 20);
	}
	assert_int_equal(fs_remove_tree_bg(t->rootfd, "d"), 0);
	assert_false(exists(t->rootfd, "d"));
	assert_int_equal(fs_remove_tree_bg(t->rootfd, "linked"), 0);
	assert_false(exists(t->rootfd, "linked"));
	assert_int_equal(stat_at(t->rootfd, "linked2", &st), 0);
	assert_int_equal((uint64_t)st.st_size, 9u << 20);
	assert_int_equal(fs_remove_tree_bg(t->rootfd, "lnk"), 0);
	assert_false(exists(t->rootfd, "lnk"));
	assert_int_equal(stat_at(t->topfd, "outside/big", &st), 0);
	assert_int_equal((uint64_t)st.st_size, 9u << 20);
	assert_int_equal(fs_remove_tree_bg(t->rootfd, "nothing"), 0);
	assert_int_equal(fs_remove_tree_bg(t->rootfd, ".."), -AR_EIO);
}

/* fs_release_wait: while the release thread is held, a wait runs out
 * and says so; let go, the wait returns once the blocks are freed; with
 * nothing given, at once. */
static void
test_release_wait(void **state)
{
	struct tctx *t = *state;
	struct stat st;

	assert_int_not_equal(fs_release_wait(10000), -1);
	assert_int_equal(fs_release_wait(10000), 0);
	put_big(t->rootfd, "big", 16u << 20);
	assert_int_equal(stat_at(t->rootfd, "big", &st), 0);
	if ((uint64_t)st.st_blocks * 512 < (8u << 20))
		skip();	/* not allocated: freed in place, nothing to wait for */
	fs_release_hold(1);
	assert_int_equal(fs_remove_tree_bg(t->rootfd, "big"), 0);
	assert_false(exists(t->rootfd, "big"));
	assert_int_equal(fs_release_wait(50), -1);
	fs_release_hold(0);
	/* 1, or 0 if the thread was done before the wait began */
	assert_int_not_equal(fs_release_wait(10000), -1);
	assert_int_equal(fs_release_wait(10000), 0);
}

#define ONE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		ONE(test_beneath_refuses),
		ONE(test_beneath_refuses_walk),
		ONE(test_beneath_accepts),
		ONE(test_beneath_accepts_walk),
		ONE(test_tmpfile),
		ONE(test_write_durable),
		ONE(test_read_small),
		ONE(test_io_full),
		ONE(test_pwrite_sparse),
		ONE(test_open_dir),
		ONE(test_mkdir_p),
		ONE(test_remove_tree),
		ONE(test_remove_tree_bg),
		ONE(test_release_wait),
		ONE(test_remove_deep),
		ONE(test_count_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
