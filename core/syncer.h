/*
 * syncer.h: private to the standby's replication code, which these files
 * share (nothing else includes this header):
 *   sync.c    the run: one-shot compare and merge of a directory at a
 *             time, metadata, life cycle (sync_run, sync_follow)
 *   fetch.c   the receiving side: whole files in batches, deltas, answers
 *             stored in state_dir and replayed
 *   apply.c   a batch of changes applied to the data directory (M, U, K
 *             and S frames)
 *   follow.c  the follow loop: long-poll, apply, acknowledge, reconnect
 *   append.c  the block store (state_dir/blocks) and the append path
 *   prune.c   the guard of deletions: what a compare that stands for the
 *             primary's whole tree would delete, counted before anything
 *             is, against max_delete
 *   lane.c    big transfers of a follower in threads (and connections)
 *             of their own, while later batches go on
 * state_dir itself belongs to state.c.
 *
 * Every function returns 0 or a negative enum ar_err; the first error of
 * a run is explained in s->msg (sync_fail).
 */
#ifndef ASYNCREP_SYNCER_H
#define ASYNCREP_SYNCER_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "client.h"
#include "config.h"
#include "exclude.h"
#include "idnames.h"
#include "hash.h"
#include "log.h"
#include "rate.h"
#include "progress.h"
#include "state.h"
#include "verify.h"
#include "sync.h"
#include "walk.h"
#include "wire.h"
#include "xattr.h"

/* ---------------------------------------------------------------- */
/* What a run holds */

/* Where a file of a batch is while the answer to /v1/files arrives. */
enum fetch_item_state {
	FETCH_ITEM_PENDING,	/* requested, nothing received */
	FETCH_ITEM_RECEIVING,	/* F seen, temp file open */
	FETCH_ITEM_READY,	/* verified temp file, to rename */
	FETCH_ITEM_RETRY,	/* the primary said R */
};

/* A file to receive whole in the current batch. */
/* The free-space check of one file being received (fetch.c). */
struct fetch_room {
	struct syncer *s;
	int fd;			/* any fd on its file system (borrowed) */
	const char *path;
	uint64_t size;		/* the announced size */
	uint64_t avail;		/* free for it when it began, with what it
				 * wrote since; UINT64_MAX: not checked */
	uint64_t written;	/* bytes of data written, holes not counted */
};

struct fetch_item {
	char *path;
	const char *base;	/* last component, inside path */
	int dirfd;		/* its directory (owned) */
	dev_t dir_dev;
	ino_t dir_ino;
	int existed;		/* a local version is replaced */
	int gone;		/* R said gone, not changed */
	enum fetch_item_state state;
	int fd;			/* temp file while receiving */
	char tmp[NAME_MAX + 1];
	uint64_t size;		/* from the F frame */
	uint64_t got;
	struct fetch_room room;
	struct timespec mtime;
	uint32_t mode, uid, gid;
};

/* Files to receive whole with one /v1/files request. */
struct fetch_batch {
	struct fetch_item *items;
	size_t n, cap;
	uint64_t bytes;		/* announced bytes of the queued files */
	size_t body_len;	/* bytes of the request body */
	size_t cur;		/* item being answered */
	int ended;		/* Z frame seen */
	struct hash_ctx hash;
	struct blocks *blk;	/* block list of the file being received,
				 * for the block store, or NULL */
};

/* The directory being merged: its sorted local listing and a cursor
 * (apply.c: one directory, no listing, for a single name). */
struct sync_block {
	int active;		/* between sync_block_start and _finish */
	int dirfd;		/* -1 in a dry run for a directory not yet made */
	char path[WIRE_PATH_MAX + 1];
	size_t path_len;
	struct walk_dir local;
	size_t cursor;
	char last[WIRE_NAME_MAX + 1];
	size_t last_len;
	int have_last;
	int dirty;		/* entries created or removed here */
};

