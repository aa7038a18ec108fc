/*
 * clone.c: the changed-blocks path of the standby (PROTOCOL.md "The
 * changed-blocks path", WIRE_V_BLOCKS).
 *
 * A big file changed in place on the primary costs the blocks that
 * differ: the standby names the version it holds (the root of its block
 * store entry, which vouches for its copy), the primary answers the
 * blocks whose hashes differ from that version's, and the standby
 * builds the new version in a temp file made as a clone of its copy
 * (FICLONE where the file system shares extents, else copy_file_range,
 * else read and write, holes kept), writes each block only after its
 * hash matched, checks the new root (unchanged blocks' hashes from the
 * store, not read again), makes it durable and renames it over the
 * copy: a reader sees the old version or the new one. Anything the
 * path cannot prove goes back to the delta path, with the reason.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocks.h"
#include "client.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "syncer.h"
#include "util.h"
#include "walk.h"
#include "wire.h"

/* Bytes a plain copy moves at a time. */
#define CLONE_COPY_CHUNK (1024u * 1024)

/* ---------------------------------------------------------------- */
/* The clone of the local copy */

/* Copy [off, off + len) of src to dst, in the kernel when it can. */
static int
clone_copy_range(int dst, int src, uint64_t off, uint64_t len, int *plain,
    uint8_t **buf)
{
	loff_t in, out;
	ssize_t n;
	size_t want;

	while (len > 0 && !*plain) {
		in = out = (loff_t)off;
		/* A chunk at a time, written back as it goes (fs.c). */
		want = len < FS_WRITEBACK_CHUNK ? (size_t)len :
		    FS_WRITEBACK_CHUNK;
		n = copy_file_range(src, &in, dst, &out, want, 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
		    errno == EINVAL || errno == EOPNOTSUPP || errno == EPERM))
			*plain = 1;
		else if (n <= 0)
			return -AR_EIO;
		else {
			off += (uint64_t)n;
			len -= (uint64_t)n;
			fs_writeback(dst, off, (uint64_t)n);
		}
	}
	if (len > 0 && *buf == NULL) {
		*buf = malloc(CLONE_COPY_CHUNK);
		if (*buf == NULL)
			return -AR_ENOMEM;
	}
	while (len > 0) {
		want = len < CLONE_COPY_CHUNK ? (size_t)len : CLONE_COPY_CHUNK;
		n = fs_pread_full(src, *buf, want, off);
		if (n < 0 || (size_t)n != want ||
		    fs_pwrite_full(dst, *buf, want, off) != 0)
			return -AR_EIO;
		off += want;
		len -= want;
		fs_writeback(dst, off, want);
	}
	return 0;
}

/*
 * dst (empty) becomes a copy of the first size bytes of src: a reflink
 * (the extents shared) where the file system has them, else the data
 * extents copied (holes stay holes), if the room they take on disk is
 * free (room). *how says which.
 */
static int
clone_copy(int dst, int src, uint64_t size, struct fetch_room *room,
    enum clone_how *how)
{
	uint8_t *buf = NULL;
	uint64_t off = 0, end, taken;
	off_t data, hole;
	struct stat st;
	int plain = 0, r = 0;

