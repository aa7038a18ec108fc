/*
 * test-manifest.c: the streamed manifest, parsed back with the wire
 * decoders and checked against lstat of the tree it describes.
 *
 * Each test builds a tree under its own scratch directory ("root" in
 * it is what the manifest walks) and removes it with an fd-relative
 * remover, since the deep trees here have paths longer than PATH_MAX.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fs.h"
#include "manifest.h"
#include "scratch.h"
#include "walk.h"
#include "wire.h"

/* Bound on manifest_read calls: a generator that never ends fails. */
#define MAX_READS 10000000u
/* Bound on frames kept. */
#define MAX_FRAMES 100000u

struct tctx {
	char top[PATH_MAX];
	int topfd;
	int rootfd;		/* top/root */
	struct rlimit nofile;	/* to restore, when lowered */
	int nofile_changed;
};

/* One decoded frame. */
struct frame {
	uint8_t type;		/* 'P' or 'E' (Z and X are kept apart) */
	char *name;		/* P: the path; E: the name */
	size_t name_len;
	uint8_t etype;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode, uid, gid;
	char *target;
	size_t target_len;
};

struct parsed;
typedef void frame_hook(struct parsed *ps, const struct frame *f);

struct parsed {
	struct frame *f;
	size_t n, cap;
	size_t entries;		/* E frames */
	int ended;		/* Z seen */
	uint64_t count;		/* its count */
	int errored;		/* X seen */
	uint32_t err_code;
	int after_end;		/* frames after Z or X */
	uint8_t *raw;		/* the whole stream */
	size_t raw_len, raw_cap;
	frame_hook *hook;	/* called after each P or E frame */
	void *hook_arg;
	int hook_done;
	struct wire_entry ent;	/* decoding scratch */
	char path[WIRE_PATH_MAX + 1];
};

