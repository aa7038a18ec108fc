/*
 * test-watcher.c: the change watcher, and the libinotifytools defects
 * that made it read the kernel's inotify API itself.
 *
 * Tests named test_lib_* reproduce a library defect against
 * libinotifytools directly (each in a child process where the library's
 * global state or a spinning call must not touch the runner); the
 * watcher test next to each shows that the watcher does not suffer it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <inotifytools/inotifytools.h>

#include "error.h"
#include "exclude.h"
#include "scratch.h"
#include "spool.h"
#include "watcher.h"

#define MAXREC 20000
#define PROC_QUEUED "/proc/sys/fs/inotify/max_queued_events"

struct rec {
	int op;
	char path[256];
	char path2[256];
};

struct tctx {
	char top[PATH_MAX];	/* scratch directory */
	char root[PATH_MAX];	/* top/tree: the watched root */
	char out[PATH_MAX];	/* top/out: outside the tree */
	struct watcher *w;
	struct exclude *x;
	struct rec *recs;
	size_t n;
	long saved_queued;	/* to restore, or -1 */
};

/* A record keeps the first bytes of a path only, on purpose: the tests
 * look for short paths, and a long one (test_poll_long_path) is only
 * counted. */
static void
rec_path(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
on_change(void *arg, int op, const char *path, size_t len,
    const char *path2, size_t len2)
{
	struct tctx *t = arg;
	struct rec *r;

	if (t->n >= MAXREC)
		return;
	r = &t->recs[t->n++];
	r->op = op;
	rec_path(r->path, sizeof r->path, path, len);
	rec_path(r->path2, sizeof r->path2, path2, len2);
}

/* snprintf that fails the test instead of truncating. */
static void xsnprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
xsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

static long
read_proc(const char *path)
{
	FILE *f;
	long v = -1;

	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int
write_proc(const char *path, long v)
{
	FILE *f;
	int r;

	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	r = fprintf(f, "%ld\n", v) < 0;
	if (fclose(f) != 0)
		r = 1;
	return r ? -1 : 0;
}

static int
setup(void **state)
{
	struct tctx *t;

	t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->recs = calloc(MAXREC, sizeof *t->recs);
	assert_non_null(t->recs);
	t->saved_queued = -1;
	assert_int_equal(scratch_make(t->top, sizeof t->top, "test-watcher"),
	    0);
	xsnprintf(t->root, sizeof t->root, "%s/tree", t->top);
	xsnprintf(t->out, sizeof t->out, "%s/out", t->top);
	assert_int_equal(mkdir(t->root, 0755), 0);
	assert_int_equal(mkdir(t->out, 0755), 0);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	/* Runs after a failed assertion too: the sysctl is always put
	 * back. */
	if (t->saved_queued > 0)
		write_proc(PROC_QUEUED, t->saved_queued);
	watcher_free(t->w);
	exclude_free(t->x);
	scratch_remove(t->top);
	free(t->recs);
	free(t);
	return 0;
}

static void
start(struct tctx *t, int mode, const char *skip)
{
	struct watcher_opts o;
	char err[256];
	int r;

	memset(&o, 0, sizeof o);
	o.root = t->root;
	o.mode = mode;
	o.poll_interval_ns = 20 * 1000000ull;
	o.exclude = t->x;
	o.skip_dir = skip;
	r = watcher_new(&o, on_change, t, &t->w, err, sizeof err);
	if (r != 0)
		fail_msg("watcher_new: %s", err);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll until the watcher has been quiet for a while (debounce windows
 * included), within a bound. */
static void
drain(struct tctx *t)
{
	size_t before;
	int i, quiet = 0;

	for (i = 0; i < 400 && quiet < 5; i++) {
		before = t->n;
		assert_int_equal(watcher_poll(t->w, 50), 0);
		quiet = t->n == before ? quiet + 1 : 0;
	}
}

static int
has(struct tctx *t, int op, const char *path, const char *path2)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->recs[i].op == op &&
		    strcmp(t->recs[i].path, path) == 0 &&
		    (path2 == NULL || strcmp(t->recs[i].path2, path2) == 0))
			return 1;
	return 0;
}

static size_t
count(struct tctx *t, int op, const char *path)
{
	size_t i, c = 0;

	for (i = 0; i < t->n; i++)
		if (t->recs[i].op == op && strcmp(t->recs[i].path, path) == 0)
			c++;
	return c;
}

static void
dump(struct tctx *t)
{
	size_t i;

	for (i = 0; i < t->n && i < 50; i++)
		print_message("# %d %s %s\n", t->recs[i].op, t->recs[i].path,
		    t->recs[i].path2);
}

static void
put(struct tctx *t, const char *rel, const char *data)
{
	char p[PATH_MAX];
	int fd;

	xsnprintf(p, sizeof p, "%s/%s", t->root, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(close(fd), 0);
}

static void
mkd(struct tctx *t, const char *rel)
{
	char p[PATH_MAX];

	xsnprintf(p, sizeof p, "%s/%s", t->root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void
mv(struct tctx *t, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	xsnprintf(a, sizeof a, "%s/%s", t->root, from);
	xsnprintf(b, sizeof b, "%s/%s", t->root, to);
	assert_int_equal(rename(a, b), 0);
}

/* Run fn in a child; 1 if it is still running after secs (then it is
 * killed), 0 if it exited. */
static int
child_hangs(void (*fn)(const char *), const char *dir, int secs)
{
	pid_t pid;
	int i, status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn(dir);
		_exit(0);
	}
	for (i = 0; i < secs * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 1;
}

/* ------------------------------------------------------------------ */
/* a) reads with a timeout                                             */
/* ------------------------------------------------------------------ */

static void
lib_next_events_2(const char *dir)
{
	char p[PATH_MAX];
	int fd;

	inotifytools_init(0, 0, 0);
	inotifytools_watch_recursively(dir, IN_CREATE);
	xsnprintf(p, sizeof p, "%s/one", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	close(fd);
	/* One event queued, eight asked for, 1 s timeout: spins in its
	 * FIONREAD loop forever. */
	inotifytools_next_events(1, 8);
	_exit(0);
}

static void
lib_next_event_0(const char *dir)
{
	inotifytools_init(0, 0, 0);
	inotifytools_watch_recursively(dir, IN_CREATE);
	/* "0" is the shortest timeout it can express below one second,
	 * and it means forever. */
	inotifytools_next_event(0);
	_exit(0);
}

static void
test_lib_next_events(void **state)
{
	struct tctx *t = *state;

	assert_true(child_hangs(lib_next_events_2, t->root, 3));
	assert_true(child_hangs(lib_next_event_0, t->out, 2));
}

static void
test_poll_timeout(void **state)
{
	struct tctx *t = *state;
	uint64_t t0, el;

	start(t, WATCHER_INOTIFY, NULL);
	t0 = now_ms();
	assert_int_equal(watcher_poll(t->w, 200), 0);
	el = now_ms() - t0;
	assert_true(el >= 150 && el < 5000);
	t0 = now_ms();
	assert_int_equal(watcher_poll(t->w, 0), 0);
	assert_true(now_ms() - t0 < 5000);
	assert_int_equal(t->n, 0);
	/* with an event pending it returns at once, event reported */
	put(t, "f", "x");
	t0 = now_ms();
	assert_int_equal(watcher_poll(t->w, 4000), 0);
	assert_true(now_ms() - t0 < 3000);
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "f", NULL));
}

/* ------------------------------------------------------------------ */
/* b) leaked watches of deleted directories                            */
/* ------------------------------------------------------------------ */

static void
lib_leak(const char *dir)
{
	char p[PATH_MAX], key[PATH_MAX + 1];
	int i, wd, base, fails = 0;

	/* the library prints "Failed to remove watch": not ours to see */
	if (freopen("/dev/null", "w", stderr) == NULL)
		_exit(3);
	inotifytools_init(0, 0, 0);
	inotifytools_watch_recursively(dir, IN_ALL_EVENTS);
	base = inotifytools_get_num_watches();
	for (i = 0; i < 200; i++) {
		xsnprintf(p, sizeof p, "%s/d%d", dir, i);
		xsnprintf(key, sizeof key, "%s/", p);
		if (mkdir(p, 0755) != 0 || !inotifytools_watch_file(p,
		    IN_ALL_EVENTS))
			_exit(3);
		wd = inotifytools_wd_from_filename(key);
		rmdir(p);
		if (!inotifytools_remove_watch_by_wd(wd))
			fails++;
	}
	/* exit 1: reproduced (every removal failed, all 200 leaked) */
	_exit(fails == 200 &&
	    inotifytools_get_num_watches() == base + 200 ? 1 : 0);
}

static void
test_lib_leak(void **state)
{
	struct tctx *t = *state;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		lib_leak(t->out);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

static void
test_churn_flat(void **state)
{
	struct tctx *t = *state;
	struct watcher_stats st;
	char p[PATH_MAX];
	uint64_t base;
	int i;

	mkd(t, "keep");
	start(t, WATCHER_INOTIFY, NULL);
	watcher_get_stats(t->w, &st);
	base = st.watches;
	assert_int_equal(base, 2);
	for (i = 0; i < 10000; i++) {
		xsnprintf(p, sizeof p, "%s/c%d", t->root, i % 7);
		assert_int_equal(mkdir(p, 0755), 0);
		if (i % 3 == 0)
			assert_int_equal(watcher_poll(t->w, 0), 0);
		assert_int_equal(rmdir(p), 0);
		if (i % 50 == 0)
			assert_int_equal(watcher_poll(t->w, 0), 0);
	}
	drain(t);
	watcher_get_stats(t->w, &st);
	assert_int_equal(st.watches, base);
	assert_true(st.events >= 10000);
	assert_int_equal(st.overflows, 0);
	/* the watch still works, and for the right name */
	t->n = 0;
	put(t, "keep/f", "x");
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "keep/f", NULL));
}

/* ------------------------------------------------------------------ */
/* c) stale paths after renaming a deep tree                           */
/* ------------------------------------------------------------------ */

static void
lib_stale(const char *dir)
{
	char p[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	const char *f;
	int i, tot, stale = 0;

	xsnprintf(p, sizeof p, "%s/a", dir);
	if (mkdir(p, 0755) != 0)
		_exit(3);
	for (i = 0; i < 50; i++) {
		xsnprintf(p, sizeof p, "%s/a/d%03d", dir, i);
		mkdir(p, 0755);
		xsnprintf(p, sizeof p, "%s/a/d%03d/s", dir, i);
		mkdir(p, 0755);
		xsnprintf(p, sizeof p, "%s/b%03d", dir, i);
		mkdir(p, 0755);
	}
	inotifytools_init(0, 0, 0);
	inotifytools_watch_recursively(dir, IN_ALL_EVENTS);
	tot = inotifytools_get_num_watches();
	xsnprintf(from, sizeof from, "%s/a/", dir);
	xsnprintf(to, sizeof to, "%s/m/", dir);
	xsnprintf(p, sizeof p, "%s/m", dir);
	from[strlen(from) - 1] = '\0';
	if (rename(from, p) != 0)
		_exit(3);
	from[strlen(from)] = '/';
	inotifytools_replace_filename(from, to);
	for (i = 1; i <= tot + 1; i++) {
		f = inotifytools_filename_from_wd(i);
		if (strncmp(f, from, strlen(from)) == 0)
			stale++;
	}
	/* exit 1: reproduced, some watches keep the old prefix */
	_exit(stale > 0 ? 1 : 0);
}

static void
test_lib_stale_rename(void **state)
{
	struct tctx *t = *state;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		lib_stale(t->out);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

static void
test_deep_rename(void **state)
{
	struct tctx *t = *state;
	size_t i;

	mkd(t, "a");
	mkd(t, "a/b");
	mkd(t, "a/b/c");
	start(t, WATCHER_INOTIFY, NULL);
	/* All done before the first poll: the watcher sees these events
	 * long after the tree took its final shape. */
	mv(t, "a", "x");
	put(t, "x/b/c/f", "1");
	mv(t, "x", "y");
	put(t, "y/b/c/g", "2");
	drain(t);
	/* and once more, polled as it happens */
	mv(t, "y", "z");
	drain(t);
	put(t, "z/b/c/h", "3");
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_RENAME, "a", "x"));
	assert_true(has(t, SPOOL_RENAME, "x", "y"));
	assert_true(has(t, SPOOL_RENAME, "y", "z"));
	assert_true(has(t, SPOOL_MODIFY, "x/b/c/f", NULL));
	assert_true(has(t, SPOOL_MODIFY, "y/b/c/g", NULL));
	assert_true(has(t, SPOOL_MODIFY, "z/b/c/h", NULL));
	for (i = 0; i < t->n; i++)
		assert_false(strncmp(t->recs[i].path, "a/", 2) == 0);
}

/* ------------------------------------------------------------------ */
/* d) new directories: watched, then scanned                           */
/* ------------------------------------------------------------------ */

static void
test_mkdir_p_write(void **state)
{
	struct tctx *t = *state;
	char cmd[PATH_MAX + 128];

	start(t, WATCHER_INOTIFY, NULL);
	xsnprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p n1/n2/n3 && "
	    "echo x > n1/n2/n3/f && ln -s f n1/n2/l", t->root);
	assert_int_equal(system(cmd), 0);
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_MKDIR, "n1", NULL));
	assert_true(has(t, SPOOL_MKDIR, "n1/n2", NULL));
	assert_true(has(t, SPOOL_MKDIR, "n1/n2/n3", NULL));
	assert_true(has(t, SPOOL_MODIFY, "n1/n2/n3/f", NULL));
	assert_true(has(t, SPOOL_SYMLINK, "n1/n2/l", NULL));
	/* and the new directories are watched */
	put(t, "n1/n2/n3/g", "y");
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "n1/n2/n3/g", NULL));
}

