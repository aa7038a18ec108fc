/*
 * prune.c: the standby's guard against mass deletion (syncer.h). A
 * primary that serves an empty directory (its data_dir's filesystem not
 * mounted) would make the next compare delete the whole replica, the
 * copy that was meant to survive. So before a compare or a batch of
 * changes deletes anything, what it would delete is counted, and more
 * than max_delete (a count, or a percentage of the standby's tree)
 * refuses it with -AR_EMAXDELETE, nothing deleted, unless --force-delete.
 *
 * A compare is counted by the merge itself in counting mode
 * (s->counting, sync.c), replaying the stored manifest once more: one
 * directory's listing at a time, as the merge. A batch is counted from
 * its K (the path and what it holds), U (a local entry of another type,
 * replaced) and M (the target a rename replaces) frames, against the
 * tree as it is before the batch. A directory counts with everything
 * in it; the standby's excluded names and our temp files never count.
 * The tree is counted only as far as the percentage needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "syncer.h"
#include "walk.h"
#include "wire.h"

int
prune_count_local(struct syncer *s, const struct walk_ent *le)
{
	uint64_t n = 0;

	s->count_deletes++;
	if (le->type != WALK_DIR || s->blk.dirfd < 0)
		return 0;
	if (fs_count_tree(s->blk.dirfd, le->name, UINT64_MAX, &n) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot count what it "
		    "holds: %s", sync_esc(le->name, le->namelen),
		    strerror(errno));
	/* Met nowhere else: the merge does not descend into it. */
	s->count_deletes += n;
	s->count_local += n;
	return 0;
}

/*
 * Whether s->count_deletes is within max_delete, for a tree known to
 * hold at least known entries (all of them when whole); the rest of the
 * tree is counted when a percentage needs it. *total is the tree's size
 * as far as it was counted.
 */
static int
prune_within(struct syncer *s, uint64_t known, int whole, uint64_t *total,
    int *ok)
{
	const struct config_portion *m = &s->cfg->max_delete;
	uint64_t d = s->count_deletes, need, n = 0;

	*total = known;
	*ok = 1;
	if (d == 0)
		return 0;
	if (!m->percent) {
		*ok = d <= m->n;
		return 0;
	}
	if (m->n == 0) {
		*ok = 0;
		return 0;
	}
	/* d <= n% of the tree: the tree holds at least ceil(100 d / n). */
	need = d > (UINT64_MAX - 100) / 100 ? UINT64_MAX :
	    (d * 100 + m->n - 1) / m->n;
	if (known >= need || whole || s->rootfd < 0) {
		*ok = known >= need;
		return 0;
	}
	if (fs_count_tree(s->rootfd, NULL, need, &n) != 0)
		return sync_fail(s, -AR_EIO, "data directory '%s': cannot "
		    "count its entries: %s", s->cfg->data_dir,
		    strerror(errno));
	*total = n;
	*ok = n >= need;
	return 0;
}

/* The refusal of what would delete too much. */
static int
prune_refuse(struct syncer *s, const char *what, uint64_t total)
{
	const struct config_portion *m = &s->cfg->max_delete;
	char of[64] = "";

	/* A refused percentage counted the whole tree. */
	if (m->percent)
		snprintf(of, sizeof(of), " of the %llu entries",
		    (unsigned long long)total);
	return sync_fail(s, -AR_EMAXDELETE, "%s would delete %llu%s of data "
	    "directory '%s', more than max_delete (%llu%s) allows: nothing "
	    "was deleted; is the primary's data_dir mounted? If the deletion "
	    "is meant, run again with --force-delete or raise max_delete",
	    what, (unsigned long long)s->count_deletes,
	    m->percent ? of : " entries", s->cfg->data_dir,
	    (unsigned long long)m->n, m->percent ? "%" : "");
}

/* ---------------------------------------------------------------- */
/* A compare */

int
prune_compare(struct syncer *s, int mfd, const char *path)
{
	uint64_t total;
	int r, f, ok;

	if (s->o->force_delete)
		return 0;
	s->counting = 1;
	s->count_deletes = 0;
	s->count_local = 0;
	s->mf_entries = 0;
	r = fetch_replay(s, mfd, sync_merge_frame);
	/* Counting, the finish deletes nothing: it also ends a block that
	 * an error left open. */
	f = sync_block_finish(s);
	if (r == 0)
		r = f;
	s->counting = 0;
	s->mf_entries = 0;
	if (r == 0)
		r = prune_within(s, s->count_local, path[0] == '\0', &total,
		    &ok);
	if (r == 0 && !ok)
		r = prune_refuse(s, "a compare with the primary", total);
	return r;
}

/* ---------------------------------------------------------------- */
/* A batch of changes */

/*
 * Count the local entry at path as deleted (with what it holds) unless
 * it is missing, excluded, or of the type keep ('f', 'd' or 'l'; 0:
 * any type is deleted).
 */
static int
prune_count_path(struct syncer *s, const char *path, size_t len, int keep)
{
	const char *base;
	struct stat st;
	uint64_t n = 0;
	int dirfd, type, r = 0;

	if (fs_open_parent(s->rootfd, path, &dirfd, &base) != 0)
		return 0;	/* no parent here: nothing to delete */
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		goto out;
	type = S_ISREG(st.st_mode) ? WALK_FILE : S_ISDIR(st.st_mode) ?
	    WALK_DIR : S_ISLNK(st.st_mode) ? WALK_LINK : WALK_OTHER;
	if (type == keep || exclude_match(s->exclude, path, len,
	    type == WALK_DIR))
		goto out;
	if (type == WALK_DIR &&
	    fs_count_tree(dirfd, base, UINT64_MAX, &n) != 0) {
		r = sync_fail(s, -AR_EIO, "'%s': cannot count what it holds: "
		    "%s", sync_esc(path, len), strerror(errno));
		goto out;
	}
	s->count_deletes += 1 + n;
out:
	close(dirfd);
	return r;
}

/* A frame of the stored batch: what applying it would delete. Malformed
 * frames are left to apply_frame, which refuses them. */
static int
prune_batch_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;

	switch (type) {
	case WIRE_GONE_PATH:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return 0;
		return prune_count_path(s, s->op.path, s->op.path_len, 0);
	case WIRE_MOVE:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return 0;
		return prune_count_path(s, s->op.path2, s->op.path2_len, 0);
	case WIRE_STATE:
		if (wire_get_entry(p, len, WIRE_STATE, &s->ent) != 0)
			return 0;
		return prune_count_path(s, s->ent.name, s->ent.name_len,
		    s->ent.type);
	default:
		return 0;
	}
}

int
prune_batch(struct syncer *s, int fd)
{
	uint64_t total;
	int r, ok;

	if (s->o->force_delete)
		return 0;
	s->count_deletes = 0;
	r = fetch_replay(s, fd, prune_batch_frame);
	if (r == 0)
		r = prune_within(s, 0, 0, &total, &ok);
	if (r == 0 && !ok)
		r = prune_refuse(s, "a batch of changes from the primary",
		    total);
	return r;
}
