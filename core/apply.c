/*
 * apply.c: a batch of changes from GET /v1/changes, applied to the data
 * directory while following: M renames our copy (its data need not
 * travel again), U makes one path match the primary's state, K deletes,
 * S queues a subtree compare. What cannot be applied by name (a parent
 * missing here, a rename that failed) is queued for a compare, which
 * puts it right. The loop that fetches and acknowledges batches is
 * follow.c's.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "log.h"
#include "syncer.h"
#include "util.h"
#include "walk.h"
#include "wire.h"

/* Queue the subtree at path for a compare after the batch ("" = all). */
static int
apply_rescan_add(struct syncer *s, const char *path, size_t len)
{
	size_t i;
	int r;

	if (len == 0) {
		s->full = 1;
		return 0;
	}
	for (i = 0; i < s->nrescan; i++) {
		if (strlen(s->rescan[i]) == len &&
		    memcmp(s->rescan[i], path, len) == 0)
			return 0;
	}
	r = util_grow(&s->rescan, &s->rescan_cap, s->nrescan + 1,
	    sizeof(*s->rescan), 16);
	if (r != 0)
		return r;
	s->rescan[s->nrescan] = strndup(path, len);
	if (s->rescan[s->nrescan] == NULL)
		return -AR_ENOMEM;
	s->nrescan++;
	return 0;
}

/* The parent of path, as a length ("" = 0). */
static size_t
apply_parent_len(const char *path, size_t len)
{
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len > 0 ? len - 1 : 0;
}

/*
 * Make s->blk the parent directory of path, without a listing, so the
 * sync_entry_* functions can work on one name. *missing is set when the
 * parent is missing here (with rescan_missing, its subtree is then
 * queued for a compare); s->blk is then untouched.
 */
static int
apply_pseudo_block(struct syncer *s, const char *path, size_t len,
    const char **base, int rescan_missing, int *missing)
{
	struct sync_block *b = &s->blk;
	size_t plen = apply_parent_len(path, len);
	int dirfd, r;

	assert(len <= WIRE_PATH_MAX);
	*missing = 0;
	r = fs_open_parent(s->rootfd, path, &dirfd, base);
	if (r != 0) {
		if (r == -AR_EPROTO || errno == ENOENT || errno == ENOTDIR) {
			*missing = 1;
			if (rescan_missing &&
			    apply_rescan_add(s, path, plen) != 0)
				return -AR_ENOMEM;
			return 0;
		}
		return sync_fail(s, -AR_EIO, "'%s': cannot open its directory: "
		    "%s", sync_esc(path, len), strerror(errno));
	}
	memcpy(b->path, path, plen);
	b->path[plen] = '\0';
	b->path_len = plen;
	b->dirfd = dirfd;
	b->local.n = 0;
	b->cursor = 0;
	b->have_last = 0;
	b->dirty = 0;
	b->active = 1;
	return 0;
}

/* *le describes base in s->blk when it exists here; else NULL. */
static struct walk_ent *
apply_local(struct syncer *s, const char *base, struct walk_ent *le)
{
	memset(le, 0, sizeof(*le));
	if (fstatat(s->blk.dirfd, base, &le->st, AT_SYMLINK_NOFOLLOW) != 0)
		return NULL;
	le->name = base;
	le->namelen = strlen(base);
	le->type = walk_type_of(le->st.st_mode);
	return le;
}

/* Finish the one-name block whatever r is; r, else the finish's error. */
static int
apply_block_end(struct syncer *s, int r)
{
	int f = sync_block_finish(s);

	return r != 0 ? r : f;
}

/* U: make one path match the primary's current state. */
static int
apply_state(struct syncer *s, const struct wire_entry *e)
{
	struct walk_ent le, *lep;
	const char *base;
	int r, missing;

	/* Excluded here, as the primary has it: not ours to mirror. */
	if (exclude_match(s->exclude, e->name, e->name_len,
	    e->type == WALK_DIR))
		return 0;
	r = apply_pseudo_block(s, e->name, e->name_len, &base, 1, &missing);
	if (r != 0 || missing)
		return r;
	lep = apply_local(s, base, &le);
	s->uent = *e;
	assert(strlen(base) <= WIRE_NAME_MAX);
	s->uent.name_len = (uint16_t)strlen(base);
	memmove(s->uent.name, base, s->uent.name_len + 1u);
	s->st->entries++;
	s->confirming = 1;
	r = sync_entry_apply(s, &s->uent, lep, e->name, e->name_len);
	s->confirming = 0;
	return apply_block_end(s, r);
}