/* ------------------------------------------------------------------ */
/* e) queue overflow                                                   */
/* ------------------------------------------------------------------ */

static void
test_overflow(void **state)
{
	struct tctx *t = *state;
	struct watcher_stats st;
	char name[64];
	int i;

	if (geteuid() != 0) {
		print_message("# skip: lowering max_queued_events needs "
		    "root\n");
		skip();
	}
	t->saved_queued = read_proc(PROC_QUEUED);
	assert_true(t->saved_queued > 0);
	/* read at inotify_init time: lower it before the watcher exists */
	assert_int_equal(write_proc(PROC_QUEUED, 64), 0);
	start(t, WATCHER_INOTIFY, NULL);
	assert_int_equal(write_proc(PROC_QUEUED, t->saved_queued), 0);
	for (i = 0; i < 2000; i++) {
		xsnprintf(name, sizeof name, "f%d", i);
		put(t, name, "x");
	}
	drain(t);
	watcher_get_stats(t->w, &st);
	assert_true(st.overflows >= 1);
	assert_true(st.rebuilds >= 1);
	assert_true(has(t, SPOOL_RESCAN, "", NULL));
	/* the rebuilt instance works */
	t->n = 0;
	put(t, "after", "x");
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "after", NULL));
}

/* ------------------------------------------------------------------ */
/* f) max_queued_events, g) one watcher per process                    */
/* ------------------------------------------------------------------ */