/* ------------------------------------------------------------------ */
/* Trees */

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-manifest"),
	    0);
	t->topfd = open(t->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->topfd >= 0);
	assert_int_equal(mkdirat(t->topfd, "root", 0755), 0);
	t->rootfd = openat(t->topfd, "root", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	assert_true(t->rootfd >= 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;
	int r;

	close(t->rootfd);
	close(t->topfd);
	/* Before the fd limit goes back down: deep trees need an fd per
	 * level to be removed too. */
	r = scratch_remove(t->top);
	if (t->nofile_changed)
		setrlimit(RLIMIT_NOFILE, &t->nofile);
	assert_int_equal(r, 0);
	free(t);
	return 0;
}

/* A regular file of size bytes, then its mode (umask-free). */
static void
put(int dirfd, const char *name, size_t size, mode_t mode)
{
	char buf[4096];
	size_t n;
	int fd;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	assert_true(fd >= 0);
	memset(buf, 'q', sizeof buf);
	while (size > 0) {
		n = size < sizeof buf ? size : sizeof buf;
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		size -= n;
	}
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* mkdir + open. */
static int
mkdir_open(int dirfd, const char *name, mode_t mode)
{
	int fd;

	assert_int_equal(mkdirat(dirfd, name, mode), 0);
	assert_int_equal(fchmodat(dirfd, name, mode, 0), 0);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void
set_mtime(int dirfd, const char *name, int64_t sec, long nsec)
{
	struct timespec ts[2];

	ts[0].tv_sec = (time_t)sec;
	ts[0].tv_nsec = nsec;
	ts[1] = ts[0];
	assert_int_equal(utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* ------------------------------------------------------------------ */
/* Reading a manifest back */

static void
parsed_free(struct parsed *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->f[i].name);
		free(ps->f[i].target);
	}
	free(ps->f);
	free(ps->raw);
	memset(ps, 0, sizeof *ps);
}

static char *
dup_bytes(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	assert_non_null(p);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static int
on_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct parsed *ps = arg;
	struct wire_error we;
	struct frame *f;
	size_t plen;

	if (ps->ended || ps->errored)
		ps->after_end = 1;
	switch (type) {
	case WIRE_END:
		assert_int_equal(wire_get_end(p, len, &ps->count), 0);
		ps->ended = 1;
		return 0;
	case WIRE_ERROR:
		assert_int_equal(wire_get_error(p, len, &we), 0);
		ps->errored = 1;
		ps->err_code = we.code;
		return 0;
	case WIRE_DIR:
	case WIRE_ENTRY:
		break;
	default:
		fail_msg("unexpected frame type 0x%02x", type);
	}
	if (ps->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 256;

		assert_true(ncap <= MAX_FRAMES * 2);
		ps->f = reallocarray(ps->f, ncap, sizeof *ps->f);
		assert_non_null(ps->f);
		ps->cap = ncap;
	}
	f = &ps->f[ps->n];
	memset(f, 0, sizeof *f);
	f->type = type;
	if (type == WIRE_DIR) {
		assert_int_equal(wire_get_dir(p, len, ps->path, &plen), 0);
		f->name = dup_bytes(ps->path, plen);
		f->name_len = plen;
	} else {
		assert_int_equal(wire_get_entry(p, len, WIRE_ENTRY, &ps->ent),
		    0);
		f->name = dup_bytes(ps->ent.name, ps->ent.name_len);
		f->name_len = ps->ent.name_len;
		f->etype = ps->ent.type;
		f->size = ps->ent.size;
		f->mtime_sec = ps->ent.mtime_sec;
		f->mtime_nsec = ps->ent.mtime_nsec;
		f->mode = ps->ent.mode;
		f->uid = ps->ent.uid;
		f->gid = ps->ent.gid;
		f->target = dup_bytes(ps->ent.target, ps->ent.target_len);
		f->target_len = ps->ent.target_len;
		ps->entries++;
	}
	ps->n++;
	assert_true(ps->n <= MAX_FRAMES);
	if (ps->hook != NULL)
		ps->hook(ps, f);
	return 0;
}

static void
raw_append(struct parsed *ps, const void *data, size_t len)
{
	if (ps->raw_cap - ps->raw_len < len) {
		size_t ncap = ps->raw_cap ? ps->raw_cap : 65536;

		while (ncap - ps->raw_len < len)
			ncap *= 2;
		ps->raw = realloc(ps->raw, ncap);
		assert_non_null(ps->raw);
		ps->raw_cap = ncap;
	}
	memcpy(ps->raw + ps->raw_len, data, len);
	ps->raw_len += len;
}

/*
 * Generate the manifest of rootfd, reading it bufsize bytes at a time,
 * and decode it into ps (whose hook, if any, is already set). Checks
 * the stream's framing: complete frames, nothing after the end, and
 * manifest_read staying at 0 once it returned 0.
 */
static void
run_manifest(int rootfd, size_t bufsize, struct parsed *ps)
{
	struct wire_reader rd;
	struct manifest *m = NULL;
	uint8_t *buf;
	unsigned reads = 0;
	ssize_t n;

	buf = malloc(bufsize);
	assert_non_null(buf);
	assert_int_equal(wire_reader_init(&rd, WIRE_MAX_FRAME), 0);
	assert_int_equal(manifest_new(rootfd, &m), 0);
	assert_non_null(m);
	for (;;) {
		n = manifest_read(m, buf, bufsize);
		assert_true(n >= 0);
		assert_true((size_t)n <= bufsize);
		if (n == 0)
			break;
		raw_append(ps, buf, (size_t)n);
		assert_int_equal(wire_reader_feed(&rd, buf, (size_t)n,
		    on_frame, ps), 0);
		assert_true(++reads < MAX_READS);
	}
	/* Ended on a frame boundary, and stays ended. */
	assert_true(wire_reader_idle(&rd));
	assert_int_equal(manifest_read(m, buf, bufsize), 0);
	assert_int_equal(manifest_read(m, buf, bufsize), 0);
	assert_false(ps->after_end);
	manifest_free(m);
	wire_reader_release(&rd);
	free(buf);
}

/* Byte order of names, as PROTOCOL.md says: memcmp, prefix first. */
static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

/* Index of the P frame of path, or -1. */
static long
find_block(const struct parsed *ps, const char *path, size_t len)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		if (ps->f[i].type == WIRE_DIR && ps->f[i].name_len == len &&
		    memcmp(ps->f[i].name, path, len) == 0)
			return (long)i;
	}
	return -1;
}

/* The E frame of name in the block of dir, or NULL. */
static const struct frame *
find_entry(const struct parsed *ps, const char *dir, const char *name,
    size_t name_len)
{
	long b = find_block(ps, dir, strlen(dir));
	size_t i;

	if (b < 0)
		return NULL;
	for (i = (size_t)b + 1; i < ps->n && ps->f[i].type == WIRE_ENTRY;
	    i++) {
		if (ps->f[i].name_len == name_len &&
		    memcmp(ps->f[i].name, name, name_len) == 0)
			return &ps->f[i];
	}
	return NULL;
}

static size_t
count_blocks(const struct parsed *ps)
{
	size_t i, n = 0;

	for (i = 0; i < ps->n; i++)
		n += ps->f[i].type == WIRE_DIR;
	return n;
}

/* Is the name one the manifest must list (ours is decided by lstat). */
static int
listable(int dirfd, const char *name, size_t len)
{
	struct stat st;

	if (len >= sizeof FS_TMP_PREFIX - 1 &&
	    memcmp(name, FS_TMP_PREFIX, sizeof FS_TMP_PREFIX - 1) == 0)
		return 0;
	assert_int_equal(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
	    S_ISLNK(st.st_mode);
}

/* Check one block (frames [first, end) are its E frames) against the
 * directory it names. */
static void
check_block(int rootfd, const struct parsed *ps, size_t pidx, size_t first,
    size_t end)
{
	const struct frame *p = &ps->f[pidx];
	char target[WIRE_TARGET_MAX + 1];
	struct dirent *de;
	struct stat st;
	size_t i, nlisted = 0;
	ssize_t tl;
	DIR *d;
	int fd;

	if (p->name_len == 0)
		fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
		fd = openat(rootfd, p->name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);

	for (i = first; i < end; i++) {
		const struct frame *e = &ps->f[i];

		/* Children sorted strictly by the bytes of their names. */
		if (i > first)
			assert_true(name_cmp(ps->f[i - 1].name,
			    ps->f[i - 1].name_len, e->name, e->name_len) < 0);
		assert_int_equal(strlen(e->name), e->name_len);
		assert_null(memchr(e->name, '/', e->name_len));
		assert_true(listable(fd, e->name, e->name_len));

		assert_int_equal(fstatat(fd, e->name, &st,
		    AT_SYMLINK_NOFOLLOW), 0);
		if (S_ISREG(st.st_mode)) {
			assert_int_equal(e->etype, 'f');
			assert_int_equal(e->size, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode)) {
			assert_int_equal(e->etype, 'd');
			assert_int_equal(e->size, 0);
		} else {
			assert_true(S_ISLNK(st.st_mode));
			assert_int_equal(e->etype, 'l');
			assert_int_equal(e->size, 0);
		}
		assert_int_equal(e->mtime_sec, (int64_t)st.st_mtim.tv_sec);
		assert_int_equal(e->mtime_nsec, (uint32_t)st.st_mtim.tv_nsec);
		assert_int_equal(e->mode, st.st_mode & 07777);
		assert_int_equal(e->uid, st.st_uid);
		assert_int_equal(e->gid, st.st_gid);
		if (S_ISLNK(st.st_mode)) {
			tl = readlinkat(fd, e->name, target, sizeof target);
			assert_true(tl > 0 && (size_t)tl < sizeof target);
			assert_int_equal(e->target_len, (size_t)tl);
			assert_memory_equal(e->target, target, (size_t)tl);
		} else {
			assert_int_equal(e->target_len, 0);
		}
	}

	/* Nothing listable left out: the block's names are distinct and
	 * all listable, so equal counts mean equal sets. */
	d = fdopendir(fd);
	assert_non_null(d);
	for (;;) {
		de = scratch_readdir(d);
		if (de == NULL)
			break;
		nlisted += listable(dirfd(d), de->d_name, strlen(de->d_name));
	}
	closedir(d);
	assert_int_equal(nlisted, end - first);
}

/*
 * Check a whole manifest of a tree that did not change while it was
 * generated and has nothing unreadable: the block of top ("" for the
 * root) first, every block right against lstat, depth-first order, one
 * block per listed directory, the count at the end.
 */
static void
check_manifest_at(int rootfd, const struct parsed *ps, const char *top)
{
	struct stk {
		size_t pidx;		/* P frame of this directory */
		const char *last;	/* last child directory entered */
		size_t last_len;
	} *stack;
	size_t depth = 0, i, j, dirs = 0;

	assert_false(ps->errored);
	assert_true(ps->ended);
	assert_int_equal(ps->count, ps->entries);
	assert_true(ps->n >= 1);
	assert_int_equal(ps->f[0].type, WIRE_DIR);
	assert_string_equal(ps->f[0].name, top);

	stack = calloc(ps->n + 1, sizeof *stack);
	assert_non_null(stack);
	for (i = 0; i < ps->n; i = j) {
		const struct frame *p = &ps->f[i];

		assert_int_equal(p->type, WIRE_DIR);
		for (j = i + 1; j < ps->n && ps->f[j].type == WIRE_ENTRY; j++)
			dirs += ps->f[j].etype == 'd';
		check_block(rootfd, ps, i, i + 1, j);

		if (i == 0) {
			stack[depth++].pidx = 0;
			continue;
		}
		/*
		 * Depth first: the parent is on the path of directories
		 * entered so far, and this directory comes after the
		 * siblings already entered.
		 */
		{
			const char *slash = memrchr(p->name, '/', p->name_len);
			size_t plen = slash == NULL ? 0 :
			    (size_t)(slash - p->name);
			const char *base = slash == NULL ? p->name : slash + 1;
			size_t blen = p->name_len - (size_t)(base - p->name);
			const struct frame *parent;
			size_t k;
			int listed = 0;

			for (;;) {
				assert_true(depth > 0);
				parent = &ps->f[stack[depth - 1].pidx];
				if (parent->name_len == plen &&
				    memcmp(parent->name, p->name, plen) == 0)
					break;
				depth--;
			}
			if (stack[depth - 1].last != NULL)
				assert_true(name_cmp(stack[depth - 1].last,
				    stack[depth - 1].last_len, base,
				    blen) < 0);
			stack[depth - 1].last = base;
			stack[depth - 1].last_len = blen;
			/* And the parent's block listed it as a directory. */
			for (k = stack[depth - 1].pidx + 1; k < ps->n &&
			    ps->f[k].type == WIRE_ENTRY; k++) {
				if (ps->f[k].name_len == blen &&
				    memcmp(ps->f[k].name, base, blen) == 0 &&
				    ps->f[k].etype == 'd')
					listed = 1;
			}
			assert_true(listed);
			stack[depth].pidx = i;
			stack[depth].last = NULL;
			depth++;
		}
	}
	free(stack);
	/* One block per directory listed, plus the top one's. */
	assert_int_equal(count_blocks(ps), dirs + 1);
}

static void
check_manifest(int rootfd, const struct parsed *ps)
{
	check_manifest_at(rootfd, ps, "");
}

/* ------------------------------------------------------------------ */
/* The tree of the main test */

static const char nl_name[] = "new\nline";
static const char ff_name[] = "\xff" "high";

static void
build_tree(int rootfd)
{
	struct sockaddr_un sun;
	int b, dd, z, s, cwd;

	put(rootfd, "a.txt", 5, 0640);
	put(rootfd, "big", 70000, 0600);
	put(rootfd, "empty", 0, 04755);
	put(rootfd, "none", 3, 0);
	put(rootfd, "old", 1, 0644);
	put(rootfd, nl_name, 3, 0644);
	put(rootfd, ff_name, 1, 0644);
	put(rootfd, FS_TMP_PREFIX "x", 4, 0600);
	put(rootfd, ".asyncrep-tmpx", 2, 0600);	/* not our prefix */
	assert_int_equal(mkfifoat(rootfd, "fifo", 0644), 0);
	assert_int_equal(symlinkat("a.txt", rootfd, "link"), 0);
	assert_int_equal(symlinkat("no/such/target", rootfd, "dangling"), 0);

	/* A unix socket is left out too (bound by path: root is short). */
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cwd >= 0);
	assert_int_equal(fchdir(rootfd), 0);
	memcpy(sun.sun_path, "sock", 5);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
	close(s);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);

	b = mkdir_open(rootfd, "B", 0750);
	put(b, "c", 10, 0644);
	assert_int_equal(symlinkat("../a.txt", b, "link2"), 0);
	dd = mkdir_open(b, "D", 0755);
	put(dd, "e", 4097, 0644);
	z = mkdir_open(dd, "F", 0700);	/* empty */
	close(z);
	set_mtime(dd, "e", 1300000000, 1);
	set_mtime(dd, "F", 1300000001, 2);
	close(dd);
	set_mtime(b, "c", 1300000003, 3);
	set_mtime(b, "link2", 1300000004, 4);
	set_mtime(b, "D", 1300000005, 5);
	close(b);

	z = mkdir_open(rootfd, "emptydir", 0755);
	close(z);
	z = mkdir_open(rootfd, "Z", 0755);
	put(z, "x", 1, 0644);
	close(z);
	/* A directory with our prefix is neither listed nor entered. */
	z = mkdir_open(rootfd, FS_TMP_PREFIX "dir", 0700);
	put(z, "inside", 1, 0644);
	close(z);

	set_mtime(rootfd, "a.txt", 1000000000, 123456789);
	set_mtime(rootfd, "old", -86400, 1);	/* before 1970 */
	set_mtime(rootfd, "link", 1100000000, 500000000);
	set_mtime(rootfd, "dangling", 1100000001, 0);
	set_mtime(rootfd, "B", 1200000000, 999999999);
	set_mtime(rootfd, "emptydir", 1200000001, 7);
}