/* K: the path is gone on the primary. */
static int
apply_delete(struct syncer *s, const char *path, size_t len)
{
	struct walk_ent le;
	const char *base;
	int r, missing;

	r = apply_pseudo_block(s, path, len, &base, 0, &missing);
	if (r != 0 || missing)
		return r;	/* no parent here: nothing to delete */
	/* What this standby excludes (by the type it has here) stays. */
	if (apply_local(s, base, &le) != NULL)
		r = sync_remove_local(s, &le, NULL);
	return apply_block_end(s, r);
}

/*
 * M: rename our copy, so its data need not travel again. Whatever fails,
 * a compare of the target puts it right. What this standby excludes is
 * matched with the type the names have here: its own is never moved,
 * replaced or renamed over.
 */
static int
apply_move(struct syncer *s, const struct wire_pathop *op)
{
	const char *fbase, *tbase;
	struct stat fst, tst;
	int fdir = -1, tdir = -1, r = 0, kept, tdirp;

	if (fs_open_parent(s->rootfd, op->path, &fdir, &fbase) != 0 ||
	    fs_open_parent(s->rootfd, op->path2, &tdir, &tbase) != 0) {
		r = apply_rescan_add(s, op->path2, apply_parent_len(op->path2,
		    op->path2_len));
		goto out;
	}
	/* Ours to keep, or gone: the target is compared instead. */
	if (fstatat(fdir, fbase, &fst, AT_SYMLINK_NOFOLLOW) != 0 ||
	    sync_is_own(s, op->path, op->path_len, walk_type_of(fst.st_mode))) {
		r = apply_rescan_add(s, op->path2, op->path2_len);
		goto out;
	}
	/* Excluded here as the primary has it: the source's own K or U
	 * frame tells what becomes of our copy. */
	if (exclude_match(s->exclude, op->path2, op->path2_len,
	    S_ISDIR(fst.st_mode)))
		goto out;
	tdirp = fstatat(tdir, tbase, &tst, AT_SYMLINK_NOFOLLOW) == 0;
	if (tdirp && sync_is_own(s, op->path2, op->path2_len,
	    walk_type_of(tst.st_mode))) {
		r = sync_skip(s, walk_type_of(fst.st_mode), op->path2,
		    op->path2_len, 0);
		goto out;
	}
	/* Patterns on whole paths may not exclude beneath the new name
	 * what they excluded beneath the old: ours stays where it is, and
	 * the target is compared instead. */
	if (S_ISDIR(fst.st_mode) && exclude_has_paths(s->exclude) &&
	    sync_holds_own(s, fdir, fbase, op->path, op->path_len)) {
		r = apply_rescan_add(s, op->path2, op->path2_len);
		goto out;
	}
	if (s->o->itemize != NULL) {
		char a[LOG_ESC_MAX];

		fprintf(s->o->itemize, "*moving     %s => %s\n",
		    log_escape(op->path, op->path_len, a, sizeof(a)),
		    sync_esc(op->path2, op->path2_len));
	}
	if (s->o->dry_run)
		goto out;
	r = renameat(fdir, fbase, tdir, tbase);
	if (r != 0 && (errno == ENOTEMPTY || errno == EEXIST ||
	    errno == EISDIR || errno == ENOTDIR)) {
		/* The primary's rename replaced it: so do we, but for what
		 * this standby excludes in it. */
		r = sync_remove_at(s, tdir, tbase, op->path2, op->path2_len,
		    &kept);
		if (r == 0 && kept && !S_ISDIR(fst.st_mode)) {
			r = sync_skip(s, walk_type_of(fst.st_mode),
			    op->path2, op->path2_len, 1);
			goto out;
		}
		/* A directory kept for what it holds is merged into by the
		 * compare of the target. */
		if (r == 0 && !kept)
			r = renameat(fdir, fbase, tdir, tbase);
		else
			r = -1;
	}
	if (r != 0) {
		r = apply_rescan_add(s, op->path2, op->path2_len);
		goto out;
	}
	s->changed = 1;
	if (fs_fsync_dir(fdir) != 0 || fs_fsync_dir(tdir) != 0)
		r = sync_fail(s, -AR_EIO, "fsync after a rename: %s",
		    strerror(errno));
out:
	if (fdir >= 0)
		close(fdir);
	if (tdir >= 0)
		close(tdir);
	return r;
}