	if (ioctl(dst, FICLONE, src) == 0) {
		*how = CLONE_REFLINK;
		return 0;
	}
	if (fstat(src, &st) != 0)
		return -AR_EIO;
	taken = (uint64_t)st.st_blocks * 512;
	if (taken > size)
		taken = size;
	r = fetch_room_take(room, taken);
	if (r != 0)
		return r;
	room->written += taken;
	while (r == 0 && off < size) {
		data = lseek(src, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;		/* a hole to the end */
		if (data < 0) {
			/* No hole information: all data. */
			r = clone_copy_range(dst, src, off, size - off, &plain,
			    &buf);
			break;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(src, data, SEEK_HOLE);
		end = hole < 0 || (uint64_t)hole > size ? size :
		    (uint64_t)hole;
		r = clone_copy_range(dst, src, (uint64_t)data,
		    end - (uint64_t)data, &plain, &buf);
		off = end;
	}
	free(buf);
	if (r == 0 && ftruncate(dst, (off_t)size) != 0)
		r = -AR_EIO;
	*how = plain ? CLONE_PLAIN : CLONE_KERNEL;
	return r;
}

/* ---------------------------------------------------------------- */
/* The answer to /v1/blocks */

/* Where the answer is. */
enum clone_state {
	CLONE_WAIT,		/* nothing yet: F or R */
	CLONE_BLOCK,		/* F or a block done: B, or T */
	CLONE_DATA,		/* B seen: D frames fill the block */
	CLONE_VERIFIED,		/* T matched: Z ends it */
	CLONE_FALLBACK,		/* R: the delta path */
};

struct clone_ctx {
	struct syncer *s;
	const char *path;
	size_t plen;
	int dirfd;
	const char *base;
	int fd;			/* the local copy */
	int tmpfd;		/* the new version */
	char tmp[NAME_MAX + 1];
	enum clone_how how;
	struct blocks old;	/* the store's list of the copy */
	struct blocks b;	/* the new version's */
	struct wire_entry *fe;	/* the F frame */
	enum clone_state state;
	int ended;		/* Z seen */
	const char *why;	/* a check failed: the delta path, and why */
	uint32_t reason;	/* of the primary's R */
	uint64_t size;		/* the new size (F) */
	uint64_t index;		/* the block being received */
	uint64_t next;		/* first block not yet listed */
	uint64_t blen, have;
	uint64_t received;	/* bytes of blocks written */
	uint8_t want[BLOCKS_HASH_LEN];
	uint8_t *buf;		/* one block */
	struct wire_reader rd;
	struct fetch_room room;	/* of the copy and the blocks written */
	/* inplace: the blocks go to a journal in state_dir, and into the
	 * copy itself once the new version is verified (journal.h) */
	int journaled;
	struct journal j;
};

/* A check failed: stop the answer, the delta path does the work. */
static int
clone_refuse(struct clone_ctx *c, const char *why)
{
	c->why = why;
	return -AR_ECHANGED;
}

static uint64_t
clone_blen(uint64_t size, uint64_t i)
{
	uint64_t off = i * BLOCKS_SIZE;

	return size - off < BLOCKS_SIZE ? size - off : BLOCKS_SIZE;
}

/* List the blocks [c->next, upto) as the copy holds them: each must be
 * a block of the same length in the store's list. */
static int
clone_list_kept(struct clone_ctx *c, uint64_t upto)
{
	uint64_t len;
	int r;

	for (; c->next < upto; c->next++) {
		len = clone_blen(c->size, c->next);
		if (c->next >= c->old.n ||
		    clone_blen(c->old.size, c->next) != len)
			return clone_refuse(c, "the primary left out a block "
			    "this copy does not hold");
		r = blocks_add_hash(&c->b, c->old.h + c->next *
		    BLOCKS_HASH_LEN, (size_t)len);
		if (r != 0)
			return r;
	}
	return 0;
}

/* The block in buf is whole: check it, then write it into the clone. */
static int
clone_block_done(struct clone_ctx *c)
{
	uint8_t h[BLOCKS_HASH_LEN];
	uint64_t off = c->index * BLOCKS_SIZE;
	int r, hole = 0;

	blocks_hash(c->buf, (size_t)c->blen, h);
	if (memcmp(h, c->want, BLOCKS_HASH_LEN) != 0)
		return clone_refuse(c, "a block does not match the hash the "
		    "primary announced");
	/* A whole block of zeros is a hole, not written zeros. */
	if (c->journaled) {
		hole = c->blen == BLOCKS_SIZE &&
		    util_all_zero(c->buf, BLOCKS_SIZE);
		/* The room the block may take in the copy (counted as
		 * new, as if it filled a hole), checked before the commit:
		 * after it, a full disk would stop the update half-way. Not
		 * reserved with fallocate, which would change the copy's
		 * mtime. */
		if (!hole) {
			r = fetch_room_take(&c->room, c->blen);
			if (r != 0)
				return r;
			c->room.written += c->blen;
		}
		if (journal_put(&c->j, off, c->buf, (uint32_t)c->blen,
		    hole) != 0)
			return sync_fail(c->s, -AR_EIO, "'%s': cannot write "
			    "the in-place journal: %s",
			    sync_esc(c->path, c->plen), strerror(errno));
		hole = 1;	/* nothing to write here */
	} else if (c->blen == BLOCKS_SIZE && util_all_zero(c->buf,
	    BLOCKS_SIZE))
		hole = fallocate(c->tmpfd, FALLOC_FL_PUNCH_HOLE |
		    FALLOC_FL_KEEP_SIZE, (off_t)off, BLOCKS_SIZE) == 0;
	if (!hole) {
		r = fetch_room_take(&c->room, c->blen);
		if (r != 0)
			return r;
		if (fs_pwrite_full(c->tmpfd, c->buf, (size_t)c->blen, off) !=
		    0)
			return sync_fail(c->s, -AR_EIO, "'%s': cannot write "
			    "the new version: %s", sync_esc(c->path, c->plen),
			    strerror(errno));
		c->room.written += c->blen;
	}
	r = blocks_add_hash(&c->b, h, (size_t)c->blen);
	if (r != 0)
		return r;
	c->next = c->index + 1;
	c->received += c->blen;
	c->s->st->file_bytes += c->blen;
	c->state = CLONE_BLOCK;
	return 0;
}

/* inplace: a path the operator named, at least inplace_min_size. */
static int
clone_journal_wanted(const struct syncer *s, const char *path, size_t plen,
    uint64_t size)
{
	return s->inplace != NULL && s->state.inplacefd >= 0 &&
	    size >= s->cfg->inplace_min_size &&
	    exclude_match(s->inplace, path, plen, 0);
}

/* No reflink: the blocks go to a journal, the copy stays as it is
 * until the new version is verified (c->journaled; not set when the
 * copy cannot be written: the clone then). */
static int
clone_journal_start(struct clone_ctx *c)
{
	struct journal_head h;
	struct stat st, wst;
	int wfd;

	if (fstat(c->fd, &st) != 0)
		return sync_fail(c->s, -AR_EIO, "'%s': %s",
		    sync_esc(c->path, c->plen), strerror(errno));
	/* The copy must take the blocks once the journal is committed:
	 * writable now, or the clone instead. */
	wfd = openat(c->dirfd, c->base, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (wfd < 0 || fstat(wfd, &wst) != 0 || wst.st_ino != st.st_ino ||
	    wst.st_dev != st.st_dev) {
		log_verbose("'%s': inplace: the copy cannot be written in "
		    "place (%s): a clone", sync_esc(c->path, c->plen),
		    wfd < 0 ? strerror(errno) : "it changed");
		if (wfd >= 0)
			close(wfd);
		return 0;	/* not journaled */
	}
	close(wfd);
	close(c->tmpfd);
	c->tmpfd = -1;
	(void)unlinkat(c->dirfd, c->tmp, 0);
	c->tmp[0] = '\0';
	memset(&h, 0, sizeof(h));
	h.dev = (uint64_t)st.st_dev;
	h.ino = (uint64_t)st.st_ino;
	h.size = c->size;
	h.mtime_sec = c->fe->mtime_sec;
	h.mtime_nsec = c->fe->mtime_nsec;
	h.mode = c->fe->mode;
	h.uid = c->fe->uid;
	h.gid = c->fe->gid;
	h.path_len = (uint16_t)c->plen;
	memcpy(h.path, c->path, c->plen);
	journal_init(&c->j, c->s->state.inplacefd);
	if (journal_begin(&c->j, &h) != 0)
		return sync_fail(c->s, -AR_EIO, "'%s': cannot start the "
		    "in-place journal: %s", sync_esc(c->path, c->plen),
		    strerror(errno));
	c->journaled = 1;
	c->how = CLONE_JOURNAL;
	c->state = CLONE_BLOCK;
	return 0;
}

/*
 * Write the committed journal j into the copy dirfd/base (path, for
 * messages), which must still be the file h names, give it the new
 * version's attributes, make it durable and remove the journal. The
 * block store entry of the copy is dropped first: no entry vouches for
 * a copy part old, part new. *fdp gets the copy, open, on success.
 */
static int
clone_journal_replay(struct syncer *s, struct journal *j,
    const struct journal_head *h, int dirfd, const char *base, int *fdp)
{
	const char *path = h->path;
	size_t plen = h->path_len;
	struct stat st;
	int fd, r;

	*fdp = -1;
	fd = openat(dirfd, base, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
		/* There, but not writable now: the journal stays. */
		r = errno;
		journal_release(j);
		return sync_fail(s, -AR_ESTATE, "'%s': the in-place update "
		    "is committed in state_dir/%s but the copy cannot be "
		    "opened to write it (%s): a restarted sync replays it",
		    sync_esc(path, plen), JOURNAL_DIR, strerror(r));
	}
	/* The same file: its inode at its path (the device number may
	 * change across a reboot). */
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_ino != h->ino) {
		if (fd >= 0)
			close(fd);
		journal_release(j);
		return -AR_ECHANGED;
	}
	append_store_drop(s, &st);
	/* Durably gone before the copy changes: an entry come back
	 * would vouch for a copy part old, part new. */
	r = s->state.blocksfd >= 0 && fs_fsync_dir(s->state.blocksfd) != 0 ?
	    -AR_EIO : 0;
	if (r == 0)
		r = journal_apply(j, fd);
	if (r == 0)
		r = sync_attrs_set_fd(s, fd, h->mode, h->uid, h->gid,
		    h->mtime_sec, h->mtime_nsec);
	if (r == 0 && fsync(fd) != 0)
		r = -AR_EIO;
	if (r == 0 && journal_finish(j) != 0)
		r = -AR_EIO;
	if (r != 0) {
		journal_release(j);
		close(fd);
		return sync_fail(s, -AR_ESTATE, "'%s': the in-place update "
		    "is committed in state_dir/%s but could not be written "
		    "into the copy (%s): a restarted sync replays it",
		    sync_esc(path, plen), JOURNAL_DIR, r == -AR_EIO ?
		    strerror(errno) : ar_strerror(r));
	}
	*fdp = fd;
	return 0;
}

/* After a replay: the block store entry of the copy, from its bytes
 * (read once), so that its next change costs its blocks again. */
static void
clone_journal_store(struct syncer *s, int fd, const struct journal_head *h)
{
	struct blocks b;
	uint8_t *buf;

	if (!append_store_wanted(s, h->size) || blocks_init(&b) != 0)
		return;
	buf = malloc(CLONE_COPY_CHUNK);
	if (buf != NULL && blocks_update_fd(&b, fd, 0, h->size, buf,
	    CLONE_COPY_CHUNK) == 0 && blocks_end(&b) == 0)
		append_store_put(s, fd, h->path, h->path_len, &b);
	free(buf);
	blocks_release(&b);
}

int
clone_journal_recover(struct syncer *s)
{
	struct journal_head *h;
	struct journal j;
	struct dirent *de;
	const char *base;
	DIR *d;
	int dirfd, fd, r = 0, rr;

	if (s->state.inplacefd < 0 || s->rootfd < 0)
		return 0;
	if (fs_opendir(s->state.inplacefd, &d) != 0)
		return sync_fail(s, -AR_ESTATE, "state_dir/%s: %s",
		    JOURNAL_DIR, strerror(errno));
	h = malloc(sizeof(*h));
	if (h == NULL) {
		closedir(d);
		return -AR_ENOMEM;
	}
	while (r == 0) {
		de = readdir(d);
		if (de == NULL)
			break;
		if (de->d_name[0] == '.')
			continue;
		journal_init(&j, s->state.inplacefd);
		rr = journal_open(&j, de->d_name, h);
		if (rr != 0 && rr != -AR_EPROTO) {
			/* Not read whole: kept, never taken for torn. */
			r = sync_fail(s, -AR_ESTATE, "state_dir/%s/%s: %s",
			    JOURNAL_DIR, de->d_name, rr == -AR_EIO ?
			    strerror(errno) : ar_strerror(rr));
			break;
		}
		if (rr != 0) {
			/* Torn or never committed: the copy was not
			 * touched, it is the old version. */
			log_verbose("state_dir/%s/%s: an in-place update "
			    "that was not committed: the copy is as it was",
			    JOURNAL_DIR, de->d_name);
			(void)unlinkat(s->state.inplacefd, de->d_name, 0);
			continue;
		}
		fd = -1;
		rr = fs_open_parent(s->rootfd, h->path, &dirfd, &base);
		if (rr == 0) {
			rr = clone_journal_replay(s, &j, h, dirfd, base, &fd);
			close(dirfd);
		} else {
			journal_release(&j);
			if (errno != ENOENT && errno != ENOTDIR &&
			    rr != -AR_EPROTO)
				rr = sync_fail(s, -AR_ESTATE, "'%s': the "
				    "in-place update is committed in "
				    "state_dir/%s but its directory cannot "
				    "be opened: %s", sync_esc(h->path,
				    h->path_len), JOURNAL_DIR,
				    strerror(errno));
		}
		if (rr == -AR_ESTATE) {
			r = rr;
			break;
		}
		if (rr != 0) {
			log_warn("'%s': the in-place update in state_dir/%s/%s "
			    "is for a copy that is no longer there: dropped",
			    sync_esc(h->path, h->path_len), JOURNAL_DIR,
			    de->d_name);
			(void)unlinkat(s->state.inplacefd, de->d_name, 0);
			continue;
		}
		clone_journal_store(s, fd, h);
		close(fd);
		log_info("'%s': in-place update completed from its journal",
		    sync_esc(h->path, h->path_len));
	}
	free(h);
	closedir(d);
	return r;
}

/* F: the new version's stat. Make the clone at once, while the primary
 * reads its file. */
static int
clone_start(struct clone_ctx *c)
{
	struct syncer *s = c->s;
	int r;

	c->size = c->fe->size;
	if (s->cfg->max_file_size != 0 && c->size > s->cfg->max_file_size)
		return clone_refuse(c, "the new version is larger than "
		    "max_file_size");
	if (fs_tmpfile(c->dirfd, c->base, &c->tmpfd, c->tmp,
	    sizeof(c->tmp)) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot create a temp "
		    "file: %s", sync_esc(c->path, c->plen), strerror(errno));
	r = fetch_room_begin(s, &c->room, c->dirfd, c->path, c->size);
	if (r != 0)
		return r;
	/* inplace: only where the file system cannot share the copy's
	 * extents; a reflink costs no more and stays atomic. */
	if (clone_journal_wanted(s, c->path, c->plen, c->size) &&
	    ioctl(c->tmpfd, FICLONE, c->fd) != 0) {
		r = clone_journal_start(c);
		if (r != 0 || c->journaled)
			return r;
	}
	r = clone_copy(c->tmpfd, c->fd, c->old.size, &c->room, &c->how);
	if (r == 0 && c->size != c->old.size &&
	    ftruncate(c->tmpfd, (off_t)c->size) != 0)
		r = -AR_EIO;
	if (r != 0)
		return sync_fail(s, r, "'%s': cannot copy the local copy: %s",
		    sync_esc(c->path, c->plen), r == -AR_EIO ?
		    strerror(errno) : ar_strerror(r));
	/* A copy is data to write: start now, while the blocks arrive,
	 * so the fsync at the end finds less to do. */
	if (c->how != CLONE_REFLINK)
		(void)sync_file_range(c->tmpfd, 0, 0, SYNC_FILE_RANGE_WRITE);
	c->state = CLONE_BLOCK;
	return 0;
}

static int
clone_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct clone_ctx *c = arg;
	struct wire_block wb;
	struct wire_trailer t;
	struct wire_retry rt;
	uint8_t root[BLOCKS_ROOT_LEN];
	uint64_t count;
	int r;

	if (c->ended)
		return sync_fail(c->s, -AR_EPROTO, "'%s': changed blocks: "
		    "data after the end", sync_esc(c->path, c->plen));
	switch (type) {
	case WIRE_FILE:
		if (c->state != CLONE_WAIT ||
		    wire_get_entry(p, len, WIRE_FILE, c->fe) != 0 ||
		    c->fe->type != WALK_FILE ||
		    strcmp(c->fe->name, c->path) != 0 ||
		    c->fe->size > BLOCKS_MAX_FILE)
			return clone_refuse(c, "malformed or unexpected "
			    "header");
		/* map_users: the owner this standby gives the names. */
		sync_map_ids(c->s, c->fe);
		return clone_start(c);
	case WIRE_BLOCK:
		/* In order, each at most once, never past the new size. */
		if (c->state != CLONE_BLOCK || wire_get_block(p, len, &wb) !=
		    0 || wb.index < c->next || wb.index >= blocks_count(c->size))
			return clone_refuse(c, "unexpected block");
		r = clone_list_kept(c, wb.index);
		if (r != 0)
			return r;
		memcpy(c->want, wb.hash, BLOCKS_HASH_LEN);
		c->index = wb.index;
		c->blen = clone_blen(c->size, wb.index);
		c->have = 0;
		c->state = CLONE_DATA;
		return 0;
	case WIRE_DATA:
		/* Never more than the block announced. */
		if (c->state != CLONE_DATA || len > c->blen - c->have)
			return clone_refuse(c, "data out of place or past its "
			    "block");
		memcpy(c->buf + c->have, p, len);
		c->have += len;
		if (c->have < c->blen)
			return 0;
		return clone_block_done(c);
	case WIRE_TRAILER:
		if (c->state != CLONE_BLOCK || wire_get_trailer(p, len, &t) !=
		    0 || t.size != c->size)
			return clone_refuse(c, "unexpected trailer");
		r = clone_list_kept(c, blocks_count(c->size));
		if (r == 0)
			r = blocks_end(&c->b);
		if (r != 0)
			return r;
		blocks_root(&c->b, root);
		if (memcmp(root, t.hash, BLOCKS_ROOT_LEN) != 0)
			return clone_refuse(c, "the new version's root does not "
			    "match the primary's");
		c->state = CLONE_VERIFIED;
		return 0;
	case WIRE_RETRY:
		if (c->state == CLONE_DATA || c->state == CLONE_VERIFIED ||
		    wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, c->path) != 0)
			return clone_refuse(c, "unexpected retry");
		c->reason = rt.reason;
		c->state = CLONE_FALLBACK;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || count != 1 ||
		    (c->state != CLONE_VERIFIED && c->state != CLONE_FALLBACK))
			return clone_refuse(c, "the answer ended early");
		c->ended = 1;
		return 0;
	default:
		return clone_refuse(c, "unexpected frame");
	}
}