/* The values set above, checked by name (check_manifest compares with
 * lstat, this pins what lstat should have said). */
static void
check_tree_values(const struct parsed *ps)
{
	const struct frame *e;

	e = find_entry(ps, "", "a.txt", 5);
	assert_non_null(e);
	assert_int_equal(e->etype, 'f');
	assert_int_equal(e->size, 5);
	assert_int_equal(e->mode, 0640);
	assert_int_equal(e->mtime_sec, 1000000000);
	assert_int_equal(e->mtime_nsec, 123456789);
	assert_int_equal(e->uid, geteuid());
	assert_int_equal(e->gid, getegid());

	e = find_entry(ps, "", "big", 3);
	assert_non_null(e);
	assert_int_equal(e->size, 70000);
	assert_int_equal(e->mode, 0600);
	e = find_entry(ps, "", "empty", 5);
	assert_non_null(e);
	assert_int_equal(e->size, 0);
	assert_int_equal(e->mode, 04755);
	e = find_entry(ps, "", "none", 4);
	assert_non_null(e);
	assert_int_equal(e->mode, 0);
	e = find_entry(ps, "", "old", 3);
	assert_non_null(e);
	assert_int_equal(e->mtime_sec, -86400);
	assert_int_equal(e->mtime_nsec, 1);

	e = find_entry(ps, "", nl_name, sizeof nl_name - 1);
	assert_non_null(e);
	assert_int_equal(e->size, 3);
	e = find_entry(ps, "", ff_name, sizeof ff_name - 1);
	assert_non_null(e);
	assert_int_equal(e->size, 1);

	e = find_entry(ps, "", "link", 4);
	assert_non_null(e);
	assert_int_equal(e->etype, 'l');
	assert_int_equal(e->target_len, 5);
	assert_memory_equal(e->target, "a.txt", 5);
	assert_int_equal(e->mtime_sec, 1100000000);
	assert_int_equal(e->mtime_nsec, 500000000);
	e = find_entry(ps, "", "dangling", 8);
	assert_non_null(e);
	assert_int_equal(e->etype, 'l');
	assert_int_equal(e->target_len, strlen("no/such/target"));
	assert_memory_equal(e->target, "no/such/target", e->target_len);

	e = find_entry(ps, "", "B", 1);
	assert_non_null(e);
	assert_int_equal(e->etype, 'd');
	assert_int_equal(e->mode, 0750);
	assert_int_equal(e->mtime_sec, 1200000000);
	assert_int_equal(e->mtime_nsec, 999999999);
	e = find_entry(ps, "B", "link2", 5);
	assert_non_null(e);
	assert_memory_equal(e->target, "../a.txt", 8);
	e = find_entry(ps, "B/D", "e", 1);
	assert_non_null(e);
	assert_int_equal(e->size, 4097);
	assert_int_equal(e->mtime_sec, 1300000000);
	assert_int_equal(e->mtime_nsec, 1);

	/* Left out: fifo, socket, our temp files; not our prefix: kept. */
	assert_null(find_entry(ps, "", "fifo", 4));
	assert_null(find_entry(ps, "", "sock", 4));
	assert_null(find_entry(ps, "", FS_TMP_PREFIX "x",
	    strlen(FS_TMP_PREFIX "x")));
	assert_null(find_entry(ps, "", FS_TMP_PREFIX "dir",
	    strlen(FS_TMP_PREFIX "dir")));
	assert_int_equal(find_block(ps, FS_TMP_PREFIX "dir",
	    strlen(FS_TMP_PREFIX "dir")), -1);
	assert_non_null(find_entry(ps, "", ".asyncrep-tmpx", 14));

	/* Empty directories have a block with nothing in it. */
	{
		long bi = find_block(ps, "emptydir", 8);

		assert_true(bi > 0);
		assert_true((size_t)bi + 1 == ps->n ||
		    ps->f[bi + 1].type == WIRE_DIR);
		bi = find_block(ps, "B/D/F", 5);
		assert_true(bi > 0);
		assert_true((size_t)bi + 1 == ps->n ||
		    ps->f[bi + 1].type == WIRE_DIR);
	}

	/* The exact order of blocks and root entries: "B" < "Z" < "a" ...,
	 * and the 0xff name last. */
	{
		static const char *const order[] = { "", "B", "B/D", "B/D/F",
		    "Z", "emptydir" };
		size_t i, k = 0;

		for (i = 0; i < ps->n; i++) {
			if (ps->f[i].type != WIRE_DIR)
				continue;
			assert_true(k < sizeof order / sizeof order[0]);
			assert_string_equal(ps->f[i].name, order[k]);
			k++;
		}
		assert_int_equal(k, sizeof order / sizeof order[0]);
		i = (size_t)find_block(ps, "B", 1);
		assert_int_equal(ps->f[i - 1].type, WIRE_ENTRY);
		assert_memory_equal(ps->f[i - 1].name, ff_name,
		    sizeof ff_name);
	}
}