/* A name of a hard-link group, linked once the files are in. */
struct sync_hardlink {
	char *path;
	char *target;		/* the earlier path of its group */
	uint64_t size;		/* to fetch it as a copy if it cannot link */
};

/* One run of sync or sync --follow. */
struct syncer {
	const struct sync_opts *o;
	const struct config_standby *cfg;
	struct sync_stats *st;
	struct client *client;
	int rootfd;
	struct state state;
	int is_root;
	int changed;		/* anything not yet durable: syncfs at the
				 * end (sync_make_durable) */
	unsigned inline_fsyncs;	/* sync_durable_fd calls since then */
	struct sync_block blk;
	struct fetch_batch batch;
	char **retry;
	size_t nretry, retry_cap;
	int retrying;		/* the retry pass: R now means failed */
	char *msg;
	size_t msglen;
	struct wire_entry ent;	/* scratch for decoded entries */
	struct wire_entry fent;
	struct wire_entry uent;	/* a U frame, renamed to its base name */
	uint64_t mf_entries;	/* E frames of the manifest being merged */
	/* --checksum, in a compare of the whole tree: the files equal in
	 * size and mtime, whose content is compared after the merge */
	int checksumming;
	struct verify_list sums;
	struct progress prog;	/* one-shot --progress */
	struct exclude *exclude;
	struct exclude *inplace;	/* inplace patterns, or NULL */
	struct rate bw;		/* bwlimit of [standby], for every client */
	/* Entries of the primary skipped as they collide with names this
	 * standby excludes: since the last whole compare, as status shows
	 * it, and the last of them (escaped). */
	uint64_t skipped;
	uint64_t skipped_saved;	/* as state_dir holds it */
	char skip_last[LOG_ESC_MAX];
	/* Of those, entries this standby cannot make (a device as a user,
	 * a file system without the kind): one-shot's exit 3. */
	uint64_t unreplicated;
	/* xattrs and ACLs (WIRE_V_FIDELITY): the policy of the
	 * configuration, the one this process can apply (trusted. and
	 * security. need root), whether data_dir's file system holds them,
	 * the set of a Y frame waiting for its entry, scratch, and the
	 * namespaces warned about (once a run) */
	struct xattr_policy xcfg, xpol;
	int xattrs_fs;
	struct xattr_set *xwant, *xlocal;
	int xpending;
	int xwarned;
	uint64_t xincomplete;	/* incomplete sets named, see below */
	/* hard links of the compare (WIRE_V_FIDELITY) */
	struct sync_hardlink *hl;
	size_t nhl, hl_cap;
	/* prune.c: the merge only counts what it would delete */
	int counting;
	uint64_t count_deletes;	/* local entries it would delete */
	uint64_t count_local;	/* local entries it met */
	/* follow */
	char **rescan;		/* subtrees to compare after a batch */
	size_t nrescan, rescan_cap;
	int full;		/* the whole tree must be compared */
	int following;		/* sync --follow */
	int progress;		/* a batch was applied since the last error */
	int hold;		/* keep the position: a file moved while sent */
	int confirming;		/* applying a U: a big file whose size and
				 * mtime match is confirmed by its root */
	char id[65];
	/* lanes (lane.c), following only */
	struct lane *lanes;	/* LANE_MAX, or NULL: none */
	int lane_ok;		/* a U of a batch is applied: a big file may
				 * go to a lane */
	uint64_t lane_base;	/* the position before the batch applied */
	uint64_t lane_count;	/* lanes started */
	uint64_t lane_rewind;	/* a lane's file moved while sent, or changed
				 * again: ask again from here (UINT64_MAX:
				 * no need) */
	uint64_t lane_saved;	/* the position in state_dir */
	/* A position durable but put off (follow.c: saved at most once
	 * a second while batches come at the rate of the changes): */
	int save_pending;
	uint64_t save_ack;	/* the position to save */
	uint64_t saved_ms;	/* monotonic ms of the last save */
	uint64_t lane_sent, lane_received;	/* bytes on lanes' wires */
	struct wire_pathop op;
	/* map_users (WIRE_V_NAMES): the primary's ids by name, NULL when
	 * off; lanes borrow it. names_warned: the primary is older */
	struct idnames_map *names;
	int names_warned;
	uint64_t hello_seq;
	uint32_t hello_role;
	char hello_gen[WIRE_GEN_LEN + 1];
};

