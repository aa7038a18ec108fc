/*
 * test-sync.c: the standby's merge of a manifest with the local tree
 * (sync.c) and the application of a batch of changes (apply.c), against
 * a scratch data directory, through the private syncer.h. Nothing here
 * needs a primary: every case stays off the network (no file content is
 * fetched).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "sync.h"
#include "syncer.h"
#include "wire.h"
#include "scratch.h"

#define MTIME 1000000000	/* an mtime both sides agree on */

struct tctx {
	char top[PATH_MAX];	/* the mkdtemp() directory */
	char data[PATH_MAX];
	char state[PATH_MAX];
	char exclude[64];
	struct config cfg;
	struct sync_opts o;
	struct sync_stats st;
	struct syncer s;
	char msg[1024];
	uint8_t buf[64 * 1024];	/* frames to feed */
	size_t len;
};

/* A syncer on data/ and state/ of a fresh scratch directory, with the
 * exclude list x (or none) and dry_run as given. */
static struct tctx *
open_ctx(const char *x, int dry_run)
{
	struct tctx *t;

	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(scratch_make(t->top, sizeof(t->top), "test-sync"), 0);
	assert_int_equal(scratch_path(t->data, sizeof(t->data), t->top,
	    "data"), 0);
	assert_int_equal(scratch_path(t->state, sizeof(t->state), t->top,
	    "state"), 0);
	config_init(&t->cfg);
	t->cfg.standby.data_dir = t->data;
	t->cfg.standby.state_dir = t->state;
	if (x != NULL) {
		snprintf(t->exclude, sizeof(t->exclude), "%s", x);
		t->cfg.standby.exclude = t->exclude;
	}
	t->o.cfg = &t->cfg.standby;
	t->o.dry_run = dry_run;
	assert_int_equal(mkdir(t->data, 0755), 0);
	assert_int_equal(sync_init(&t->s, &t->o, &t->st, t->msg,
	    sizeof(t->msg)), 0);
	assert_int_equal(sync_open(&t->s), 0);
	return t;
}

static int
setup(void **state)
{
	*state = open_ctx(NULL, 0);
	return 0;
}

/* The exclude list comes as the test's initial state (EXCLUDED). */
static int
setup_exclude(void **state)
{
	*state = open_ctx(*state, 0);
	return 0;
}

/* A test with the standby's exclude list x. */
#define EXCLUDED(f, x) \
	cmocka_unit_test_prestate_setup_teardown(f, setup_exclude, \
	    teardown, (void *)(x))

static int
setup_dry_run(void **state)
{
	*state = open_ctx(NULL, 1);
	return 0;
}

static int
teardown(void **state)
{
	struct tctx *t = *state;

	sync_release(&t->s);
	scratch_remove(t->top);
	free(t);
	return 0;
}

/* ---------------------------------------------------------------- */
/* The scratch tree */