int
apply_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;

	int r;

	/* A change touching a path in flight in a lane (the path, above
	 * or beneath it) waits for that transfer, so that it applies in
	 * order. */
	switch (type) {
	case WIRE_MOVE:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return sync_fail(s, -AR_EPROTO, "malformed rename");
		r = lane_wait_path(s, s->op.path, s->op.path_len,
		    LANE_TOUCH_PATH, &s->lane_rewind);
		if (r == 0)
			r = lane_wait_path(s, s->op.path2, s->op.path2_len,
			    LANE_TOUCH_PATH, &s->lane_rewind);
		return r != 0 ? r : apply_move(s, &s->op);
	case WIRE_STATE:
		if (wire_get_entry(p, len, WIRE_STATE, &s->ent) != 0)
			return sync_fail(s, -AR_EPROTO, "malformed state");
		sync_map_ids(s, &s->ent);
		/* The file a lane receives changed again: not waited for,
		 * looked at again once the lane is done. */
		if (s->ent.type == WALK_FILE && lane_defer(s, s->ent.name,
		    s->ent.name_len))
			return 0;
		r = lane_wait_path(s, s->ent.name, s->ent.name_len,
		    s->ent.type == WALK_DIR ? LANE_TOUCH_DIR_STATE :
		    LANE_TOUCH_PATH, &s->lane_rewind);
		if (r != 0)
			return r;
		s->lane_ok = 1;
		r = apply_state(s, &s->ent);
		s->lane_ok = 0;
		return r;
	case WIRE_GONE_PATH:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return sync_fail(s, -AR_EPROTO, "malformed deletion");
		r = lane_wait_path(s, s->op.path, s->op.path_len,
		    LANE_TOUCH_PATH, &s->lane_rewind);
		return r != 0 ? r : apply_delete(s, s->op.path,
		    s->op.path_len);
	case WIRE_RESCAN:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return sync_fail(s, -AR_EPROTO, "malformed rescan");
		return apply_rescan_add(s, s->op.path, s->op.path_len);
	case WIRE_IDNAME:
		return sync_idname_frame(s, p, len);
	default:
		return 0;
	}
}

int
apply_dirattr(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	const char *base;
	int dirfd, r;

	if (type == WIRE_XATTRS)
		return sync_xattr_frame(s, p, len);
	if (type == WIRE_ATTRS) {
		/* The A frame's directory (data_dir itself among them). */
		r = sync_attrs_frame(s, p, len);
		if (r == 0)
			lane_dirattr(s, &s->ent);
		return r;
	}
	if (type == WIRE_IDNAME)
		return sync_idname_frame(s, p, len);
	if (type != WIRE_STATE || wire_get_entry(p, len, WIRE_STATE,
	    &s->ent) != 0 || exclude_match(s->exclude, s->ent.name,
	    s->ent.name_len, s->ent.type == WALK_DIR)) {
		s->xpending = 0;
		return 0;
	}
	sync_map_ids(s, &s->ent);
	if (fs_open_parent(s->rootfd, s->ent.name, &dirfd, &base) != 0) {
		s->xpending = 0;
		return 0;
	}
	r = sync_xattrs_apply(s, dirfd, base, s->ent.name, s->ent.name_len,
	    &s->ent);
	if (r == 0 && s->ent.type == WALK_DIR)
		r = sync_dir_attrs(s, dirfd, base, s->ent.name,
		    s->ent.name_len, &s->ent);
	close(dirfd);
	/* A lane's rename in it changes its mtime once more. */
	if (r == 0)
		lane_dirattr(s, &s->ent);
	return r;
}