/*
 * An answer stored whole in a state_dir file while its framing is
 * checked frame by frame, so it can be replayed while other requests
 * run on the same connection.
 */
struct fetch_stored_ctx {
	struct syncer *s;
	struct wire_reader rd;
	int fd;
	wire_frame_cb *check;	/* sees each frame as it arrives */
	void *arg;
	int ended;		/* check saw the last frame */
	uint64_t stored;	/* bytes written, at most max_stored_size */
	uint64_t names;		/* I frames, at most IDNAMES_PER_ANSWER */
};



/* ---------------------------------------------------------------- */
/* sync.c: the run, metadata, merging one directory */

/* Record err's explanation in s->msg unless one is there (the first
 * error is the cause); returns err. */
int sync_fail(struct syncer *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An escaped copy of a path for messages; two calls may share a line. */
const char *sync_esc(const char *p, size_t len);
/* The protocol version of the connection (1 without one). */
uint32_t sync_version(const struct syncer *s);
/* One rsync-style line on the itemize stream, if any. */
void sync_itemize(struct syncer *s, const char *code, const char *path,
    size_t len, const char *suffix);

/* Entries with incomplete xattrs named in a run; the rest counted. */
#define SYNC_INCOMPLETE_NAMED 10

/* The length of an itemize code, as rsync's: ".d..t.og...". */
#define SYNC_CODE_LEN 11
/* 1 if the attributes of st differ from e's (of the same type): mtime
 * ('t', not of a file: it goes with the content), mode ('p', not of a
 * symlink: Linux cannot set it) or, as root, owner and group ('o',
 * 'g'); code (SYNC_CODE_LEN + 1 bytes) is then the itemize code. */
int sync_attrs_code(const struct syncer *s, const struct stat *st,
    const struct wire_entry *e, char *code);
int sync_attrs_set_fd(struct syncer *s, int fd, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t sec, uint32_t nsec);
int sync_attrs_set_at(struct syncer *s, int dirfd, const char *name,
    const struct wire_entry *e, int dir);
/* The mode, owner and mtime of the directory dirfd/name (path, for
 * messages) made e's, if it is a directory. */
int sync_dir_attrs(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, const struct wire_entry *e);
/* The mode, owner and mtime of e given to data_dir itself (its xattrs
 * aside): an A frame's, once more after a lane's rename in it. */
int sync_root_attrs(struct syncer *s, const struct wire_entry *e);

/* An A frame (the state of a directory itself), applied: the final pass
 * of a compare and of a batch. */
int sync_attrs_frame(struct syncer *s, const uint8_t *p, uint32_t len);
/* An I frame of a stored answer, counted by its check (a server names
 * each id once per answer, at most IDNAMES_MAX of each kind): 0, or a
 * protocol error past that. */
int sync_idname_count(struct fetch_stored_ctx *st);
/* An I frame (WIRE_V_NAMES): the name of one of the primary's ids. */
int sync_idname_frame(struct syncer *s, const uint8_t *p, uint32_t len);
/* With map_users, the ids of a decoded E, U, A or F frame made this
 * host's. */
void sync_map_ids(struct syncer *s, struct wire_entry *e);
/* A Y frame: the xattrs of the entry of the next E, U or A frame. */
int sync_xattr_frame(struct syncer *s, const uint8_t *p, uint32_t len);
/* The final pass: make the xattrs and ACLs of dirfd/name (NULL: dirfd;
 * path for messages) those of the pending Y frame, or none; e is the
 * entry (its mode is set again after an ACL). */
int sync_xattrs_apply(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, const struct wire_entry *e);
/* The primary's entry at path cannot be made here (why): a warning with
 * the path, counted with the skipped ones (status) and in
 * s->unreplicated. Returns 0. */
int sync_unreplicated(struct syncer *s, const char *path, size_t len,
    const char *why);

/* 1 if the local entry at path, of type (WALK_*), is one this
 * standby excludes, which nothing the primary sends replaces, removes
 * or renames over. */
int sync_is_own(const struct syncer *s, const char *path, size_t len,
    int type);
/* The primary's entry at path, of type (WALK_*), is skipped, as it
 * would replace a name this standby excludes (holds: a directory holding
 * such names): a warning, and counted (s->skipped, for status).
 * Returns 0. */
int sync_skip(struct syncer *s, int type, const char *path, size_t len,
    int holds);
/* Directories deeper than this below a removed one are not entered. */
#define SYNC_REMOVE_DEPTH 2048
/* Remove dirfd/name, at path (plen bytes), with all it holds but the
 * names this standby excludes, kept with the directories leading to
 * them (*kept is then set); a dry run removes nothing. */
int sync_remove_at(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen, int *kept);
/* 1 if the directory dirfd/name, at path, holds names this standby
 * excludes (0 too when it cannot be read). */
int sync_holds_own(struct syncer *s, int dirfd, const char *name,
    const char *path, size_t plen);

/* s->blk becomes the directory path, listed; sync_block_finish deletes
 * what the merge did not reach and makes the directory durable. */
int sync_block_start(struct syncer *s, const char *path, size_t len);
int sync_block_finish(struct syncer *s);
/* Delete the local names of s->blk sorted before name; *le is the local
 * entry of that name, or NULL. */
int sync_merge_upto(struct syncer *s, const char *name, size_t nlen,
    const struct walk_ent **le);
/* Delete the local entry le of s->blk but what this standby excludes
 * (sync_remove_at); *kept (may be NULL) is set when le, or something
 * beneath it, is kept. */
int sync_remove_local(struct syncer *s, const struct walk_ent *le,
    int *kept);
/* Make the name e->name of s->blk (local entry le, or NULL; path its
 * whole path) what e describes: a directory, a link, or a file fetched
 * whole or as a delta. */
int sync_entry_apply(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen);
/* A frame of a stored manifest (P, E, Z): the merge, for fetch_replay. */
int sync_merge_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len);