static void
test_max_queued(void **state)
{
	(void)state;
	/* the library's getter is broken; /proc is the answer */
	assert_int_equal(inotifytools_get_max_queued_events(), -1);
	assert_true(read_proc(PROC_QUEUED) > 0);
}

static void
test_one_per_process(void **state)
{
	struct tctx *t = *state;
	struct watcher_opts o;
	struct watcher *w2 = NULL;
	char err[256];

	start(t, WATCHER_INOTIFY, NULL);
	memset(&o, 0, sizeof o);
	o.root = t->out;
	assert_int_equal(watcher_new(&o, on_change, t, &w2, err, sizeof err),
	    -AR_ESTATE);
	assert_null(w2);
	o.root = "relative";
	watcher_free(t->w);
	t->w = NULL;
	assert_int_equal(watcher_new(&o, on_change, t, &w2, err, sizeof err),
	    -AR_EUSAGE);
	o.root = "/nonexistent/asyncrep";
	assert_int_equal(watcher_new(&o, on_change, t, &w2, err, sizeof err),
	    -AR_EIO);
	/* a failed attempt does not hold the slot */
	start(t, WATCHER_INOTIFY, NULL);
}

/* ------------------------------------------------------------------ */
/* events to ops                                                       */
/* ------------------------------------------------------------------ */