static void
put(struct tctx *t, const char *rel, const char *text)
{
	struct timespec ts[2] = { { MTIME, 0 }, { MTIME, 0 } };
	int fd;

	fd = openat(t->s.rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static void
mkd(struct tctx *t, const char *rel)
{
	assert_int_equal(mkdirat(t->s.rootfd, rel, 0755), 0);
}

/* The type of rel: 'f', 'd', 'l', or 0 when it does not exist. */
static int
kind(struct tctx *t, const char *rel)
{
	struct stat sb;

	if (fstatat(t->s.rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	return S_ISREG(sb.st_mode) ? 'f' : S_ISDIR(sb.st_mode) ? 'd' :
	    S_ISLNK(sb.st_mode) ? 'l' : '?';
}

static void
assert_content(struct tctx *t, const char *rel, const char *text)
{
	char buf[256];
	ssize_t n;
	int fd;

	fd = openat(t->s.rootfd, rel, O_RDONLY | O_NOFOLLOW);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

static mode_t
mode_of(struct tctx *t, const char *rel)
{
	struct stat sb;

	assert_int_equal(fstatat(t->s.rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW),
	    0);
	return sb.st_mode & 07777;
}

/* ---------------------------------------------------------------- */
/* Frames, as the primary would send them */

static void
frame_len(struct tctx *t, int n)
{
	assert_true(n > 0);
	t->len += (size_t)n;
}

static void
frame_entry(struct tctx *t, uint8_t ftype, int type, const char *name,
    const char *target, uint64_t size, uint32_t mode)
{
	static struct wire_entry e;

	memset(&e, 0, sizeof(e));
	e.type = (uint8_t)type;
	e.name_len = (uint16_t)strlen(name);
	memcpy(e.name, name, e.name_len + 1u);
	e.size = size;
	e.mtime_sec = MTIME;
	e.mode = mode;
	e.uid = getuid();
	e.gid = getgid();
	if (target != NULL) {
		e.target_len = (uint16_t)strlen(target);
		memcpy(e.target, target, e.target_len + 1u);
	}
	frame_len(t, wire_put_entry(t->buf + t->len, sizeof(t->buf) - t->len,
	    ftype, &e));
}

static void
frame_dir(struct tctx *t, const char *path)
{
	frame_len(t, wire_put_dir(t->buf + t->len, sizeof(t->buf) - t->len,
	    path, strlen(path)));
}

static void
frame_end(struct tctx *t, uint64_t count)
{
	frame_len(t, wire_put_end(t->buf + t->len, sizeof(t->buf) - t->len,
	    count));
}

static void
frame_op(struct tctx *t, uint8_t type, const char *path, const char *path2)
{
	frame_len(t, wire_put_pathop(t->buf + t->len, sizeof(t->buf) - t->len,
	    type, path, strlen(path), path2, path2 != NULL ? strlen(path2) :
	    0));
}

/* Hand the frames built so far to cb, as a replay would. */
static int
feed(struct tctx *t, wire_frame_cb *cb)
{
	struct wire_reader rd;
	int r;

	assert_int_equal(wire_reader_init(&rd, WIRE_MAX_FRAME), 0);
	r = wire_reader_feed(&rd, t->buf, t->len, cb, &t->s);
	if (r == 0)
		assert_true(wire_reader_idle(&rd));
	wire_reader_release(&rd);
	return r;
}

/* ---------------------------------------------------------------- */
/* Merging one directory */

static void
test_merge_upto_deletes_what_sorts_before(void **state)
{
	struct tctx *t = *state;
	const struct walk_ent *le;

	put(t, "a", "a");
	put(t, "b", "b");
	put(t, "c.txt", "c");
	put(t, "d", "d");
	mkd(t, "e");
	put(t, "e/inner", "inner");
	assert_int_equal(sync_block_start(&t->s, "", 0), 0);

	assert_int_equal(sync_merge_upto(&t->s, "b", 1, &le), 0);
	assert_non_null(le);
	assert_string_equal(le->name, "b");
	assert_int_equal(kind(t, "a"), 0);
	assert_int_equal(t->st.deleted, 1);

	/* "c" sorts before "c.txt": nothing goes, nothing matches. */
	assert_int_equal(sync_merge_upto(&t->s, "c", 1, &le), 0);
	assert_null(le);
	assert_int_equal(kind(t, "c.txt"), 'f');
	assert_int_equal(sync_merge_upto(&t->s, "c.txt", 5, &le), 0);
	assert_non_null(le);
	assert_string_equal(le->name, "c.txt");

	/* What the manifest did not reach is gone at the end, trees too. */
	assert_int_equal(sync_block_finish(&t->s), 0);
	assert_int_equal(kind(t, "d"), 0);
	assert_int_equal(kind(t, "e"), 0);
	assert_int_equal(kind(t, "b"), 'f');
	assert_int_equal(kind(t, "c.txt"), 'f');
	assert_int_equal(t->st.deleted, 3);
	assert_int_equal(t->s.blk.active, 0);
}

static void
test_merge_upto_is_byte_order(void **state)
{
	struct tctx *t = *state;
	const struct walk_ent *le;

	/* 'B' (0x42) < 'a' < "ab" < "b": memcmp order, no locale. */
	put(t, "B", "1");
	put(t, "a", "2");
	put(t, "ab", "3");
	put(t, "b", "4");
	assert_int_equal(sync_block_start(&t->s, "", 0), 0);
	assert_int_equal(sync_merge_upto(&t->s, "ab", 2, &le), 0);
	assert_non_null(le);
	assert_string_equal(le->name, "ab");
	assert_int_equal(kind(t, "B"), 0);
	assert_int_equal(kind(t, "a"), 0);
	assert_int_equal(kind(t, "b"), 'f');
	assert_int_equal(sync_block_finish(&t->s), 0);
	assert_int_equal(kind(t, "b"), 0);
}

static void
test_merge_keeps_excluded(void **state)
{
	struct tctx *t = *state;
	const struct walk_ent *le;

	put(t, "keep.me", "mine");
	put(t, "lose.me", "theirs");
	assert_int_equal(sync_block_start(&t->s, "", 0), 0);
	assert_int_equal(sync_merge_upto(&t->s, "z", 1, &le), 0);
	assert_null(le);
	assert_int_equal(sync_block_finish(&t->s), 0);
	assert_int_equal(kind(t, "keep.me"), 'f');
	assert_int_equal(kind(t, "lose.me"), 0);
	assert_int_equal(t->st.deleted, 1);
}

static void
test_merge_dry_run_changes_nothing(void **state)
{
	struct tctx *t = *state;

	put(t, "old", "old");
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'd', "sub", NULL, 0, 0755);
	frame_end(t, 1);
	assert_int_equal(feed(t, sync_merge_frame), 0);
	assert_int_equal(kind(t, "old"), 'f');
	assert_int_equal(kind(t, "sub"), 0);
	/* Counted as a real run would. */
	assert_int_equal(t->st.deleted, 1);
	assert_int_equal(t->st.dirs_created, 1);
}

static void
test_merge_manifest_makes_the_tree_equal(void **state)
{
	struct tctx *t = *state;

	put(t, "old", "gone on the primary");
	put(t, "same", "abc");
	put(t, "typechange", "a file here, a directory there");
	assert_int_equal(symlinkat("elsewhere", t->s.rootfd, "ln"), 0);
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'l', "ln", "target", 0, 0777);
	/* Same size and mtime, another mode: only the mode is set. */
	frame_entry(t, WIRE_ENTRY, 'f', "same", NULL, 3, 0600);
	frame_entry(t, WIRE_ENTRY, 'd', "sub", NULL, 0, 0750);
	frame_entry(t, WIRE_ENTRY, 'd', "typechange", NULL, 0, 0755);
	frame_dir(t, "sub");
	frame_end(t, 4);
	assert_int_equal(feed(t, sync_merge_frame), 0);
	assert_string_equal(t->msg, "");

	assert_int_equal(kind(t, "old"), 0);
	assert_int_equal(kind(t, "sub"), 'd');
	assert_int_equal(kind(t, "typechange"), 'd');
	assert_int_equal(kind(t, "ln"), 'l');
	{
		char target[64];
		ssize_t n = readlinkat(t->s.rootfd, "ln", target,
		    sizeof(target));

		assert_int_equal(n, 6);
		assert_memory_equal(target, "target", 6);
	}
	assert_content(t, "same", "abc");
	assert_int_equal(mode_of(t, "same"), 0600);
	assert_int_equal(t->st.entries, 4);
	assert_int_equal(t->st.attrs_set, 1);
	assert_int_equal(t->st.links_set, 1);
	assert_int_equal(t->st.dirs_created, 2);
	assert_int_equal(t->st.deleted, 2);	/* old, the file in the way */
	assert_int_equal(t->s.blk.active, 0);
}

static void
test_merge_refuses_unsorted_listing(void **state)
{
	struct tctx *t = *state;

	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'd', "b", NULL, 0, 0755);
	frame_entry(t, WIRE_ENTRY, 'd', "a", NULL, 0, 0755);
	frame_end(t, 2);
	assert_int_equal(feed(t, sync_merge_frame), -AR_EPROTO);
	assert_non_null(strstr(t->msg, "not sorted"));
	assert_int_equal(kind(t, "a"), 0);
}

static void
test_merge_refuses_reserved_name_and_bad_count(void **state)
{
	struct tctx *t = *state;

	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'd', ".asyncrep-tmp.x", NULL, 0, 0755);
	assert_int_equal(feed(t, sync_merge_frame), -AR_EPROTO);
	assert_non_null(strstr(t->msg, "reserved name"));
	assert_int_equal(sync_block_finish(&t->s), 0);

	t->msg[0] = '\0';
	t->len = 0;
	t->s.mf_entries = 0;
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'd', "a", NULL, 0, 0755);
	frame_end(t, 5);
	assert_int_equal(feed(t, sync_merge_frame), -AR_EPROTO);
	assert_non_null(strstr(t->msg, "count"));
}