static void
test_manifest_tree(void **state)
{
	struct tctx *t = *state;
	static const size_t sizes[] = { 1, 7, 4096, 1u << 20 };
	struct parsed ps, first;
	size_t i;

	build_tree(t->rootfd);
	memset(&first, 0, sizeof first);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(&ps, 0, sizeof ps);
		run_manifest(t->rootfd, sizes[i], &ps);
		check_manifest(t->rootfd, &ps);
		check_tree_values(&ps);
		/* The root's 13, B's 3, B/D's 2, Z's 1. */
		assert_int_equal(ps.entries, 13 + 3 + 2 + 1);
		/* However it is read, the same bytes. */
		if (i == 0) {
			first = ps;
		} else {
			assert_int_equal(ps.raw_len, first.raw_len);
			assert_memory_equal(ps.raw, first.raw, ps.raw_len);
			parsed_free(&ps);
		}
	}
	parsed_free(&first);
}

/* As run_manifest, for the subtree at path. */
static void
run_manifest_at(int rootfd, const char *path, size_t bufsize,
    struct parsed *ps)
{
	struct wire_reader rd;
	struct manifest *m = NULL;
	uint8_t *buf;
	unsigned reads = 0;
	ssize_t n;

	buf = malloc(bufsize);
	assert_non_null(buf);
	assert_int_equal(wire_reader_init(&rd, WIRE_MAX_FRAME), 0);
	assert_int_equal(manifest_new_at(rootfd, path, strlen(path), &m), 0);
	assert_non_null(m);
	for (;;) {
		n = manifest_read(m, buf, bufsize);
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true((size_t)n <= bufsize);
		assert_int_equal(wire_reader_feed(&rd, buf, (size_t)n,
		    on_frame, ps), 0);
		assert_true(++reads < MAX_READS);
	}
	assert_true(wire_reader_idle(&rd));
	assert_int_equal(manifest_read(m, buf, bufsize), 0);
	assert_false(ps->after_end);
	manifest_free(m);
	wire_reader_release(&rd);
	free(buf);
}