static void
test_ops(void **state)
{
	struct tctx *t = *state;
	char a[PATH_MAX], b[PATH_MAX];

	mkd(t, "d");
	put(t, "d/old", "1");
	start(t, WATCHER_INOTIFY, NULL);

	put(t, "new", "hello");
	xsnprintf(a, sizeof a, "%s/new", t->root);
	assert_int_equal(chmod(a, 0600), 0);
	xsnprintf(b, sizeof b, "%s/link", t->root);
	assert_int_equal(symlink("new", b), 0);
	mkd(t, "e");
	mv(t, "new", "renamed");
	mv(t, "d", "d2");
	xsnprintf(a, sizeof a, "%s/d2/old", t->root);
	assert_int_equal(unlink(a), 0);
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_MODIFY, "new", NULL));
	assert_int_equal(count(t, SPOOL_MODIFY, "new"), 1);
	assert_true(has(t, SPOOL_ATTRIB, "new", NULL));
	assert_true(has(t, SPOOL_SYMLINK, "link", NULL));
	assert_true(has(t, SPOOL_MKDIR, "e", NULL));
	assert_true(has(t, SPOOL_RENAME, "new", "renamed"));
	assert_true(has(t, SPOOL_RENAME, "d", "d2"));
	assert_true(has(t, SPOOL_DELETE, "d2/old", NULL));

	/* a move out of the tree is a delete, even of a directory */
	t->n = 0;
	xsnprintf(a, sizeof a, "%s/d2", t->root);
	xsnprintf(b, sizeof b, "%s/gone", t->out);
	assert_int_equal(rename(a, b), 0);
	drain(t);
	assert_true(has(t, SPOOL_DELETE, "d2", NULL));
	/* and its watches went with it */
	t->n = 0;
	xsnprintf(a, sizeof a, "%s/gone/x", t->out);
	assert_int_equal(close(open(a, O_WRONLY | O_CREAT, 0644)), 0);
	drain(t);
	assert_int_equal(t->n, 0);

	/* a move in: a file is a modify, a directory a rescan + watch */
	xsnprintf(a, sizeof a, "%s/infile", t->out);
	assert_int_equal(close(open(a, O_WRONLY | O_CREAT, 0644)), 0);
	xsnprintf(b, sizeof b, "%s/infile", t->root);
	assert_int_equal(rename(a, b), 0);
	xsnprintf(b, sizeof b, "%s/back", t->root);
	assert_int_equal(rename(t->out, b), 0);
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "infile", NULL));
	assert_true(has(t, SPOOL_RESCAN, "back", NULL));
	put(t, "back/gone/y", "1");
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "back/gone/y", NULL));
	assert_int_equal(rename(b, t->out), 0);
}