/* ---------------------------------------------------------------- */
/* A batch of changes */

static void
test_apply_move_renames_our_copy(void **state)
{
	struct tctx *t = *state;

	mkd(t, "a");
	mkd(t, "b");
	put(t, "a/x", "hello");
	frame_op(t, WIRE_MOVE, "a/x", "b/y");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(kind(t, "a/x"), 0);
	assert_content(t, "b/y", "hello");
	assert_int_equal(t->s.nrescan, 0);
	assert_int_equal(t->s.full, 0);
	assert_int_equal(t->s.changed, 1);
}

static void
test_apply_move_replaces_what_is_there(void **state)
{
	struct tctx *t = *state;

	put(t, "x", "new");
	mkd(t, "y");
	put(t, "y/old", "old");
	frame_op(t, WIRE_MOVE, "x", "y");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(kind(t, "x"), 0);
	assert_content(t, "y", "new");
}

static void
test_apply_move_that_fails_queues_a_compare(void **state)
{
	struct tctx *t = *state;

	mkd(t, "b");
	/* The source is not here: compare the target. */
	frame_op(t, WIRE_MOVE, "nope", "b/y");
	/* Its directory is not here either: compare the target's parent,
	 * once however often it is named. */
	frame_op(t, WIRE_MOVE, "zz/x", "c/y");
	frame_op(t, WIRE_MOVE, "zz/x2", "c/y2");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(t->s.nrescan, 2);
	assert_string_equal(t->s.rescan[0], "b/y");
	assert_string_equal(t->s.rescan[1], "c");
	assert_int_equal(t->s.full, 0);
}

