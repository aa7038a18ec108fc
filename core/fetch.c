/*
 * fetch.c: the standby's receiving side. Whole files come in batches
 * (POST /v1/files), each into a temp file beside its target, verified
 * against the primary's size and hash, made durable together and renamed
 * into place; a file that changed while sent is asked once more. Large
 * changed files are rebuilt from a librsync delta (POST /v1/delta)
 * against the local copy. Manifests and batches of changes are stored
 * whole in a state_dir scratch file while their framing is checked, then
 * replayed.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "blocks.h"
#include "client.h"
#include "delta.h"
#include "error.h"
#include "fs.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"
#include "state.h"
#include "syncer.h"
#include "util.h"
#include "walk.h"
#include "wire.h"

/* Largest /v1/files request body we build (the server takes 1 MiB). */
#define FETCH_BODY_MAX (1000u * 1024)
/* Batches at least this many files are made durable with one syncfs. */
#define FETCH_SYNCFS_MIN 4
/* Files that changed while sent are retried once, up to this many. */
#define FETCH_RETRY_MAX 65536
#define FETCH_READ_CHUNK (256u * 1024)

/* ---------------------------------------------------------------- */
/* Whole files, in batches */

static void
fetch_item_discard(struct fetch_item *it)
{
	if (it->fd >= 0) {
		close(it->fd);
		it->fd = -1;
	}
	if (it->tmp[0] != '\0')
		unlinkat(it->dirfd, it->tmp, 0);
	it->tmp[0] = '\0';
}

static void
fetch_blocks_free(struct blocks **bp)
{
	if (*bp != NULL) {
		blocks_release(*bp);
		free(*bp);
		*bp = NULL;
	}
}

/* A list for the block store, when a file of size bytes gets one. */
static struct blocks *
fetch_blocks_new(struct syncer *s, uint64_t size)
{
	struct blocks *b;

	if (!append_store_wanted(s, size))
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b != NULL && blocks_init(b) != 0) {
		free(b);
		b = NULL;
	}
	return b;
}

void
fetch_batch_clear(struct syncer *s)
{
	struct fetch_batch *b = &s->batch;
	size_t i;

	for (i = 0; i < b->n; i++) {
		fetch_item_discard(&b->items[i]);
		close(b->items[i].dirfd);
		free(b->items[i].path);
	}
	b->n = 0;
	b->bytes = 0;
	b->body_len = 0;
	b->cur = 0;
	b->ended = 0;
	hash_release(&b->hash);
	fetch_blocks_free(&b->blk);
}

/* A file that changed while sent: once more whole after the batch, or,
 * in that retry pass, a file not replicated this time. */
static int
fetch_retry_add(struct syncer *s, const char *path, int gone)
{
	int r;

	assert(s->nretry <= FETCH_RETRY_MAX);
	if (s->retrying || s->nretry == FETCH_RETRY_MAX) {
		s->st->files_failed++;
		/* Gone from its path: moved (perhaps with a directory above
		 * it) or deleted. A later record may not name the file, so a
		 * follower asks for this batch again, merged with what came
		 * after, instead of moving past it. */
		if (gone)
			s->hold = 1;
		/* Following, the change that made it move is in a later
		 * batch: no cause for alarm. */
		log_msg(s->following ? LOG_LVL_VERBOSE : LOG_LVL_WARN,
		    "'%s' changed while it was sent: not replicated this "
		    "time", sync_esc(path, strlen(path)));
		return 0;
	}
	r = util_grow(&s->retry, &s->retry_cap, s->nretry + 1,
	    sizeof(*s->retry), 64);
	if (r != 0)
		return r;
	s->retry[s->nretry] = strdup(path);
	if (s->retry[s->nretry] == NULL)
		return -AR_ENOMEM;
	s->nretry++;
	return 0;
}

/* An O frame: the hole is skipped, never written (the temp file is
 * new, so what is skipped reads as zeros), and hashed as its zeros. */
static void
fetch_hole(struct syncer *s, struct fetch_item *it, uint64_t hole)
{
	static const uint8_t zeros[65536];
	uint64_t done;
	size_t n;

	for (done = 0; done < hole; done += n) {
		n = hole - done < sizeof(zeros) ? (size_t)(hole - done) :
		    sizeof(zeros);
		hash_update(&s->batch.hash, zeros, n);
	}
	it->got += hole;
}

/*
 * Before a file of size bytes is written at dirfd: refuse one larger
 * than max_file_size, and make sure what is written fits in the free
 * space of the file system (a hostile primary could announce any size;
 * 2 KB of delta legitimately expanded into a 256 MiB file), so a full
 * disk gives a clear error naming the file rather than ENOSPC in the
 * middle of a write. Before WIRE_V_FIDELITY the announced size is what
 * will be written, and is checked here; from it on a sparse file's holes
 * take no room (its extents are written, zeros of a delta or of a whole
 * file are holes), so the data is counted as it is written
 * (fetch_room_take). Small files are not checked: a full disk fails
 * their write all the same. Nor is a file system that keeps no count of
 * its blocks (ramfs, some FUSE: statvfs says 0 of 0).
 */