static int
clone_body(void *arg, const void *data, size_t len)
{
	struct clone_ctx *c = arg;
	int r;

	r = wire_reader_feed(&c->rd, data, len, clone_frame, c);
	if (r == -AR_EPROTO && c->why == NULL && c->s->msg[0] == '\0')
		return clone_refuse(c, "a malformed frame");
	return r;
}

static const char *
clone_how_name(enum clone_how how)
{
	switch (how) {
	case CLONE_REFLINK:
		return "reflink";
	case CLONE_KERNEL:
		return "copy_file_range";
	case CLONE_PLAIN:
		return "read/write copy";
	case CLONE_JOURNAL:
		return "in place, journaled";
	}
	return "?";
}

/* The new version is verified in the journal: commit it, then write it
 * into the copy. */
static int
clone_journal_commit(struct clone_ctx *c)
{
	struct syncer *s = c->s;
	struct journal_head *h;
	char name[sizeof(c->j.name)];
	int fd, r;

	if (journal_commit(&c->j) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot commit the in-place "
		    "journal: %s", sync_esc(c->path, c->plen),
		    strerror(errno));
	/* Committed: from here on it stays until it is in the copy. */
	c->journaled = 0;
	journal_release(&c->j);
	/* Read back and checked whole, as a restarted sync would. */
	h = malloc(sizeof(*h));
	if (h == NULL)
		return sync_fail(s, -AR_ESTATE, "'%s': out of memory with "
		    "the in-place journal committed: a restarted sync "
		    "replays it", sync_esc(c->path, c->plen));
	memcpy(name, c->j.name, sizeof(name));
	journal_init(&c->j, s->state.inplacefd);
	r = journal_open(&c->j, name, h);
	if (r == 0 && (h->path_len != c->plen ||
	    memcmp(h->path, c->path, c->plen) != 0)) {
		journal_release(&c->j);
		r = -AR_EPROTO;
	}
	if (r == 0)
		r = clone_journal_replay(s, &c->j, h, c->dirfd, c->base, &fd);
	else
		r = sync_fail(s, -AR_ESTATE, "'%s': the in-place journal "
		    "does not read back: %s", sync_esc(c->path, c->plen),
		    ar_strerror(r));
	free(h);
	if (r == -AR_ECHANGED)
		r = sync_fail(s, -AR_ESTATE, "'%s': the copy changed under "
		    "the in-place update", sync_esc(c->path, c->plen));
	if (r != 0)
		return r;
	append_store_put(s, fd, c->path, c->plen, &c->b);
	close(fd);
	return 0;
}