static void
test_apply_delete(void **state)
{
	struct tctx *t = *state;

	put(t, "f", "f");
	mkd(t, "d");
	mkd(t, "d/e");
	put(t, "d/e/g", "g");
	put(t, "keep", "k");
	frame_op(t, WIRE_GONE_PATH, "f", NULL);
	frame_op(t, WIRE_GONE_PATH, "d", NULL);
	/* Nothing to delete under a directory that is not here. */
	frame_op(t, WIRE_GONE_PATH, "missing/x", NULL);
	frame_op(t, WIRE_GONE_PATH, "not-here", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(kind(t, "f"), 0);
	assert_int_equal(kind(t, "d"), 0);
	assert_int_equal(kind(t, "keep"), 'f');
	assert_int_equal(t->st.deleted, 2);
	assert_int_equal(t->s.nrescan, 0);
	assert_int_equal(t->s.blk.active, 0);
}

static void
test_apply_delete_keeps_excluded(void **state)
{
	struct tctx *t = *state;

	put(t, "keep.me", "mine");
	frame_op(t, WIRE_GONE_PATH, "keep.me", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(kind(t, "keep.me"), 'f');
	assert_int_equal(t->st.deleted, 0);
}

static void
test_apply_state(void **state)
{
	struct tctx *t = *state;

	put(t, "t", "a file where the primary has a directory");
	frame_entry(t, WIRE_STATE, 'd', "newdir", NULL, 0, 0750);
	frame_entry(t, WIRE_STATE, 'd', "t", NULL, 0, 0700);
	frame_entry(t, WIRE_STATE, 'l', "newdir/ln", "../t", 0, 0777);
	/* Under a directory that is not here: its parent is compared. */
	frame_entry(t, WIRE_STATE, 'd', "missing/sub", NULL, 0, 0755);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_string_equal(t->msg, "");
	assert_int_equal(kind(t, "newdir"), 'd');
	assert_int_equal(kind(t, "t"), 'd');
	assert_int_equal(kind(t, "newdir/ln"), 'l');
	assert_int_equal(t->s.nrescan, 1);
	assert_string_equal(t->s.rescan[0], "missing");
	assert_int_equal(t->s.blk.active, 0);

	/* Directory attributes come after the contents. */
	assert_int_equal(mode_of(t, "newdir"), 0700);
	assert_int_equal(feed(t, apply_dirattr), 0);
	assert_int_equal(mode_of(t, "newdir"), 0750);
	assert_int_equal(mode_of(t, "t"), 0700);
	{
		struct stat sb;

		assert_int_equal(fstatat(t->s.rootfd, "newdir", &sb, 0), 0);
		assert_int_equal(sb.st_mtim.tv_sec, MTIME);
	}
}

static void
test_apply_rescan(void **state)
{
	struct tctx *t = *state;

	frame_op(t, WIRE_RESCAN, "x/y", NULL);
	frame_op(t, WIRE_RESCAN, "x/y", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(t->s.nrescan, 1);
	assert_string_equal(t->s.rescan[0], "x/y");
	assert_int_equal(t->s.full, 0);
	t->len = 0;
	frame_op(t, WIRE_RESCAN, "", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_int_equal(t->s.full, 1);
}

/* ---------------------------------------------------------------- */
/* What this standby excludes, matched with the type it has here */

/* The standby's own keep/mine, and d/keep/mine inside d. */
static void
put_own(struct tctx *t)
{
	mkd(t, "keep");
	put(t, "keep/mine", "mine");
	mkd(t, "d");
	put(t, "d/f", "f");
	mkd(t, "d/keep");
	put(t, "d/keep/mine", "mine too");
}

static void
test_merge_skips_a_file_over_an_excluded_dir(void **state)
{
	struct tctx *t = *state;

	put_own(t);
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'f', "keep", NULL, 4, 0644);
	frame_end(t, 1);
	assert_int_equal(feed(t, sync_merge_frame), 0);
	assert_string_equal(t->msg, "");
	assert_content(t, "keep/mine", "mine");
	/* Nothing fetched for it, d deleted but for what it holds. */
	assert_int_equal(t->s.batch.n, 0);
	assert_int_equal(t->s.skipped, 1);
	assert_int_equal(t->st.skipped, 1);
	assert_content(t, "d/keep/mine", "mine too");
	assert_int_equal(kind(t, "d/f"), 0);
}

static void
test_apply_move_over_an_excluded_dir(void **state)
{
	struct tctx *t = *state;

	put_own(t);
	put(t, "x", "theirs");
	frame_op(t, WIRE_MOVE, "x", "keep");
	/* Moving the standby's own away: not done, the target compared. */
	frame_op(t, WIRE_MOVE, "keep", "y");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "keep/mine", "mine");
	assert_content(t, "x", "theirs");
	assert_int_equal(kind(t, "y"), 0);
	assert_int_equal(t->s.skipped, 1);
	assert_int_equal(t->s.nrescan, 1);
	assert_string_equal(t->s.rescan[0], "y");
}

static void
test_apply_move_over_a_dir_holding_excluded(void **state)
{
	struct tctx *t = *state;

	put_own(t);
	put(t, "x", "a file");
	mkd(t, "e");
	put(t, "e/g", "g");
	/* A file in the way of d/keep: skipped, d/f deleted. */
	frame_op(t, WIRE_MOVE, "x", "d");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "d/keep/mine", "mine too");
	assert_int_equal(kind(t, "d/f"), 0);
	assert_int_equal(t->s.skipped, 1);
	/* A directory: merged into by a compare instead. */
	t->len = 0;
	frame_op(t, WIRE_MOVE, "e", "d");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "d/keep/mine", "mine too");
	assert_content(t, "e/g", "g");
	assert_int_equal(t->s.skipped, 1);
	assert_int_equal(t->s.nrescan, 1);
	assert_string_equal(t->s.rescan[0], "d");
}