#define FETCH_ROOM_MIN (1024u * 1024)
/* Kept free beyond the data, for the file system's own blocks (extent
 * trees, directories): a write into the last of it would fail. */
#define FETCH_ROOM_SLACK (1024u * 1024)
/* How long a refusal waits for the blocks of files just removed, which
 * the release thread may still be freeing (fs_remove_tree_bg): about
 * 0.35 s per GB with discard, tens of ms without. The wait is inside a
 * transfer, so it stays short of any stall_timeout (1 s at least). */
#define FETCH_ROOM_RELEASE_MS 500

/* Bytes free on fd's file system, 0 or -1 with errno. With want, and
 * less than that free, once more after the release thread is done with
 * what this process removed: a big file deleted just before would
 * otherwise refuse the next one for room that is on its way back. */
static int
fetch_room_free(int fd, uint64_t want, struct statvfs *vfs, uint64_t *avail)
{
	if (fstatvfs(fd, vfs) != 0)
		return -1;
	*avail = (uint64_t)vfs->f_bavail * (uint64_t)vfs->f_frsize;
	/* No count of blocks (ramfs, some FUSE): nothing is checked. */
	if (*avail >= want || vfs->f_blocks == 0 ||
	    fs_release_wait(FETCH_ROOM_RELEASE_MS) == 0)
		return 0;
	if (fstatvfs(fd, vfs) != 0)
		return -1;
	*avail = (uint64_t)vfs->f_bavail * (uint64_t)vfs->f_frsize;
	return 0;
}

int
fetch_room_begin(struct syncer *s, struct fetch_room *rm, int fd,
    const char *path, uint64_t size)
{
	struct statvfs vfs;
	uint64_t avail;

	memset(rm, 0, sizeof(*rm));
	rm->s = s;
	rm->fd = fd;
	rm->path = path;
	rm->size = size;
	rm->avail = UINT64_MAX;
	if (s->cfg->max_file_size != 0 && size > s->cfg->max_file_size)
		return sync_fail(s, -AR_EPARTIAL, "'%s': %llu bytes, more than "
		    "max_file_size (%llu)", sync_esc(path, strlen(path)),
		    (unsigned long long)size,
		    (unsigned long long)s->cfg->max_file_size);
	if (size < FETCH_ROOM_MIN)
		return 0;
	if (fetch_room_free(fd, sync_version(s) < WIRE_V_FIDELITY ? size : 0,
	    &vfs, &avail) != 0)
		return sync_fail(s, -AR_EIO, "'%s': statvfs: %s",
		    sync_esc(path, strlen(path)), strerror(errno));
	if (vfs.f_blocks == 0)
		return 0;
	if (sync_version(s) < WIRE_V_FIDELITY && size > avail)
		return sync_fail(s, -AR_EIO, "'%s': %llu bytes do not fit in "
		    "the %llu bytes free on the file system of data_dir",
		    sync_esc(path, strlen(path)), (unsigned long long)size,
		    (unsigned long long)avail);
	rm->avail = avail;
	return 0;
}

/*
 * Before at most len more bytes of data are written: near the end of
 * what was free when the file began, ask the file system again (what
 * this file wrote is counted there by now, and others may have written
 * or freed), and refuse the write that would not fit.
 */
int
fetch_room_take(struct fetch_room *rm, uint64_t len)
{
	struct statvfs vfs;
	uint64_t free_now;

	if (rm->avail == UINT64_MAX || (rm->written <= rm->avail &&
	    len + FETCH_ROOM_SLACK <= rm->avail - rm->written))
		return 0;
	if (fetch_room_free(rm->fd, len + FETCH_ROOM_SLACK, &vfs,
	    &free_now) != 0)
		return sync_fail(rm->s, -AR_EIO, "'%s': statvfs: %s",
		    sync_esc(rm->path, strlen(rm->path)), strerror(errno));
	rm->avail = rm->written + free_now;
	if (len + FETCH_ROOM_SLACK <= free_now)
		return 0;
	return sync_fail(rm->s, -AR_EIO, "'%s': %llu bytes do not fit in the "
	    "%llu bytes free on the file system of data_dir (holes not "
	    "counted; %llu bytes of its data written)",
	    sync_esc(rm->path, strlen(rm->path)),
	    (unsigned long long)rm->size, (unsigned long long)rm->avail,
	    (unsigned long long)rm->written);
}

/* The room check of a delta's output (delta_room_cb). */
static int
fetch_room_patch(void *arg, uint64_t written, size_t len)
{
	struct fetch_room *rm = arg;

	rm->written = written;
	return fetch_room_take(rm, len);
}