static void
test_manifest_subtree(void **state)
{
	struct tctx *t = *state;
	static const char *const bad[] = { "../root", "/B", "B/", "B//D",
	    "./B", "B/..", "a.txt", "nope", "B/c", "link", "fifo" };
	char longpath[WIRE_PATH_MAX + 2];
	struct manifest *m;
	struct parsed ps;
	size_t i;
	int r;

	build_tree(t->rootfd);

	memset(&ps, 0, sizeof ps);
	run_manifest_at(t->rootfd, "B", 7, &ps);
	check_manifest_at(t->rootfd, &ps, "B");
	assert_int_equal(count_blocks(&ps), 3);
	assert_int_equal(find_block(&ps, "B/D", 3), 4);	/* c, D, link2 */
	assert_true(find_block(&ps, "B/D/F", 5) > 4);
	assert_int_equal(ps.entries, 3 + 2);
	parsed_free(&ps);

	memset(&ps, 0, sizeof ps);
	run_manifest_at(t->rootfd, "B/D/F", 1u << 20, &ps);
	check_manifest_at(t->rootfd, &ps, "B/D/F");
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.count, 0);
	parsed_free(&ps);

	/* The whole tree by its other name. */
	memset(&ps, 0, sizeof ps);
	run_manifest_at(t->rootfd, "", 4096, &ps);
	check_manifest(t->rootfd, &ps);
	check_tree_values(&ps);
	parsed_free(&ps);

	/* Not a directory beneath the root, or not a valid path at all. */
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		m = NULL;
		r = manifest_new_at(t->rootfd, bad[i], strlen(bad[i]), &m);
		if (r == 0)
			fail_msg("manifest_new_at '%s' succeeded", bad[i]);
		assert_true(r == -AR_EPROTO || r == -AR_EIO);
		assert_null(m);
	}
	/* A path beyond the limit. */
	memset(longpath, 'a', sizeof longpath);
	longpath[WIRE_PATH_MAX + 1] = '\0';
	for (i = 1; i < WIRE_PATH_MAX; i += 2)
		longpath[i] = '/';
	m = NULL;
	assert_int_equal(manifest_new_at(t->rootfd, longpath,
	    WIRE_PATH_MAX + 1, &m), -AR_EPROTO);
	assert_null(m);
}

static void
test_manifest_empty_root(void **state)
{
	struct tctx *t = *state;
	struct parsed ps;

	memset(&ps, 0, sizeof ps);
	run_manifest(t->rootfd, 7, &ps);
	check_manifest(t->rootfd, &ps);
	assert_int_equal(ps.n, 1);
	assert_int_equal(ps.count, 0);
	/* P "" and Z 0: nothing else. */
	assert_int_equal(ps.raw_len, WIRE_HDR + 2 + WIRE_HDR + 8);
	parsed_free(&ps);
}