int sync_init(struct syncer *s, const struct sync_opts *o,
    struct sync_stats *st, char *msg, size_t msglen);
void sync_release(struct syncer *s);
/* Open (creating) data_dir and state_dir and take the state's lock. */
int sync_open(struct syncer *s);
/* Ask the hello; refuse a closed generation; record the one followed. */
int sync_hello(struct syncer *s);
/*
 * Make the subtree at path ("" = all) equal to the primary's. guard: it
 * stands for the primary's whole tree (a one-shot sync, the first
 * compare of a follower, one the primary asked for), and is held to
 * max_delete (prune.c); not the compares that repair a batch.
 */
int sync_compare(struct syncer *s, const char *path, int guard);
/* Record s->skipped in state_dir, if it changed (not in a dry run). */
int sync_save_skipped(struct syncer *s);
/* syncfs when anything was written since the last call. */
int sync_make_durable(struct syncer *s);
/* The change of the one inode fd is durable before the position moves:
 * fsync it now while a batch has made few such changes, else leave it
 * to the syncfs of sync_make_durable. 0 or -AR_EIO (reported). */
int sync_durable_fd(struct syncer *s, int fd);
/* c's reception paced by bwlimit (s->bw), shared by every client of the
 * run. */
void sync_pace(struct syncer *s, struct client *c);
/* Metrics: position seq is durable now. */
void sync_metrics_applied(uint64_t seq);