static void
test_apply_move_to_an_excluded_name(void **state)
{
	struct tctx *t = *state;

	mkd(t, "dd");
	frame_op(t, WIRE_MOVE, "dd", "keep");
	assert_int_equal(feed(t, apply_frame), 0);
	/* The primary's keep/ is excluded here: its K of dd says more. */
	assert_int_equal(kind(t, "dd"), 'd');
	assert_int_equal(kind(t, "keep"), 0);
	assert_int_equal(t->s.skipped, 0);
	assert_int_equal(t->s.nrescan, 0);
}

static void
test_apply_state_and_delete_keep_excluded(void **state)
{
	struct tctx *t = *state;

	put_own(t);
	frame_entry(t, WIRE_STATE, 'l', "keep", "target", 0, 0777);
	frame_entry(t, WIRE_STATE, 'f', "d", NULL, 1, 0644);
	frame_op(t, WIRE_GONE_PATH, "keep", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_string_equal(t->msg, "");
	assert_content(t, "keep/mine", "mine");
	assert_content(t, "d/keep/mine", "mine too");
	assert_int_equal(kind(t, "d/f"), 0);
	assert_int_equal(t->s.batch.n, 0);
	assert_int_equal(t->s.skipped, 2);
	/* A directory deleted on the primary: all but what is ours. */
	t->len = 0;
	put(t, "d/g", "g");
	frame_op(t, WIRE_GONE_PATH, "d", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "d/keep/mine", "mine too");
	assert_int_equal(kind(t, "d/g"), 0);
	/* Kept, so not counted as deleted. */
	assert_int_equal(t->st.deleted, 0);
}

static void
test_apply_move_keeps_what_a_path_pattern_excludes(void **state)
{
	struct tctx *t = *state;

	put_own(t);
	mkd(t, "e");
	put(t, "e/keep", "not excluded in e");
	/* d/keep would become e2/keep, no longer excluded: not renamed. */
	frame_op(t, WIRE_MOVE, "d", "e2");
	/* e holds nothing excluded: renamed. */
	frame_op(t, WIRE_MOVE, "e", "e3");
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "d/keep/mine", "mine too");
	assert_content(t, "d/f", "f");
	assert_int_equal(kind(t, "e2"), 0);
	assert_content(t, "e3/keep", "not excluded in e");
	assert_int_equal(t->s.nrescan, 1);
	assert_string_equal(t->s.rescan[0], "e2");
	/* The primary's K of d then deletes all but what is ours. */
	t->len = 0;
	frame_op(t, WIRE_GONE_PATH, "d", NULL);
	assert_int_equal(feed(t, apply_frame), 0);
	assert_content(t, "d/keep/mine", "mine too");
	assert_int_equal(kind(t, "d/f"), 0);
}