static void
test_manifest_big_dir(void **state)
{
	struct tctx *t = *state;
	static const size_t sizes[] = { 7, 1u << 20 };
	char name[64];
	struct parsed ps;
	long bi;
	size_t i;
	int big, sub, n;

	big = mkdir_open(t->rootfd, "big", 0755);
	/* Names of varied lengths created out of order, so readdir order
	 * and byte order differ. */
	for (i = 0; i < 3000; i++) {
		n = snprintf(name, sizeof name, "%zu-%.*s", (i * 1237) % 3000,
		    (int)(i % 40), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_true(n > 0 && (size_t)n < sizeof name);
		put(big, name, i % 5, 0644);
	}
	sub = mkdir_open(big, "~last", 0755);
	put(sub, "f", 1, 0644);
	close(sub);
	close(big);
	put(t->rootfd, "zz", 2, 0644);

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(&ps, 0, sizeof ps);
		run_manifest(t->rootfd, sizes[i], &ps);
		check_manifest(t->rootfd, &ps);
		bi = find_block(&ps, "big", 3);
		assert_true(bi > 0);
		/* P big, its 3001 entries, then the block of its one
		 * subdirectory (sorted last). */
		assert_true((size_t)bi + 3002 < ps.n);
		assert_int_equal(ps.f[bi + 3001].type, WIRE_ENTRY);
		assert_string_equal(ps.f[bi + 3001].name, "~last");
		assert_int_equal(ps.f[bi + 3002].type, WIRE_DIR);
		assert_string_equal(ps.f[bi + 3002].name, "big/~last");
		assert_int_equal(ps.entries, 2 + 3001 + 1);
		assert_int_equal(count_blocks(&ps), 3);
		parsed_free(&ps);
	}
}

/* Removes top/root/"zz" (with what it holds) at the first E frame: the
 * root block is then still being sent and zz not yet entered. */
static void
remove_hook(struct parsed *ps, const struct frame *f)
{
	struct tctx *t = ps->hook_arg;

	if (ps->hook_done || f->type != WIRE_ENTRY)
		return;
	ps->hook_done = 1;
	scratch_remove_at(t->rootfd, "zz");
	assert_int_equal(faccessat(t->rootfd, "zz", F_OK,
	    AT_SYMLINK_NOFOLLOW), -1);
}

static void
test_manifest_dir_removed(void **state)
{
	struct tctx *t = *state;
	struct parsed ps;
	char name[300];
	size_t i;
	int z, zs, y, n;

	/*
	 * Enough long names in the root that its block alone is more than
	 * the generator produces per refill, so the first entries reach
	 * us before it has looked at any subdirectory.
	 */
	for (i = 0; i < 100; i++) {
		n = snprintf(name, sizeof name, "f%03zu-%0200d", i, 0);
		assert_true(n > 0 && (size_t)n < sizeof name);
		put(t->rootfd, name, 1, 0644);
	}
	y = mkdir_open(t->rootfd, "y", 0755);
	put(y, "kept", 1, 0644);
	close(y);
	z = mkdir_open(t->rootfd, "zz", 0755);
	put(z, "gone", 1, 0644);
	zs = mkdir_open(z, "sub", 0755);
	put(zs, "gone2", 1, 0644);
	close(zs);
	close(z);

	memset(&ps, 0, sizeof ps);
	ps.hook = remove_hook;
	ps.hook_arg = t;
	run_manifest(t->rootfd, 7, &ps);
	assert_true(ps.hook_done);

	/* Listed when the root was read, then skipped without an error. */
	assert_false(ps.errored);
	assert_true(ps.ended);
	assert_int_equal(ps.count, ps.entries);
	assert_non_null(find_entry(&ps, "", "zz", 2));
	assert_int_equal(find_block(&ps, "zz", 2), -1);
	assert_int_equal(find_block(&ps, "zz/sub", 6), -1);
	/* Its sibling is complete. */
	assert_non_null(find_entry(&ps, "y", "kept", 4));
	assert_int_equal(count_blocks(&ps), 2);
	assert_int_equal(ps.entries, 100 + 2 + 1);
	parsed_free(&ps);
}

/* Replaced by a file or a symlink after being listed: not entered. */
static void
replace_hook(struct parsed *ps, const struct frame *f)
{
	struct tctx *t = ps->hook_arg;

	if (ps->hook_done || f->type != WIRE_ENTRY)
		return;
	ps->hook_done = 1;
	scratch_remove_at(t->rootfd, "zz1");
	scratch_remove_at(t->rootfd, "zz2");
	put(t->rootfd, "zz1", 1, 0644);
	assert_int_equal(symlinkat("y", t->rootfd, "zz2"), 0);
}

static void
test_manifest_dir_replaced(void **state)
{
	struct tctx *t = *state;
	struct parsed ps;
	char name[300];
	size_t i;
	int d, n;

	for (i = 0; i < 100; i++) {
		n = snprintf(name, sizeof name, "f%03zu-%0200d", i, 0);
		assert_true(n > 0 && (size_t)n < sizeof name);
		put(t->rootfd, name, 1, 0644);
	}
	d = mkdir_open(t->rootfd, "y", 0755);
	put(d, "kept", 1, 0644);
	close(d);
	d = mkdir_open(t->rootfd, "zz1", 0755);
	close(d);
	d = mkdir_open(t->rootfd, "zz2", 0755);
	close(d);

	memset(&ps, 0, sizeof ps);
	ps.hook = replace_hook;
	ps.hook_arg = t;
	run_manifest(t->rootfd, 7, &ps);
	assert_true(ps.hook_done);
	assert_false(ps.errored);
	assert_true(ps.ended);
	assert_int_equal(ps.count, ps.entries);
	/* The symlink is never followed into y. */
	assert_int_equal(find_block(&ps, "zz1", 3), -1);
	assert_int_equal(find_block(&ps, "zz2", 3), -1);
	assert_int_equal(count_blocks(&ps), 2);
	parsed_free(&ps);
}