/* ---------------------------------------------------------------- */
/* fetch.c: the receiving side */

/* Queue a file to receive whole (flushing a full batch first). */
int fetch_batch_add(struct syncer *s, const char *path, size_t len,
    uint64_t size, int existed);
/* Receive the queued batch, then once more whole the files that changed
 * while they were sent. */
int fetch_flush_all(struct syncer *s);
void fetch_batch_clear(struct syncer *s);
/*
 * The free-space check of a file about to be written (see fetch.c):
 * begin at its header (size: the bytes it announces; fd: any fd on the
 * file system of data_dir), then take before each write of at most len
 * bytes of data, and add what was written to rm->written. Each fails
 * with the message "N bytes do not fit in the M bytes free".
 */
int fetch_room_begin(struct syncer *s, struct fetch_room *rm, int fd,
    const char *path, uint64_t size);
int fetch_room_take(struct fetch_room *rm, uint64_t len);
/* Rebuild path from a delta against the local copy; *whole is set when
 * the primary asked for the file to be sent whole instead. */
int fetch_delta_file(struct syncer *s, const char *path, size_t plen,
    int *whole);
/* GET url into the scratch file; check sees each frame as it arrives
 * (arg in its fetch_stored_ctx); *fdp is the file, ready to replay. */
int fetch_stored(struct syncer *s, const char *url, enum state_scratch file,
    wire_frame_cb *check, void *arg, const char *what, int *fdp);
/* The manifest of path ("" = all), stored. */
int fetch_manifest(struct syncer *s, const char *path, int *fdp);
/* Hand each frame of the stored answer fd to cb(s). */
int fetch_replay(struct syncer *s, int fd, wire_frame_cb *cb);

/* ---------------------------------------------------------------- */
/* append.c: the block store and the append path */

struct blocks;
/* 1 if a file of size bytes gets a block store entry. */
int append_store_wanted(const struct syncer *s, uint64_t size);
/* Record b (ended) as the list of the file open as fd, at path;
 * failures are warnings (no entry: the general path next time). */
void append_store_put(struct syncer *s, int fd, const char *path,
    size_t plen, const struct blocks *b);
/* Remove the entries of files that are gone from where they were
 * recorded (deleted, or replaced by another inode), at the start of a
 * run, so that the store holds no more entries than data_dir files. */
void append_store_sweep(struct syncer *s);
/* Forget the entry of the file of stat st. */
void append_store_drop(struct syncer *s, const struct stat *st);
/* What append_file did. */
enum append_outcome {
	APPEND_DONE,		/* the copy is the primary's version */
	APPEND_UNTRIED,		/* no entry vouches for the copy, the path
				 * is off, or the peer is older */
	APPEND_REFUSED,		/* the primary cannot prove the copy a
				 * prefix of its file: the general path */
};
/* Bring path up to the primary's version by appending its tail in
 * place, when the block store vouches for the local copy (of the same
 * size: the primary confirms it holds that version). */
int append_file(struct syncer *s, const char *path, size_t plen,
    enum append_outcome *out);

/* The store's entry of the file of stat st, if it vouches for it (its
 * device, inode, size and mtime): 0 and b (initialised) its list, else
 * -AR_EIO (absent, stale or corrupt: removed) or -AR_ENOMEM. */
int append_store_get(struct syncer *s, const struct stat *st,
    struct blocks *b);

/* ---------------------------------------------------------------- */
/* clone.c: the changed-blocks path */

/* How the temp file became a copy of the local one. */
enum clone_how {
	CLONE_REFLINK,		/* ioctl FICLONE: the extents shared */
	CLONE_KERNEL,		/* copy_file_range */
	CLONE_PLAIN,		/* read and write */
	CLONE_JOURNAL,		/* no copy: inplace, through the journal */
};
/* What clone_file did. */
enum clone_outcome {
	CLONE_DONE,		/* the file is the primary's version */
	CLONE_UNTRIED,		/* no store entry, or the peer is older */
	CLONE_REFUSED,		/* the primary holds no list of this
				 * version, or a check failed (logged): the
				 * delta path */
	CLONE_LATER,		/* following: it changed while the primary
				 * read it; a later batch brings it */
};
/* Before anything else: complete the in-place updates committed in
 * state_dir/inplace, drop those that were not (journal.h). */