/* The new version is verified in the temp file: make it the file. */
static int
clone_commit(struct clone_ctx *c, const struct stat *st)
{
	struct syncer *s = c->s;
	int r;

	if (c->journaled)
		return clone_journal_commit(c);

	r = sync_attrs_set_fd(s, c->tmpfd, c->fe->mode, c->fe->uid,
	    c->fe->gid, c->fe->mtime_sec, c->fe->mtime_nsec);
	if (r == 0 && fsync(c->tmpfd) != 0)
		r = -AR_EIO;
	if (r == 0 && renameat(c->dirfd, c->tmp, c->dirfd, c->base) != 0)
		r = -AR_EIO;
	if (r != 0)
		return sync_fail(s, r, "'%s': %s", sync_esc(c->path, c->plen),
		    strerror(errno));
	c->tmp[0] = '\0';
	append_store_drop(s, st);
	if (fs_fsync_dir(c->dirfd) != 0)
		return sync_fail(s, -AR_EIO, "'%s': fsync of its directory: "
		    "%s", sync_esc(c->path, c->plen), strerror(errno));
	/* Only now, with the new version durable at its name. */
	append_store_put(s, c->tmpfd, c->path, c->plen, &c->b);
	return 0;
}

int
clone_file(struct syncer *s, const char *path, size_t plen,
    enum clone_outcome *out)
{
	struct clone_ctx c;
	struct wire_append *req = NULL;
	struct stat st;
	uint8_t *body = NULL;
	size_t bodymax = WIRE_HDR + 2 + WIRE_PATH_MAX + 8 + 32;
	int r, n;