/* A frame of the answer to /v1/files. */
static int
fetch_files_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	struct fetch_batch *b = &s->batch;
	struct fetch_item *it = b->cur < b->n ? &b->items[b->cur] : NULL;
	struct wire_trailer t;
	struct wire_retry rt;
	uint8_t hash[HASH_LEN];
	uint64_t count, hole;
	int r;

	assert(b->cur <= b->n);
	if (b->ended)
		return sync_fail(s, -AR_EPROTO, "primary sent data after the "
		    "end of a file batch");
	switch (type) {
	case WIRE_FILE:
		if (it == NULL || it->state != FETCH_ITEM_PENDING)
			return sync_fail(s, -AR_EPROTO, "primary sent an "
			    "unrequested file");
		r = wire_get_entry(p, len, WIRE_FILE, &s->fent);
		if (r != 0 || s->fent.type != WALK_FILE ||
		    strcmp(s->fent.name, it->path) != 0)
			return sync_fail(s, -AR_EPROTO, "primary sent a "
			    "malformed or unrequested file header for '%s'",
			    sync_esc(it->path, strlen(it->path)));
		r = fetch_room_begin(s, &it->room, it->dirfd, it->path,
		    s->fent.size);
		if (r != 0)
			return r;
		r = fs_tmpfile(it->dirfd, it->base, &it->fd, it->tmp,
		    sizeof(it->tmp));
		if (r != 0)
			return sync_fail(s, -AR_EIO, "'%s': cannot create a "
			    "temp file: %s", sync_esc(it->path,
			    strlen(it->path)), strerror(errno));
		it->size = s->fent.size;
		it->mtime.tv_sec = s->fent.mtime_sec;
		it->mtime.tv_nsec = s->fent.mtime_nsec;
		it->mode = s->fent.mode;
		sync_map_ids(s, &s->fent);
		it->uid = s->fent.uid;
		it->gid = s->fent.gid;
		it->got = 0;
		it->state = FETCH_ITEM_RECEIVING;
		/* A file ended by R leaves its hash unfinished. */
		hash_release(&b->hash);
		if (hash_init(&b->hash) != 0)
			return -AR_ENOMEM;
		/* The block list comes with the bytes: no second read. */
		fetch_blocks_free(&b->blk);
		b->blk = fetch_blocks_new(s, it->size);
		return 0;
	case WIRE_DATA:
		if (it == NULL || it->state != FETCH_ITEM_RECEIVING)
			return sync_fail(s, -AR_EPROTO, "primary sent data "
			    "outside a file");
		if (len > it->size - it->got)
			return sync_fail(s, -AR_EPROTO, "'%s': primary sent "
			    "more than the %llu bytes it announced",
			    sync_esc(it->path, strlen(it->path)),
			    (unsigned long long)it->size);
		r = fetch_room_take(&it->room, len);
		if (r != 0)
			return r;
		/* Whole blocks of zeros stay holes, as in a delta, from a
		 * primary of any version. */
		if (fs_pwrite_sparse(it->fd, p, len, it->got,
		    &it->room.written) != 0)
			return sync_fail(s, -AR_EIO, "'%s': write: %s",
			    sync_esc(it->path, strlen(it->path)),
			    strerror(errno));
		hash_update(&b->hash, p, len);
		if (b->blk != NULL && blocks_update(b->blk, p, len) != 0)
			fetch_blocks_free(&b->blk);
		it->got += len;
		/* Written back as it arrives, a bounded amount at a time:
		 * the fsync at the end finds little left to do, and no
		 * other fsync queues behind it. */
		fs_writeback(it->fd, it->got, len);
		s->st->file_bytes += len;
		metrics_add(METRICS_RECV_BYTES_WHOLE, len);
		progress_received(&s->prog, s->st->file_bytes);
		return 0;
	case WIRE_HOLE:
		if (it == NULL || it->state != FETCH_ITEM_RECEIVING ||
		    sync_version(s) < WIRE_V_FIDELITY ||
		    wire_get_hole(p, len, &hole) != 0 ||
		    hole > it->size - it->got)
			return sync_fail(s, -AR_EPROTO, "primary sent a "
			    "malformed or unexpected hole");
		fetch_hole(s, it, hole);
		return 0;
	case WIRE_TRAILER:
		if (it == NULL || it->state != FETCH_ITEM_RECEIVING ||
		    wire_get_trailer(p, len, &t) != 0)
			return sync_fail(s, -AR_EPROTO, "primary sent a "
			    "malformed or unexpected trailer");
		/* A hole at the end: the writes left the size short. */
		if (it->got == it->size && ftruncate(it->fd,
		    (off_t)it->size) != 0)
			return sync_fail(s, -AR_EIO, "'%s': truncate: %s",
			    sync_esc(it->path, strlen(it->path)),
			    strerror(errno));
		hash_final(&b->hash, hash);
		if (t.size != it->size || it->got != it->size ||
		    memcmp(t.hash, hash, HASH_LEN) != 0)
			return sync_fail(s, -AR_EPROTO, "'%s': received %llu "
			    "bytes that do not match the primary's size (%llu) "
			    "and hash", sync_esc(it->path, strlen(it->path)),
			    (unsigned long long)it->got,
			    (unsigned long long)t.size);
		r = sync_attrs_set_fd(s, it->fd, it->mode, it->uid, it->gid,
		    it->mtime.tv_sec, (uint32_t)it->mtime.tv_nsec);
		if (r == 0 && b->n < FETCH_SYNCFS_MIN && fsync(it->fd) != 0)
			r = -AR_EIO;
		if (r != 0)
			return sync_fail(s, r, "'%s': %s", sync_esc(it->path,
			    strlen(it->path)), strerror(errno));
		if (b->blk != NULL && blocks_end(b->blk) == 0)
			append_store_put(s, it->fd, it->path, strlen(it->path),
			    b->blk);
		fetch_blocks_free(&b->blk);
		close(it->fd);
		it->fd = -1;
		it->state = FETCH_ITEM_READY;
		b->cur++;
		return 0;
	case WIRE_RETRY:
		if (it == NULL || wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, it->path) != 0)
			return sync_fail(s, -AR_EPROTO, "primary sent a "
			    "malformed or unexpected retry");
		fetch_item_discard(it);
		it->state = FETCH_ITEM_RETRY;
		it->gone = rt.reason != WIRE_RETRY_CHANGED;
		b->cur++;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || b->cur != b->n ||
		    count != b->n)
			return sync_fail(s, -AR_EPROTO, "primary ended a file "
			    "batch early");
		b->ended = 1;
		return 0;
	case WIRE_ERROR:
		return sync_fail(s, -AR_EPROTO, "primary failed to send files");
	default:
		return sync_fail(s, -AR_EPROTO, "primary sent an unexpected "
		    "frame (type 0x%02x) in a file batch", type);
	}
}