int clone_journal_recover(struct syncer *s);
/* Bring path to the primary's version from a clone of the local copy
 * and the blocks that differ, when the block store vouches for it. */
int clone_file(struct syncer *s, const char *path, size_t plen,
    enum clone_outcome *out);

/* ---------------------------------------------------------------- */
/* apply.c: a batch of changes */

/* A frame of a stored batch of changes, applied (M, U, K, S). */
int apply_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len);
/* After the contents: the directory attributes of the U frames. */
int apply_dirattr(void *arg, uint8_t type, const uint8_t *p, uint32_t len);

/* ---------------------------------------------------------------- */
/* prune.c: the guard of deletions */

/* In a counting merge (s->counting): count le, in s->blk, and what it
 * holds, as deleted, instead of deleting it. */
int prune_count_local(struct syncer *s, const struct walk_ent *le);
/* Before the merge of the stored manifest mfd of the whole tree: the
 * counting merge; -AR_EMAXDELETE, explained, past max_delete. */
int prune_compare(struct syncer *s, int mfd);

/* ---------------------------------------------------------------- */
/* lane.c: big transfers in lanes of their own */

/* Big transfers at a time; one more waits for the oldest. */
#define LANE_MAX 2

/* How a change of a batch touches a path, for lane_wait_path. */
enum lane_touch {
	LANE_TOUCH_PATH,	/* renamed, deleted, or its state set */
	LANE_TOUCH_DIR_STATE,	/* the state of a directory, which stays
				 * one: nothing beneath it is touched */
};

struct lane;

int lane_init(struct syncer *s);
/* Cancel what runs (its temp files go) and free the lanes. */
void lane_free(struct syncer *s);
/* Lanes with a transfer in flight. */
int lane_busy(const struct syncer *s);
/* 1 if a file fetch of size bytes goes to a lane: a U of a batch being
 * applied, size >= lane_min_size, the version negotiated. */
int lane_wanted(const struct syncer *s, uint64_t size);
/* Start receiving path in a lane (after the oldest, when all are busy);
 * it stays acknowledged at s->lane_base until it is durable. */
int lane_start(struct syncer *s, const char *path, size_t len, uint64_t size,
    int existed, int delta);
/* The position to acknowledge while standing at pos: the oldest batch
 * with a lane in flight, minus one; else pos. */
uint64_t lane_ack(const struct syncer *s, uint64_t pos);
/* Join the lanes that finished (reap), every lane (wait_all), or those
 * whose path a change of path touches (wait_path); the directory
 * attributes kept for them are applied. A lane whose file moved while
 * sent lowers *rewind to its batch's position. */
int lane_reap(struct syncer *s, uint64_t *rewind);
int lane_wait_all(struct syncer *s, uint64_t *rewind);
int lane_wait_path(struct syncer *s, const char *path, size_t len,
    enum lane_touch how, uint64_t *rewind);
void lane_cancel_all(struct syncer *s);
/* A U of a file at path, the file a lane receives: 1 when it is put
 * off (its lane's batch is asked again after it), else 0. */
int lane_defer(struct syncer *s, const char *path, size_t len);
/* The directory e (of a U) is applied: kept, to be applied again after
 * the rename of a lane's file in it. */
void lane_dirattr(struct syncer *s, const struct wire_entry *e);

/* ---------------------------------------------------------------- */
/* follow.c: the follow loop */

/* Follow until *stop (see sync_follow), on an initialised syncer. */
int follow_run(struct syncer *s, volatile sig_atomic_t *stop);

#endif