static void
test_manifest_unreadable_dir(void **state)
{
	struct tctx *t = *state;
	const struct frame *e;
	struct parsed ps;
	int d;

	d = mkdir_open(t->rootfd, "locked", 0755);
	put(d, "secret", 1, 0644);
	close(d);
	d = mkdir_open(t->rootfd, "open", 0755);
	put(d, "f", 1, 0644);
	close(d);
	assert_int_equal(fchmodat(t->rootfd, "locked", 0, 0), 0);

	memset(&ps, 0, sizeof ps);
	run_manifest(t->rootfd, 7, &ps);
	assert_int_equal(fchmodat(t->rootfd, "locked", 0755, 0), 0);
	assert_false(ps.errored);
	assert_true(ps.ended);
	assert_int_equal(ps.count, ps.entries);
	e = find_entry(&ps, "", "locked", 6);
	assert_non_null(e);
	assert_int_equal(e->etype, 'd');
	assert_int_equal(e->mode, 0);
	assert_non_null(find_entry(&ps, "open", "f", 1));
	/*
	 * As root, mode 000 keeps nobody out, so the unreadable case cannot
	 * be made here; root must then see it all. (Not skip(): cmocka
	 * 1.1.5 prints "not ok # SKIP", which the TAP driver counts as a
	 * failure.)
	 */
	if (geteuid() == 0) {
		print_message("# as root: mode 000 is readable, checked as "
		    "such\n");
		assert_non_null(find_entry(&ps, "locked", "secret", 6));
	} else {
		/* Listed in its parent, its contents skipped. */
		assert_int_equal(find_block(&ps, "locked", 6), -1);
		assert_int_equal(count_blocks(&ps), 2);
	}
	parsed_free(&ps);
}

/* A chain of n nested directories named name under dirfd, and a file
 * at the bottom if bottom. */
static void
make_chain(int dirfd, const char *name, size_t n, int bottom)
{
	size_t i;
	int fd, next;

	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	assert_true(fd >= 0);
	for (i = 0; i < n; i++) {
		next = mkdir_open(fd, name, 0755);
		close(fd);
		fd = next;
	}
	if (bottom)
		put(fd, "bottom", 1, 0644);
	close(fd);
}

static void
test_manifest_long_paths(void **state)
{
	struct tctx *t = *state;
	char name[WIRE_NAME_MAX + 2];
	struct parsed ps;
	size_t i, blocks;
	int fd, next;

	/*
	 * 15 directories of 255 bytes (the last one's path: 3839 bytes).
	 * In it, a 255-byte file (path 4095: served) and a directory "d"
	 * (3841) holding a 253-byte name (4095: served) and a 254-byte one
	 * (4096: left out).
	 */
	memset(name, 'n', WIRE_NAME_MAX);
	name[WIRE_NAME_MAX] = '\0';
	fd = fcntl(t->rootfd, F_DUPFD_CLOEXEC, 0);
	assert_true(fd >= 0);
	for (i = 0; i < 16; i++) {
		if (i == 15) {
			/* 15 * 256 - 1 + 1 + 255 = 4095: fits. */
			put(fd, name, 1, 0644);
			assert_int_equal(symlinkat("t", fd, "L"), 0);
		}
		next = mkdir_open(fd, i == 15 ? "d" : name, 0755);
		close(fd);
		fd = next;
	}
	name[253] = '\0';
	put(fd, name, 1, 0644);
	name[253] = 'n';
	name[254] = '\0';
	put(fd, name, 1, 0644);	/* one too long */
	close(fd);

	memset(&ps, 0, sizeof ps);
	run_manifest(t->rootfd, 7, &ps);
	assert_false(ps.errored);
	assert_true(ps.ended);
	assert_int_equal(ps.count, ps.entries);
	blocks = count_blocks(&ps);
	assert_int_equal(blocks, 17);
	/* The deepest block: one entry, the 253-byte name. */
	assert_int_equal(ps.f[ps.n - 2].type, WIRE_DIR);
	assert_int_equal(ps.f[ps.n - 2].name_len, 15 * 256 + 1);
	assert_int_equal(ps.f[ps.n - 1].type, WIRE_ENTRY);
	assert_int_equal(ps.f[ps.n - 1].name_len, 253);
	/* Level 15 (path 15 * 256 - 1) holds d, L and the 255-byte file. */
	assert_int_equal(ps.f[ps.n - 6].type, WIRE_DIR);
	assert_int_equal(ps.f[ps.n - 6].name_len, 15 * 256 - 1);
	assert_int_equal(ps.f[ps.n - 5].name_len, 1);	/* L */
	assert_int_equal(ps.f[ps.n - 4].name_len, 1);	/* d */
	assert_int_equal(ps.f[ps.n - 3].name_len, 255);
	parsed_free(&ps);
}

/*
 * The deepest tree PROTOCOL.md allows: 2048 directories "a", whose
 * deepest path "a/a/.../a" is 4095 bytes. Every one of them is served.
 * Needs an fd per level, so the fd limit is raised if it can be.
 */