/* Splits an answer into frames for cb(arg); errors are told on s. */
struct fetch_body_ctx {
	struct syncer *s;
	void *arg;
	struct wire_reader reader;
	wire_frame_cb *cb;
};

static int
fetch_body_feed(void *arg, const void *data, size_t len)
{
	struct fetch_body_ctx *bc = arg;
	int r;

	r = wire_reader_feed(&bc->reader, data, len, bc->cb, bc->arg);
	if (r == -AR_EPROTO)
		return sync_fail(bc->s, r, "primary sent a malformed frame");
	return r;
}

/*
 * A directory where a received file goes (a type change, or made here
 * since the compare) is removed first, but what this standby excludes
 * in it: the file is then skipped (*skip).
 */
static int
fetch_clear_way(struct syncer *s, const struct fetch_item *it, int *skip)
{
	size_t len = strlen(it->path);
	int kept = 0, own;

	own = sync_is_own(s, it->path, len, WALK_DIR);
	if (!own && sync_remove_at(s, it->dirfd, it->base, it->path, len,
	    &kept) != 0)
		return sync_fail(s, -AR_EIO, "'%s': cannot remove the "
		    "directory in the way: %s", sync_esc(it->path, len),
		    strerror(errno));
	if (!own)
		s->changed = 1;	/* what was removed: the batch's syncfs */
	*skip = own || kept;
	if (*skip)
		(void)sync_skip(s, WALK_FILE, it->path, len, kept);
	return 0;
}