static void
test_apply_refuses_malformed(void **state)
{
	struct tctx *t = *state;
	static const uint8_t bad[] = { 0, 1, 'x' };

	assert_int_equal(apply_frame(&t->s, WIRE_MOVE, bad, sizeof(bad)),
	    -AR_EPROTO);
	assert_string_equal(t->msg, "malformed rename");
}

/* ---------------------------------------------------------------- */
/* The guard of deletions (prune.c) */

/* The frames built so far as a stored answer, rewound; t->len is 0. */
static int
stored(struct tctx *t)
{
	char path[PATH_MAX];
	int fd;

	assert_int_equal(scratch_path(path, sizeof(path), t->top, "stored"),
	    0);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t->buf, t->len), (ssize_t)t->len);
	t->len = 0;
	return fd;
}

/* A tree of 7 entries: a/ holding x, y and b/z, then k1 and k2. */
static void
prune_tree(struct tctx *t)
{
	mkd(t, "a");
	put(t, "a/x", "x");
	put(t, "a/y", "y");
	mkd(t, "a/b");
	put(t, "a/b/z", "z");
	put(t, "k1", "k1");
	put(t, "k2", "k2");
}

/* A manifest of the whole tree that holds k1 only. */
static int
prune_k1_only(struct tctx *t)
{
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'f', "k1", NULL, 2, 0644);
	frame_end(t, 1);
	return stored(t);
}

static void
test_prune_compare_refuses_a_mass_deletion(void **state)
{
	struct tctx *t = *state;
	int fd;

	prune_tree(t);
	fd = prune_k1_only(t);
	assert_int_equal(prune_compare(&t->s, fd), -AR_EMAXDELETE);
	/* a and all it holds, and k2, of the 7 entries here. */
	assert_int_equal(t->s.count_deletes, 6);
	assert_int_equal(t->s.count_local, 7);
	assert_non_null(strstr(t->msg, "6 of the 7 entries"));
	assert_non_null(strstr(t->msg, "--force-delete"));
	assert_int_equal(kind(t, "a/b/z"), 'f');
	assert_int_equal(kind(t, "k2"), 'f');
	assert_int_equal(t->st.deleted, 0);
	assert_int_equal(t->st.entries, 0);
	assert_int_equal(t->s.blk.active, 0);
	assert_int_equal(t->s.counting, 0);

	/* A count, a percentage, or --force-delete let it pass. */
	t->msg[0] = '\0';
	t->cfg.standby.max_delete.percent = 0;
	t->cfg.standby.max_delete.n = 5;
	assert_int_equal(prune_compare(&t->s, fd), -AR_EMAXDELETE);
	assert_non_null(strstr(t->msg, "6 entries"));
	t->cfg.standby.max_delete.n = 6;
	assert_int_equal(prune_compare(&t->s, fd), 0);
	t->cfg.standby.max_delete.percent = 1;
	t->cfg.standby.max_delete.n = 86;
	assert_int_equal(prune_compare(&t->s, fd), 0);
	t->cfg.standby.max_delete.n = 85;
	assert_int_equal(prune_compare(&t->s, fd), -AR_EMAXDELETE);
	t->o.force_delete = 1;
	assert_int_equal(prune_compare(&t->s, fd), 0);
	close(fd);
	assert_int_equal(kind(t, "k2"), 'f');
}