static void
test_manifest_max_depth(void **state)
{
	struct tctx *t = *state;
	const size_t n = (WIRE_PATH_MAX + 1) / 2;
	struct parsed ps;
	struct rlimit rl;
	size_t i;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < n + 64) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n + 64)
			skip();
		t->nofile = rl;
		t->nofile_changed = 1;
		rl.rlim_cur = n + 64;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	make_chain(t->rootfd, "a", n, 0);

	memset(&ps, 0, sizeof ps);
	run_manifest(t->rootfd, 1u << 20, &ps);
	assert_false(ps.errored);
	assert_true(ps.ended);
	assert_int_equal(ps.count, ps.entries);
	assert_int_equal(count_blocks(&ps), n + 1);
	assert_int_equal(ps.entries, n);
	assert_int_equal(ps.n, 2 * n + 1);
	for (i = 0; i < ps.n; i += 2) {
		assert_int_equal(ps.f[i].type, WIRE_DIR);
		assert_int_equal(ps.f[i].name_len, i == 0 ? 0 : i - 1);
	}
	assert_int_equal(ps.f[ps.n - 1].name_len, WIRE_PATH_MAX);
	parsed_free(&ps);
}

/*
 * Out of file descriptors in the middle of the tree. Whatever the
 * generator does then, it must not end the stream as if the tree were
 * complete: a standby would report success without the subtree. The
 * limit is placed so that the failure comes when the stack of open
 * levels has to grow (16 levels), where descend() keeps using its
 * level pointer after level_push() may have moved the array.
 */
static void
test_manifest_out_of_fds(void **state)
{
	struct tctx *t = *state;
	struct parsed ps;
	struct rlimit rl;
	int fds[17];
	size_t i;

	make_chain(t->rootfd, "d", 24, 1);
	memset(&ps, 0, sizeof ps);

	/*
	 * Level j (the root is 1) holds the j-th free fd, and listing a
	 * level dups its fd once more, for a moment. With the limit just
	 * past the 17th free fd, level 17 opens and its listing cannot.
	 * (Free fds need not be contiguous: a parent may leave some open.)
	 */
	for (i = 0; i < 17; i++) {
		fds[i] = fcntl(t->topfd, F_DUPFD_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
	}
	for (i = 0; i < 17; i++)
		close(fds[i]);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	t->nofile = rl;
	t->nofile_changed = 1;
	rl.rlim_cur = (rlim_t)fds[16] + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	run_manifest(t->rootfd, 1u << 20, &ps);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &t->nofile), 0);
	t->nofile_changed = 0;

	assert_true(ps.ended || ps.errored);
	if (!ps.errored) {
		/* Then it must be complete. */
		check_manifest(t->rootfd, &ps);
		assert_int_equal(count_blocks(&ps), 25);
	}
	parsed_free(&ps);
}

/* The frames of a version-v manifest of the tree: type letters, and for
 * an I frame "kind:id", for an E frame "E:name", one a line. */
struct idname_seen {
	char text[4096];
	size_t len;
};

static int
on_idname_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct idname_seen *s = arg;
	struct wire_idname n;
	struct wire_entry e;
	int k = 0;

	if (type == WIRE_IDNAME) {
		assert_int_equal(wire_get_idname(p, len, &n), 0);
		k = snprintf(s->text + s->len, sizeof(s->text) - s->len,
		    "I %c %u\n", n.kind, n.id);
	} else if (type == WIRE_ENTRY) {
		assert_int_equal(wire_get_entry(p, len, WIRE_ENTRY, &e), 0);
		k = snprintf(s->text + s->len, sizeof(s->text) - s->len,
		    "E %s\n", e.name);
	}
	assert_true(k >= 0 && (size_t)k < sizeof(s->text) - s->len);
	s->len += (size_t)k;
	return 0;
}

static void
idname_manifest(int rootfd, uint32_t version, struct idname_seen *s)
{
	struct wire_reader rd;
	struct manifest *m = NULL;
	uint8_t buf[65536];
	unsigned reads = 0;
	ssize_t n;

	memset(s, 0, sizeof(*s));
	assert_int_equal(wire_reader_init(&rd, WIRE_MAX_FRAME), 0);
	assert_int_equal(manifest_new(rootfd, &m), 0);
	assert_int_equal(manifest_set_version(m, version), 0);
	for (;;) {
		n = manifest_read(m, buf, sizeof(buf));
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_int_equal(wire_reader_feed(&rd, buf, (size_t)n,
		    on_idname_frame, s), 0);
		assert_true(++reads < MAX_READS);
	}
	manifest_free(m);
	wire_reader_release(&rd);
}

/*
 * WIRE_V_NAMES: the I frames of an entry's owner and group come before
 * its E frame, once per manifest; id 0 is never named; an older version
 * gets none.
 */
static void
test_manifest_idnames(void **state)
{
	struct tctx *t = *state;
	struct idname_seen s;
	int fd;

	if (geteuid() != 0 || getpwuid(1) == NULL || getgrgid(1) == NULL) {
		skip();
		return;
	}
	fd = openat(t->rootfd, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	fd = openat(t->rootfd, "b", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	fd = openat(t->rootfd, "r", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fchownat(t->rootfd, "a", 1, 1, 0), 0);
	assert_int_equal(fchownat(t->rootfd, "b", 1, 0, 0), 0);
	assert_int_equal(fchownat(t->rootfd, "r", 0, 0, 0), 0);
	assert_int_equal(fchown(t->rootfd, 0, 0), 0);
	idname_manifest(t->rootfd, WIRE_V_NAMES, &s);
	assert_string_equal(s.text, "I u 1\nI g 1\nE a\nE b\nE r\n");
	idname_manifest(t->rootfd, WIRE_V_NAMES - 1, &s);
	assert_string_equal(s.text, "E a\nE b\nE r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_manifest_tree, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_empty_root,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_subtree, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_big_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_dir_removed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_dir_replaced,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_unreadable_dir,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_long_paths,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_max_depth,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_out_of_fds,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_idnames,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