/* Fetch the batch, make it durable, rename it into place. */
static int
fetch_batch_flush(struct syncer *s)
{
	struct fetch_batch *b = &s->batch;
	struct fetch_body_ctx bc;
	uint8_t *body;
	size_t i, j, off = 0, nready = 0;
	int r, n, skip = 0;

	if (b->n == 0)
		return 0;
	body = malloc(b->body_len);
	if (body == NULL)
		return -AR_ENOMEM;
	for (i = 0; i < b->n; i++) {
		n = wire_put_req(body + off, b->body_len - off,
		    b->items[i].path, strlen(b->items[i].path), 0);
		if (n < 0) {
			free(body);
			return -AR_EINTERNAL;
		}
		off += (size_t)n;
	}
	/* fetch_batch_add counted each request's frame exactly. */
	assert(off == b->body_len);
	bc.s = s;
	bc.arg = s;
	bc.cb = fetch_files_frame;
	r = wire_reader_init(&bc.reader, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r == 0) {
		r = client_post_buf(s->client, "/v1/files", body, off,
		    fetch_body_feed, &bc);
		if (r != 0 && s->msg[0] == '\0')
			sync_fail(s, r, "%s", client_errmsg(s->client));
		if (r == 0 && (!b->ended || !wire_reader_idle(&bc.reader)))
			r = sync_fail(s, -AR_EPROTO, "primary's file batch was "
			    "truncated");
		wire_reader_release(&bc.reader);
	}
	free(body);
	if (r != 0) {
		fetch_batch_clear(s);
		return r;
	}
	for (i = 0; i < b->n; i++)
		nready += b->items[i].state == FETCH_ITEM_READY;
	/* One syncfs makes the whole batch durable before any rename: the
	 * files of a batch this big were not fsynced one by one, however
	 * many of them arrived whole. */
	if (nready > 0 && b->n >= FETCH_SYNCFS_MIN &&
	    syncfs(s->rootfd) != 0) {
		fetch_batch_clear(s);
		return sync_fail(s, -AR_EIO, "syncfs: %s", strerror(errno));
	}
	for (i = 0; i < b->n; i++) {
		struct fetch_item *it = &b->items[i];
		struct stat st;

		if (it->state == FETCH_ITEM_RETRY) {
			r = fetch_retry_add(s, it->path, it->gone);
			if (r != 0)
				break;
			continue;
		}
		if (it->state != FETCH_ITEM_READY)
			continue;
		if (fstatat(it->dirfd, it->base, &st, AT_SYMLINK_NOFOLLOW) == 0
		    && S_ISDIR(st.st_mode)) {
			r = fetch_clear_way(s, it, &skip);
			if (r != 0)
				break;
			if (skip)
				continue;	/* its temp file goes below */
		}
		/* The replaced version's store entry goes with it. */
		if (s->state.blocksfd >= 0 && fstatat(it->dirfd, it->base,
		    &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			append_store_drop(s, &st);
		if (renameat(it->dirfd, it->tmp, it->dirfd, it->base) != 0) {
			r = sync_fail(s, -AR_EIO, "'%s': rename: %s",
			    sync_esc(it->path, strlen(it->path)),
			    strerror(errno));
			break;
		}
		it->tmp[0] = '\0';
		s->st->files_whole++;
		metrics_add(METRICS_RECV_FILES_WHOLE, 1);
		/* Durable already (fsynced, or the syncfs above), and so is
		 * its name once its directory is fsynced below: the rename
		 * needs no syncfs of its own. */
		sync_itemize(s, it->existed ? ">f.st......" : ">f+++++++++",
		    it->path, strlen(it->path), "");
	}
	/* Each directory that got a new name, once. */
	for (i = 0; r == 0 && i < b->n; i++) {
		for (j = 0; j < i; j++) {
			if (b->items[j].dir_dev == b->items[i].dir_dev &&
			    b->items[j].dir_ino == b->items[i].dir_ino)
				break;
		}
		if (j == i && fs_fsync_dir(b->items[i].dirfd) != 0)
			r = sync_fail(s, -AR_EIO, "fsync of a directory: %s",
			    strerror(errno));
	}
	fetch_batch_clear(s);
	return r;
}

int
fetch_batch_add(struct syncer *s, const char *path, size_t len, uint64_t size,
    int existed)
{
	struct fetch_batch *b = &s->batch;
	struct fetch_item *it;
	struct stat st;
	const char *base;
	int r, dirfd;

	assert(len > 0 && len <= WIRE_PATH_MAX);
	if (b->n > 0 && (b->n >= s->cfg->batch_files ||
	    b->bytes + size > s->cfg->batch_size ||
	    b->body_len + WIRE_HDR + 2 + len + 8 > FETCH_BODY_MAX)) {
		r = fetch_batch_flush(s);
		if (r != 0)
			return r;
	}
	r = util_grow(&b->items, &b->cap, b->n + 1, sizeof(*b->items), 64);
	if (r != 0)
		return r;
	r = fs_open_parent(s->rootfd, path, &dirfd, &base);
	if (r != 0)
		return sync_fail(s, r, "'%s': cannot open its directory: %s",
		    sync_esc(path, len), r == -AR_EPROTO ? "path crosses a "
		    "symlink" : strerror(errno));
	if (fstat(dirfd, &st) != 0) {
		close(dirfd);
		return sync_fail(s, -AR_EIO, "fstat: %s", strerror(errno));
	}
	it = &b->items[b->n];
	memset(it, 0, sizeof(*it));
	it->path = strndup(path, len);
	if (it->path == NULL) {
		close(dirfd);
		return -AR_ENOMEM;
	}
	it->base = it->path + (base - path);
	it->dirfd = dirfd;
	it->dir_dev = st.st_dev;
	it->dir_ino = st.st_ino;
	it->fd = -1;
	it->existed = existed;
	it->state = FETCH_ITEM_PENDING;
	b->n++;
	b->bytes += size;
	b->body_len += WIRE_HDR + 2 + len + 8;
	assert(b->n <= b->cap && b->body_len <= FETCH_BODY_MAX);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Deltas, one file at a time */

/* Where the answer to one /v1/delta request is. */
enum fetch_delta_state {
	FETCH_DELTA_WAIT,	/* nothing yet: F (a delta follows) or R */
	FETCH_DELTA_PATCHING,	/* F seen: D frames feed the patch job */
	FETCH_DELTA_VERIFIED,	/* T matched the rebuilt file: Z ends it */
	FETCH_DELTA_WHOLE,	/* R, or T did not match: send it whole */
};

struct fetch_delta_ctx {
	struct syncer *s;
	const char *path;
	int dirfd;
	const char *base;
	int basis_fd;
	uint64_t basis_size;
	struct delta_sig *sig;
	/* upload */
	uint8_t hdr[WIRE_HDR + 2 + WIRE_PATH_MAX + 8];
	size_t hdr_len, hdr_pos;
	/* answer */
	enum fetch_delta_state state;
	int ended;		/* Z seen */
	int tmpfd;
	char tmp[NAME_MAX + 1];
	struct delta_patch *patch;
	struct wire_entry *fe;
	struct blocks *blk;	/* the new version's list, or NULL */
	struct fetch_room room;
};

static ssize_t
fetch_delta_upload(void *arg, void *buf, size_t len)
{
	struct fetch_delta_ctx *d = arg;
	ssize_t n;

	if (d->hdr_pos < d->hdr_len) {
		size_t k = d->hdr_len - d->hdr_pos;

		if (k > len)
			k = len;
		memcpy(buf, d->hdr + d->hdr_pos, k);
		d->hdr_pos += k;
		return (ssize_t)k;
	}
	if (len <= WIRE_HDR)
		return -AR_EINTERNAL;
	if (len - WIRE_HDR > WIRE_DATA_CHUNK)
		len = WIRE_DATA_CHUNK + WIRE_HDR;
	n = delta_sig_read(d->sig, (uint8_t *)buf + WIRE_HDR, len - WIRE_HDR);
	if (n <= 0)
		return n;
	wire_put_data_hdr(buf, (uint32_t)n);
	return n + WIRE_HDR;
}

static int
fetch_delta_rewind(void *arg)
{
	struct fetch_delta_ctx *d = arg;

	d->hdr_pos = 0;
	return delta_sig_rewind(d->sig);
}

static int
fetch_delta_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct fetch_delta_ctx *d = arg;
	struct syncer *s = d->s;
	struct wire_trailer t;
	struct wire_retry rt;
	uint8_t hash[HASH_LEN];
	uint64_t size, count;
	int r;

	if (d->ended)
		return sync_fail(s, -AR_EPROTO, "primary sent data after the "
		    "end of a delta");
	switch (type) {
	case WIRE_FILE:
		if (d->state != FETCH_DELTA_WAIT ||
		    wire_get_entry(p, len, WIRE_FILE, d->fe)
		    != 0 || d->fe->type != WALK_FILE ||
		    strcmp(d->fe->name, d->path) != 0)
			return sync_fail(s, -AR_EPROTO, "'%s': primary sent a "
			    "malformed or unexpected delta header",
			    sync_esc(d->path, strlen(d->path)));
		sync_map_ids(s, d->fe);
		r = fetch_room_begin(s, &d->room, d->dirfd, d->path,
		    d->fe->size);
		if (r != 0)
			return r;
		if (fs_tmpfile(d->dirfd, d->base, &d->tmpfd, d->tmp,
		    sizeof(d->tmp)) != 0)
			return sync_fail(s, -AR_EIO, "'%s': cannot create a "
			    "temp file: %s", sync_esc(d->path, strlen(d->path)),
			    strerror(errno));
		r = delta_patch_new(d->basis_fd, d->tmpfd, d->fe->size,
		    &d->patch);
		if (r != 0)
			return r;
		/* Runs of zeros of a block or more stay holes. */
		delta_patch_set_sparse(d->patch);
		delta_patch_set_room(d->patch, fetch_room_patch, &d->room);
		d->blk = fetch_blocks_new(s, d->fe->size);
		if (d->blk != NULL)
			delta_patch_set_blocks(d->patch, d->blk);
		d->state = FETCH_DELTA_PATCHING;
		return 0;
	case WIRE_DATA:
		if (d->state != FETCH_DELTA_PATCHING)
			return sync_fail(s, -AR_EPROTO, "'%s': delta data out "
			    "of place", sync_esc(d->path, strlen(d->path)));
		r = delta_patch_feed(d->patch, p, len);
		if (r != 0)
			return sync_fail(s, r, "'%s': %s", sync_esc(d->path,
			    strlen(d->path)), r == -AR_EIO ? strerror(errno) :
			    "the primary's delta is corrupt or expands past "
			    "the announced size");
		return 0;
	case WIRE_TRAILER:
		if (d->state != FETCH_DELTA_PATCHING ||
		    wire_get_trailer(p, len, &t) != 0)
			return sync_fail(s, -AR_EPROTO, "'%s': unexpected "
			    "trailer", sync_esc(d->path, strlen(d->path)));
		r = delta_patch_finish(d->patch, &size, hash);
		if (r != 0)
			return sync_fail(s, r, "'%s': the primary's delta is "
			    "truncated or corrupt", sync_esc(d->path,
			    strlen(d->path)));
		if (size != t.size || size != d->fe->size ||
		    memcmp(hash, t.hash, HASH_LEN) != 0) {
			/* A block-sum collision (or a broken peer): like
			 * rsync, fetch the file whole, which is verified
			 * too and fatal if it fails. */
			log_warn("'%s': the file rebuilt from a delta failed "
			    "verification; fetching it whole",
			    sync_esc(d->path, strlen(d->path)));
			d->state = FETCH_DELTA_WHOLE;
			return 0;
		}
		s->st->file_bytes += size;
		metrics_add(METRICS_RECV_BYTES_DELTA, size);
		progress_received(&s->prog, s->st->file_bytes);
		d->state = FETCH_DELTA_VERIFIED;
		return 0;
	case WIRE_RETRY:
		if (d->state != FETCH_DELTA_WAIT ||
		    wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, d->path) != 0)
			return sync_fail(s, -AR_EPROTO, "'%s': unexpected "
			    "retry", sync_esc(d->path, strlen(d->path)));
		d->state = FETCH_DELTA_WHOLE;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || count != 1 ||
		    (d->state != FETCH_DELTA_VERIFIED &&
		    d->state != FETCH_DELTA_WHOLE))
			return sync_fail(s, -AR_EPROTO, "'%s': delta ended "
			    "early", sync_esc(d->path, strlen(d->path)));
		d->ended = 1;
		return 0;
	default:
		return sync_fail(s, -AR_EPROTO, "'%s': unexpected frame (type "
		    "0x%02x) in a delta", sync_esc(d->path, strlen(d->path)),
		    type);
	}
}