static void
test_exclude_skip(void **state)
{
	struct tctx *t = *state;
	char err[256], skip[PATH_MAX];

	assert_int_equal(exclude_new(&t->x), 0);
	assert_int_equal(exclude_add_list(t->x, "*.log, cache/", err,
	    sizeof err), 0);
	mkd(t, "cache");
	mkd(t, "spool");
	xsnprintf(skip, sizeof skip, "%s/spool", t->root);
	start(t, WATCHER_INOTIFY, skip);
	put(t, "a.log", "x");
	put(t, "cache/f", "x");
	put(t, "spool/seg", "x");
	put(t, ".asyncrep-tmp.123", "x");
	mkd(t, "cache/sub");
	put(t, "ok", "x");
	mv(t, "ok", "ok.log");		/* renamed to an excluded name */
	put(t, "tmp.log", "x");
	mv(t, "tmp.log", "fine");	/* from an excluded name */
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_MODIFY, "ok", NULL));
	assert_true(has(t, SPOOL_DELETE, "ok", NULL));
	assert_true(has(t, SPOOL_MODIFY, "fine", NULL));
	assert_int_equal(t->n, 3);
}

static void
test_modify_debounce(void **state)
{
	struct tctx *t = *state;
	char p[PATH_MAX];
	int fd, i;

	start(t, WATCHER_INOTIFY, NULL);
	put(t, "log", "");
	drain(t);
	t->n = 0;
	xsnprintf(p, sizeof p, "%s/log", t->root);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	/* an appender that never closes: seen, but not 2000 times */
	for (i = 0; i < 2000; i++) {
		assert_int_equal(write(fd, "line\n", 5), 5);
		if (i % 20 == 0)
			assert_int_equal(watcher_poll(t->w, 0), 0);
	}
	drain(t);
	print_message("# %zu reports for 2000 writes\n", t->n);
	assert_true(count(t, SPOOL_MODIFY, "log") >= 1);
	assert_true(t->n <= 50);
	/* the last write is always reported, after the window */
	t->n = 0;
	assert_int_equal(write(fd, "end\n", 4), 4);
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "log", NULL));
	close(fd);
}

