/*
 * prune.c: the standby's guard against mass deletion (syncer.h). A
 * primary that serves an empty directory (its data_dir's filesystem not
 * mounted) would make the next compare delete the whole replica, the
 * copy that was meant to survive. So before a compare that stands for
 * the primary's whole tree deletes anything, what it would delete is
 * counted, and more than max_delete (a count, or a percentage of the standby's tree)
 * refuses it with -AR_EMAXDELETE, nothing deleted, unless --force-delete.
 *
 * The compare is counted by the merge itself in counting mode
 * (s->counting, sync.c), replaying the stored manifest once more: one
 * directory's listing at a time, as the merge. A directory counts with
 * everything in it (what the standby excludes in it too, though the
 * merge keeps that: the count errs on the side of refusing); the
 * standby's excluded names the merge meets, and our temp files, never
 * count.
 *
 * Only such a compare is counted (sync_compare's guard): a one-shot
 * sync, the first compare of a follower, and the one the primary asks
 * for at each start of watch, after an overflow, or in a rescue's last
 * batch. That is how an unmounted or emptied data_dir reaches a
 * standby. A batch of changes deletes what the primary's watcher saw
 * deleted on the filesystem watch checked at its start (source.h), and
 * the compares a batch leads to (of a subtree it asks for, or those a
 * failed rename or a missing parent queue, of the whole tree for a name
 * at the top) repair what it could not apply by name; in a small tree
 * that churns, either may delete most of it, on purpose.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fs.h"
#include "syncer.h"
#include "walk.h"

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

/* Whether deleting d of the total entries of the tree is within
 * max_delete. */
static int
prune_within(const struct config_portion *m, uint64_t d, uint64_t total)
{
	if (!m->percent)
		return d <= m->n;
	/* d <= n% of total, exactly and without overflow. */
	return d <= total / 100 * m->n + total % 100 * m->n / 100;
}

/* The refusal of a compare that would delete too much. */
static int
prune_refuse(struct syncer *s, uint64_t total)
{
	const struct config_portion *m = &s->cfg->max_delete;
	char of[64] = "";

	if (m->percent)
		snprintf(of, sizeof(of), " of the %llu entries",
		    (unsigned long long)total);
	return sync_fail(s, -AR_EMAXDELETE, "a compare with the primary would "
	    "delete %llu%s of data directory '%s', more than max_delete "
	    "(%llu%s) allows: nothing was deleted; if the primary's data_dir "
	    "is mounted and the deletion is meant, run again with "
	    "--force-delete or raise max_delete",
	    (unsigned long long)s->count_deletes,
	    m->percent ? of : " entries", s->cfg->data_dir,
	    (unsigned long long)m->n, m->percent ? "%" : "");
}

int
prune_compare(struct syncer *s, int mfd)
{
	int r, f;

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
	if (r == 0 && !prune_within(&s->cfg->max_delete, s->count_deletes,
	    s->count_local))
		r = prune_refuse(s, s->count_local);
	return r;
}