	*out = CLONE_UNTRIED;
	if (s->state.blocksfd < 0 || sync_version(s) < WIRE_V_BLOCKS)
		return 0;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.path = path;
	c.plen = plen;
	c.fd = c.tmpfd = -1;
	c.fe = &s->fent;
	c.state = CLONE_WAIT;
	r = blocks_init(&c.b);
	if (r == 0)
		r = blocks_init(&c.old);
	if (r != 0)
		goto out0;
	if (fs_open_parent(s->rootfd, path, &c.dirfd, &c.base) != 0) {
		c.dirfd = -1;
		goto out0;	/* the delta path says why */
	}
	c.fd = openat(c.dirfd, c.base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (c.fd < 0 || fstat(c.fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !append_store_wanted(s, (uint64_t)st.st_size))
		goto out;
	blocks_release(&c.old);
	r = append_store_get(s, &st, &c.old);
	if (r != 0) {
		if (r != -AR_ENOMEM) {
			log_verbose("'%s': changed blocks: no block store "
			    "entry vouches for this copy: the delta path",
			    sync_esc(path, plen));
			r = 0;
		}
		goto out;
	}
	req = malloc(sizeof(*req));
	body = malloc(bodymax);
	c.buf = malloc(BLOCKS_SIZE);
	if (req == NULL || body == NULL || c.buf == NULL) {
		r = -AR_ENOMEM;
		goto out;
	}
	memcpy(req->path, path, plen);
	req->path[plen] = '\0';
	req->path_len = (uint16_t)plen;
	req->size = c.old.size;
	blocks_root(&c.old, req->root);
	n = wire_put_append(body, bodymax, req);
	if (n < 0) {
		r = -AR_EINTERNAL;
		goto out;
	}
	r = wire_reader_init(&c.rd, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r != 0)
		goto out;
	r = client_post_buf(s->client, "/v1/blocks", body, (size_t)n,
	    clone_body, &c);
	if (r == 0 && c.why == NULL && (!c.ended || !wire_reader_idle(&c.rd)))
		c.why = "the answer was truncated";
	wire_reader_release(&c.rd);
	if (c.why != NULL && (r == 0 || r == -AR_ECHANGED)) {
		/* Nothing became visible: the delta path, from the copy. */
		log_warn("'%s': changed blocks: %s: the delta path",
		    sync_esc(path, plen), c.why);
		*out = CLONE_REFUSED;
		r = 0;
		goto out;
	}
	if (r != 0) {
		if (s->msg[0] == '\0')
			sync_fail(s, r, "%s", client_errmsg(s->client));
		goto out;
	}
	if (c.state == CLONE_FALLBACK && c.reason == WIRE_RETRY_CHANGED &&
	    s->following) {
		/* Written to while the primary read it: the write is a
		 * later change, whose batch brings the file again. The
		 * copy stays the version it is, whole. */
		log_verbose("'%s': changed blocks: changed while the primary "
		    "read it: a later batch brings it", sync_esc(path, plen));
		*out = CLONE_LATER;
		goto out;
	}
	if (c.state == CLONE_FALLBACK) {
		log_verbose("'%s': changed blocks: %s: the delta path",
		    sync_esc(path, plen), c.reason == WIRE_RETRY_BASIS ?
		    (c.received > 0 ? "too many blocks differ" :
		    "the primary holds no list of this version") :
		    "the primary could not read it whole");
		*out = CLONE_REFUSED;
		goto out;
	}
	assert(c.state == CLONE_VERIFIED && (c.tmpfd >= 0 || c.journaled));
	r = clone_commit(&c, &st);
	if (r != 0)
		goto out;
	*out = CLONE_DONE;
	if (c.how == CLONE_JOURNAL)
		log_verbose("'%s': %llu bytes of changed blocks written in "
		    "place, through the journal", sync_esc(path, plen),
		    (unsigned long long)c.received);
	else
		log_verbose("'%s': %llu bytes of changed blocks into a clone "
		    "(%s)", sync_esc(path, plen),
		    (unsigned long long)c.received, clone_how_name(c.how));
	s->st->files_blocks++;
	metrics_add(METRICS_RECV_FILES_BLOCKS, 1);
	metrics_add(METRICS_RECV_BYTES_BLOCKS, c.received);
	s->changed = 1;
	sync_itemize(s, ">f.st......", path, plen, "");
out:
	/* A store entry that failed its check was removed; one that did
	 * not lead to the new version stays: it still vouches for the
	 * copy, which nothing here changed. */
	free(req);
	free(body);
	free(c.buf);
	/* Not committed: the copy was not touched. */
	if (c.journaled)
		journal_abort(&c.j);
	if (c.tmpfd >= 0)
		close(c.tmpfd);
	if (c.tmp[0] != '\0')
		unlinkat(c.dirfd, c.tmp, 0);
	if (c.fd >= 0)
		close(c.fd);
	if (c.dirfd >= 0)
		close(c.dirfd);
out0:
	blocks_release(&c.b);
	blocks_release(&c.old);
	return r;
}