int
fetch_delta_file(struct syncer *s, const char *path, size_t plen,
    int *whole)
{
	struct fetch_delta_ctx d;
	struct fetch_body_ctx bc;
	struct stat st;
	int r, n;

	*whole = 0;
	memset(&d, 0, sizeof(d));
	d.state = FETCH_DELTA_WAIT;
	d.s = s;
	d.path = path;
	d.tmpfd = -1;
	d.basis_fd = -1;
	d.fe = &s->fent;
	r = fs_open_parent(s->rootfd, path, &d.dirfd, &d.base);
	if (r != 0)
		return sync_fail(s, r, "'%s': cannot open its directory",
		    sync_esc(path, plen));
	d.basis_fd = openat(d.dirfd, d.base, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (d.basis_fd < 0 || fstat(d.basis_fd, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		r = sync_fail(s, -AR_EIO, "'%s': cannot open the local copy: "
		    "%s", sync_esc(path, plen), strerror(errno));
		goto out;
	}
	d.basis_size = (uint64_t)st.st_size;
	r = delta_sig_new(d.basis_fd, d.basis_size, &d.sig);
	if (r != 0)
		goto out;
	n = wire_put_req(d.hdr, sizeof(d.hdr), path, plen, d.basis_size);
	if (n < 0) {
		r = -AR_EINTERNAL;
		goto out;
	}
	d.hdr_len = (size_t)n;
	bc.s = s;
	bc.arg = &d;
	bc.cb = fetch_delta_frame;
	r = wire_reader_init(&bc.reader, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r != 0)
		goto out;
	r = client_post_stream(s->client, "/v1/delta", fetch_delta_upload,
	    fetch_delta_rewind, &d, fetch_body_feed, &bc);
	if (r != 0 && s->msg[0] == '\0')
		sync_fail(s, r, "%s", client_errmsg(s->client));
	if (r == 0 && (!d.ended || !wire_reader_idle(&bc.reader)))
		r = sync_fail(s, -AR_EPROTO, "'%s': the primary's delta was "
		    "truncated", sync_esc(path, plen));
	wire_reader_release(&bc.reader);
	if (r != 0)
		goto out;
	if (d.state == FETCH_DELTA_WHOLE) {
		*whole = 1;
		goto out;
	}
	assert(d.state == FETCH_DELTA_VERIFIED && d.tmpfd >= 0);
	r = sync_attrs_set_fd(s, d.tmpfd, d.fe->mode, d.fe->uid, d.fe->gid,
	    d.fe->mtime_sec, d.fe->mtime_nsec);
	if (r == 0 && fsync(d.tmpfd) != 0)
		r = -AR_EIO;
	if (r == 0 && d.blk != NULL && delta_patch_blocks_ok(d.patch) &&
	    blocks_end(d.blk) == 0)
		append_store_put(s, d.tmpfd, path, plen, d.blk);
	if (r == 0 && renameat(d.dirfd, d.tmp, d.dirfd, d.base) != 0)
		r = -AR_EIO;
	if (r == 0) {
		append_store_drop(s, &st);
		d.tmp[0] = '\0';
		if (fs_fsync_dir(d.dirfd) != 0)
			r = -AR_EIO;
	}
	if (r != 0) {
		r = sync_fail(s, r, "'%s': %s", sync_esc(path, plen),
		    strerror(errno));
		goto out;
	}
	s->st->files_delta++;
	metrics_add(METRICS_RECV_FILES_DELTA, 1);
	s->changed = 1;
	sync_itemize(s, ">f.st......", path, plen, "");
out:
	fetch_blocks_free(&d.blk);
	delta_patch_free(d.patch);
	delta_sig_free(d.sig);
	if (d.tmpfd >= 0)
		close(d.tmpfd);
	if (d.tmp[0] != '\0')
		unlinkat(d.dirfd, d.tmp, 0);
	if (d.basis_fd >= 0)
		close(d.basis_fd);
	close(d.dirfd);
	return r;
}

/* ---------------------------------------------------------------- */
/* Answers stored in state_dir */

static int
fetch_stored_body(void *arg, const void *data, size_t len)
{
	struct fetch_stored_ctx *st = arg;
	int r;

	r = wire_reader_feed(&st->rd, data, len, st->check, st);
	if (r == -AR_EPROTO && st->s->msg[0] == '\0')
		sync_fail(st->s, r, "primary sent a malformed frame");
	if (r != 0)
		return r;
	/* A primary could send an endless answer: it would fill state_dir
	 * (an endless manifest grew to 3 GB in 8 s). */
	if (len > st->s->cfg->max_stored_size - st->stored)
		return sync_fail(st->s, -AR_ENOMEM, "state directory: the "
		    "primary's answer exceeds max_stored_size (%llu bytes)",
		    (unsigned long long)st->s->cfg->max_stored_size);
	st->stored += len;
	if (fs_write_full(st->fd, data, len) != 0)
		return sync_fail(st->s, -AR_ESTATE, "state directory: cannot "
		    "store an answer: %s", strerror(errno));
	return 0;
}

/* GET url into state_dir/file; *fdp is the file, ready to replay. */
int
fetch_stored(struct syncer *s, const char *url, enum state_scratch file,
    wire_frame_cb *check, void *arg, const char *what, int *fdp)
{
	struct fetch_stored_ctx st;
	int r;

	memset(&st, 0, sizeof(st));
	st.s = s;
	st.check = check;
	st.arg = arg;
	r = state_scratch(&s->state, file, &st.fd, s->msg, s->msglen);
	if (r != 0)
		return r;
	r = wire_reader_init(&st.rd, WIRE_MAX_FRAME);
	if (r == 0) {
		r = client_get(s->client, url, fetch_stored_body, &st);
		if (r != 0 && s->msg[0] == '\0')
			sync_fail(s, r, "%s", client_errmsg(s->client));
		if (r == 0 && (!st.ended || !wire_reader_idle(&st.rd)))
			r = sync_fail(s, -AR_EPROTO, "primary's %s was "
			    "truncated", what);
		wire_reader_release(&st.rd);
	}
	if (r != 0) {
		close(st.fd);
		return r;
	}
	*fdp = st.fd;
	return 0;
}

static int
fetch_manifest_check(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct fetch_stored_ctx *st = arg;
	struct wire_error we;

	if (st->ended)
		return sync_fail(st->s, -AR_EPROTO, "primary sent data after "
		    "the end of its manifest");
	if (type == WIRE_ERROR) {
		if (wire_get_error(p, len, &we) == 0)
			return sync_fail(st->s, -AR_EPROTO, "primary could not "
			    "list its tree: %s", sync_esc(we.msg, we.msg_len));
		return sync_fail(st->s, -AR_EPROTO, "primary could not list "
		    "its tree");
	}
	if (type == WIRE_IDNAME)
		return sync_idname_count(st);
	if (type != WIRE_DIR && type != WIRE_ENTRY && type != WIRE_END &&
	    !((type == WIRE_ATTRS || type == WIRE_XATTRS) &&
	    sync_version(st->s) >= WIRE_V_FIDELITY))
		return sync_fail(st->s, -AR_EPROTO, "unexpected frame (type "
		    "0x%02x) in the manifest", type);
	st->ended = type == WIRE_END;
	return 0;
}

/* Download the manifest of path ("" = all) into state_dir. */
int
fetch_manifest(struct syncer *s, const char *path, int *fdp)
{
	char url[64 + 3 * WIRE_PATH_MAX];

	if (client_url(s->client, "/v1/manifest", "path", path, url,
	    sizeof(url)) != 0)
		return -AR_ENOMEM;
	return fetch_stored(s, url, STATE_SCRATCH_MANIFEST,
	    fetch_manifest_check, NULL, "manifest", fdp);
}

/* Read a stored answer (manifest or batch) and hand each frame to cb. */
int
fetch_replay(struct syncer *s, int fd, wire_frame_cb *cb)
{
	struct wire_reader rd;
	uint8_t *buf;
	ssize_t n;
	int r;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return -AR_EIO;
	buf = malloc(FETCH_READ_CHUNK);
	if (buf == NULL)
		return -AR_ENOMEM;
	r = wire_reader_init(&rd, WIRE_MAX_FRAME);
	while (r == 0) {
		n = fs_read_full(fd, buf, FETCH_READ_CHUNK);
		if (n < 0) {
			r = sync_fail(s, -AR_ESTATE, "state directory: cannot "
			    "read the manifest: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		r = wire_reader_feed(&rd, buf, (size_t)n, cb, s);
	}
	wire_reader_release(&rd);
	free(buf);
	return r;
}

/* Fetch again, whole, the files that changed while they were sent. */
int
fetch_flush_all(struct syncer *s)
{
	size_t i;
	int r;

	r = fetch_batch_flush(s);
	if (r == 0 && s->nretry > 0) {
		s->retrying = 1;
		for (i = 0; r == 0 && i < s->nretry; i++)
			r = fetch_batch_add(s, s->retry[i], strlen(s->retry[i]),
			    0, 1);
		if (r == 0)
			r = fetch_batch_flush(s);
		s->retrying = 0;
	}
	for (i = 0; i < s->nretry; i++)
		free(s->retry[i]);
	s->nretry = 0;
	return r;
}