/* ------------------------------------------------------------------ */
/* poll mode                                                           */
/* ------------------------------------------------------------------ */

static void
test_poll_mode(void **state)
{
	struct tctx *t = *state;
	struct watcher_stats st;
	char p[PATH_MAX];

	mkd(t, "d");
	put(t, "d/keep", "1");
	put(t, "d/del", "1");
	put(t, "mod", "1");
	start(t, WATCHER_POLL, NULL);
	drain(t);
	assert_int_equal(t->n, 0);	/* the first scan is the baseline */
	watcher_get_stats(t->w, &st);
	assert_int_equal(st.mode, WATCHER_POLL);
	assert_int_equal(st.watches, 2);

	put(t, "d/created", "abc");
	put(t, "mod", "22");		/* size changes */
	xsnprintf(p, sizeof p, "%s/d/del", t->root);
	assert_int_equal(unlink(p), 0);
	mkd(t, "nd");
	put(t, "nd/inside", "x");
	xsnprintf(p, sizeof p, "%s/d/keep", t->root);
	assert_int_equal(chmod(p, 0600), 0);
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_MODIFY, "d/created", NULL));
	assert_true(has(t, SPOOL_MODIFY, "mod", NULL));
	/* a vanished name cannot be told from 16-byte records: its
	 * directory is rescanned */
	assert_true(has(t, SPOOL_RESCAN, "d", NULL));
	assert_true(has(t, SPOOL_MKDIR, "nd", NULL));
	assert_true(has(t, SPOOL_MODIFY, "nd/inside", NULL));
	assert_true(has(t, SPOOL_ATTRIB, "d/keep", NULL));

	/* same size, new mtime */
	t->n = 0;
	{
		struct timespec ts[2] = { { 1, 0 }, { 1000, 0 } };

		xsnprintf(p, sizeof p, "%s/mod", t->root);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
	drain(t);
	assert_true(has(t, SPOOL_MODIFY, "mod", NULL));
	watcher_get_stats(t->w, &st);
	assert_int_equal(st.watches, 3);
}

/*
 * Poll mode near the path limit: entries whose path would pass
 * LIMIT_PATH_MAX (4095 bytes) beneath a directory that is still within
 * it cannot be replicated and are left out, as inotify mode leaves them
 * out, and are never written past the end of the path buffer.
 */
static void
test_poll_long_path(void **state)
{
	struct tctx *t = *state;
	char name[201], lname[101];
	int fd, dfd, i;

	memset(name, 'd', 200);
	name[200] = '\0';
	memset(lname, 'f', 100);
	lname[100] = '\0';
	/* 20 levels of 200 bytes: a relative path of 4019 bytes, and an
	 * absolute one still below PATH_MAX for the scan to open it. */
	dfd = open(t->root, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	for (i = 0; i < 20; i++) {
		assert_int_equal(mkdirat(dfd, name, 0755), 0);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY);
		assert_true(fd >= 0);
		close(dfd);
		dfd = fd;
	}
	/* 4019 + 1 + 100 bytes: past the limit. */
	fd = openat(dfd, lname, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	start(t, WATCHER_POLL, NULL);
	drain(t);
	assert_int_equal(t->n, 0);

	lname[0] = 'g';
	fd = openat(dfd, lname, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mkdirat(dfd, "x", 0755), 0);
	close(dfd);
	put(t, "top", "1");
	drain(t);
	dump(t);
	assert_true(has(t, SPOOL_MODIFY, "top", NULL));
	/* The deepest directory's "x" fits and is seen; its long names
	 * are not (only the two records). */
	assert_int_equal(t->n, 2);
	assert_int_equal(t->recs[0].op + t->recs[1].op,
	    SPOOL_MODIFY + SPOOL_MKDIR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lib_next_events, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_poll_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lib_leak, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_churn_flat, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lib_stale_rename, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deep_rename, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_max_queued, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_per_process, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclude_skip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_modify_debounce, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_poll_long_path, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_poll_mode, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