static void
test_prune_compare_counts_type_changes(void **state)
{
	struct tctx *t = *state;
	int fd;

	put(t, "t", "a file where the primary has a directory");
	mkd(t, "u");
	put(t, "u/in", "in a directory where the primary has a file");
	put(t, "v", "kept");
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'd', "t", NULL, 0, 0755);
	frame_entry(t, WIRE_ENTRY, 'f', "u", NULL, 1, 0644);
	frame_entry(t, WIRE_ENTRY, 'f', "v", NULL, 4, 0644);
	frame_dir(t, "t");
	frame_entry(t, WIRE_ENTRY, 'f', "new", NULL, 1, 0644);
	frame_end(t, 4);
	fd = stored(t);
	t->cfg.standby.max_delete.n = 100;
	assert_int_equal(prune_compare(&t->s, fd), 0);
	assert_int_equal(t->s.count_deletes, 3);
	assert_int_equal(t->s.count_local, 4);
	close(fd);
	assert_int_equal(kind(t, "t"), 'f');
	assert_int_equal(kind(t, "u/in"), 'f');
}

static void
test_prune_compare_leaves_excluded_out(void **state)
{
	struct tctx *t = *state;
	int fd;

	mkd(t, "keep");
	put(t, "keep/1", "1");
	put(t, "keep/2", "2");
	put(t, "lose", "lose");
	put(t, "stay", "stay");
	put(t, ".asyncrep-tmp.left", "a leftover");
	frame_dir(t, "");
	frame_entry(t, WIRE_ENTRY, 'f', "stay", NULL, 4, 0644);
	frame_end(t, 1);
	fd = stored(t);
	/* lose only, of keep, lose and stay: the temp file is not ours to
	 * count. */
	assert_int_equal(prune_compare(&t->s, fd), 0);
	assert_int_equal(t->s.count_deletes, 1);
	assert_int_equal(t->s.count_local, 3);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_merge_upto_deletes_what_sorts_before, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_upto_is_byte_order,
		    setup, teardown),
		EXCLUDED(test_merge_keeps_excluded, "keep*"),
		cmocka_unit_test_setup_teardown(
		    test_merge_dry_run_changes_nothing, setup_dry_run,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_merge_manifest_makes_the_tree_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_merge_refuses_unsorted_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_merge_refuses_reserved_name_and_bad_count, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_apply_move_renames_our_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_apply_move_replaces_what_is_there, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_apply_move_that_fails_queues_a_compare, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_apply_delete, setup,
		    teardown),
		EXCLUDED(test_apply_delete_keeps_excluded, "keep*"),
		cmocka_unit_test_setup_teardown(test_apply_state, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_apply_rescan, setup,
		    teardown),
		/* keep/ excludes directories only: a file called keep is
		 * the primary's. */
		EXCLUDED(test_merge_skips_a_file_over_an_excluded_dir,
		    "keep/"),
		EXCLUDED(test_apply_move_over_an_excluded_dir, "keep/"),
		EXCLUDED(test_apply_move_over_a_dir_holding_excluded, "keep/"),
		EXCLUDED(test_apply_move_to_an_excluded_name, "keep/"),
		EXCLUDED(test_apply_state_and_delete_keep_excluded, "keep/"),
		/* On a whole path: renaming d changes what it excludes. */
		EXCLUDED(test_apply_move_keeps_what_a_path_pattern_excludes,
		    "/d/keep/"),
		cmocka_unit_test_setup_teardown(test_apply_refuses_malformed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_prune_compare_refuses_a_mass_deletion, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_prune_compare_counts_type_changes, setup, teardown),
		EXCLUDED(test_prune_compare_leaves_excluded_out, "keep*"),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
