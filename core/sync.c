#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include <sys/random.h>
#include <time.h>

#include "delta.h"
#include "error.h"
#include "exclude.h"
#include "fs.h"
#include "gen.h"
#include "hash.h"
#include "log.h"
#include "state.h"
#include "sync.h"
#include "walk.h"
#include "wire.h"

/* Largest /v1/files request body we build (the server takes 1 MiB). */
#define BATCH_BODY_MAX (1000u * 1024)
/* Batches at least this many files are made durable with one syncfs. */
#define BATCH_SYNCFS_MIN 4
/* Files that changed while sent are retried once, up to this many. */
#define RETRY_MAX 65536
#define READ_CHUNK (256u * 1024)

/* ---------------------------------------------------------------- */
/* State */

enum item_state {
	ITEM_PENDING,		/* requested, nothing received */
	ITEM_RECEIVING,		/* F seen, temp file open */
	ITEM_READY,		/* verified temp file, to rename */
	ITEM_RETRY,		/* the primary said R */
};

/* A file to receive whole in the current batch. */
struct item {
	char *path;
	const char *base;	/* last component, inside path */
	int dirfd;		/* its directory (owned) */
	dev_t dir_dev;
	ino_t dir_ino;
	int existed;		/* a local version is replaced */
	int gone;		/* R said gone, not changed */
	enum item_state state;
	int fd;			/* temp file while receiving */
	char tmp[NAME_MAX + 1];
	uint64_t size;		/* from the F frame */
	uint64_t got;
	struct timespec mtime;
	uint32_t mode, uid, gid;
};

struct batch {
	struct item *items;
	size_t n, cap;
	uint64_t bytes;		/* announced bytes of the queued files */
	size_t body_len;	/* bytes of the request body */
	size_t cur;		/* item being answered */
	int ended;		/* Z frame seen */
	struct hash_ctx hash;
};

/* The directory being merged: its sorted local listing and a cursor. */
struct block {
	int active;
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

struct syncer {
	const struct sync_opts *o;
	const struct config_standby *cfg;
	struct sync_stats *st;
	struct client *client;
	int rootfd;
	struct state state;
	int is_root;
	int changed;		/* anything written: syncfs at the end */
	struct block blk;
	struct batch batch;
	char **retry;
	size_t nretry, retry_cap;
	int retrying;		/* the retry pass: R now means failed */
	char *msg;
	size_t msglen;
	struct wire_entry ent;	/* scratch for decoded entries */
	struct wire_entry fent;
	struct wire_entry uent;	/* a U frame, renamed to its base name */
	uint64_t mf_entries;	/* E frames of the manifest being merged */
	struct exclude *exclude;
	/* follow */
	char **rescan;		/* subtrees to compare after a batch */
	size_t nrescan, rescan_cap;
	int full;		/* the whole tree must be compared */
	int following;		/* sync --follow */
	int progress;		/* a batch was applied since the last error */
	int hold;		/* keep the position: a file moved while sent */
	char id[65];
	struct wire_pathop op;
	uint64_t hello_seq;
	uint32_t hello_role;
	char hello_gen[WIRE_GEN_LEN + 1];
};

static int
fail(struct syncer *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct syncer *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (s->msg[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->msg, s->msglen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* An escaped copy of a path for messages; a few rotate so one call can
 * use two. */
static const char *
esc(const char *p, size_t len)
{
	static char bufs[2][LOG_ESC_MAX];
	static int i;

	i ^= 1;
	return log_escape(p, len, bufs[i], sizeof(bufs[i]));
}

/* Join dir and name into out; returns the length or -1 if too long. */
static int
join(char *out, const char *dir, size_t dlen, const char *name, size_t nlen)
{
	size_t len = dlen + (dlen > 0) + nlen;

	if (len > WIRE_PATH_MAX)
		return -1;
	memcpy(out, dir, dlen);
	if (dlen > 0)
		out[dlen] = '/';
	memcpy(out + dlen + (dlen > 0), name, nlen);
	out[len] = '\0';
	return (int)len;
}

static void
itemize(struct syncer *s, const char *code, const char *path, size_t len,
    const char *suffix)
{
	if (s->o->itemize == NULL)
		return;
	fprintf(s->o->itemize, "%s %s%s\n", code, esc(path, len), suffix);
}

/* ---------------------------------------------------------------- */
/* Applying metadata */

static int
same_mtime(const struct stat *st, const struct wire_entry *e)
{
	return st->st_mtim.tv_sec == e->mtime_sec &&
	    (uint32_t)st->st_mtim.tv_nsec == e->mtime_nsec;
}

static int
attrs_differ(const struct syncer *s, const struct stat *st,
    const struct wire_entry *e)
{
	if ((st->st_mode & 07777) != e->mode)
		return 1;
	return s->is_root && (st->st_uid != e->uid || st->st_gid != e->gid);
}

/* Owner, mode and mtime onto an open file or directory. */
static int
set_attrs_fd(struct syncer *s, int fd, uint32_t mode, uint32_t uid,
    uint32_t gid, int64_t sec, uint32_t nsec)
{
	struct timespec ts[2];

	/* chown first: it clears set-id bits that fchmod then sets. */
	if (s->is_root && fchown(fd, uid, gid) != 0)
		return -AR_EIO;
	if (fchmod(fd, mode) != 0)
		return -AR_EIO;
	ts[0].tv_sec = sec;
	ts[0].tv_nsec = nsec;
	ts[1] = ts[0];
	if (futimens(fd, ts) != 0)
		return -AR_EIO;
	return 0;
}

static int
set_attrs_at(struct syncer *s, int dirfd, const char *name,
    const struct wire_entry *e, int dir)
{
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	if (fd < 0)
		return -AR_EIO;
	r = set_attrs_fd(s, fd, e->mode, e->uid, e->gid, e->mtime_sec,
	    e->mtime_nsec);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- */
/* Whole files, in batches */

static void
item_discard(struct item *it)
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
batch_clear(struct syncer *s)
{
	struct batch *b = &s->batch;
	size_t i;

	for (i = 0; i < b->n; i++) {
		item_discard(&b->items[i]);
		close(b->items[i].dirfd);
		free(b->items[i].path);
	}
	b->n = 0;
	b->bytes = 0;
	b->body_len = 0;
	b->cur = 0;
	b->ended = 0;
	hash_release(&b->hash);
}

static int
retry_add(struct syncer *s, const char *path, int gone)
{
	char **n;

	if (s->retrying || s->nretry == RETRY_MAX) {
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
		    "time", esc(path, strlen(path)));
		return 0;
	}
	if (s->nretry == s->retry_cap) {
		size_t ncap = s->retry_cap ? s->retry_cap * 2 : 64;

		n = reallocarray(s->retry, ncap, sizeof(*n));
		if (n == NULL)
			return -AR_ENOMEM;
		s->retry = n;
		s->retry_cap = ncap;
	}
	s->retry[s->nretry] = strdup(path);
	if (s->retry[s->nretry] == NULL)
		return -AR_ENOMEM;
	s->nretry++;
	return 0;
}

/*
 * Start writing a large file's data to disk while it still arrives, so
 * the fsync (or syncfs) that makes it durable finds little left to do.
 * Only a hint: errors surface at that fsync.
 */
#define WRITEBACK_CHUNK (8u * 1024 * 1024)

static void
writeback(int fd, uint64_t end, size_t len)
{
	uint64_t start = end - len;

	if (end / WRITEBACK_CHUNK == start / WRITEBACK_CHUNK)
		return;
	start = (end / WRITEBACK_CHUNK - 1) * WRITEBACK_CHUNK;
	(void)sync_file_range(fd, (off_t)start, WRITEBACK_CHUNK,
	    SYNC_FILE_RANGE_WRITE);
}

/* A frame of the answer to /v1/files. */
static int
files_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	struct batch *b = &s->batch;
	struct item *it = b->cur < b->n ? &b->items[b->cur] : NULL;
	struct wire_trailer t;
	struct wire_retry rt;
	uint8_t hash[HASH_LEN];
	uint64_t count;
	int r;

	if (b->ended)
		return fail(s, -AR_EPROTO, "primary sent data after the end "
		    "of a file batch");
	switch (type) {
	case WIRE_FILE:
		if (it == NULL || it->state != ITEM_PENDING)
			return fail(s, -AR_EPROTO, "primary sent an "
			    "unrequested file");
		r = wire_get_entry(p, len, WIRE_FILE, &s->fent);
		if (r != 0 || s->fent.type != WALK_FILE ||
		    strcmp(s->fent.name, it->path) != 0)
			return fail(s, -AR_EPROTO, "primary sent a malformed "
			    "or unrequested file header for '%s'",
			    esc(it->path, strlen(it->path)));
		r = fs_tmpfile(it->dirfd, it->base, &it->fd, it->tmp,
		    sizeof(it->tmp));
		if (r != 0)
			return fail(s, -AR_EIO, "'%s': cannot create a temp "
			    "file: %s", esc(it->path, strlen(it->path)),
			    strerror(errno));
		it->size = s->fent.size;
		it->mtime.tv_sec = s->fent.mtime_sec;
		it->mtime.tv_nsec = s->fent.mtime_nsec;
		it->mode = s->fent.mode;
		it->uid = s->fent.uid;
		it->gid = s->fent.gid;
		it->got = 0;
		it->state = ITEM_RECEIVING;
		if (hash_init(&b->hash) != 0)
			return -AR_ENOMEM;
		return 0;
	case WIRE_DATA:
		if (it == NULL || it->state != ITEM_RECEIVING)
			return fail(s, -AR_EPROTO, "primary sent data outside "
			    "a file");
		if (len > it->size - it->got)
			return fail(s, -AR_EPROTO, "'%s': primary sent more "
			    "than the %llu bytes it announced",
			    esc(it->path, strlen(it->path)),
			    (unsigned long long)it->size);
		if (fs_write_full(it->fd, p, len) != 0)
			return fail(s, -AR_EIO, "'%s': write: %s",
			    esc(it->path, strlen(it->path)), strerror(errno));
		hash_update(&b->hash, p, len);
		it->got += len;
		writeback(it->fd, it->got, len);
		s->st->file_bytes += len;
		return 0;
	case WIRE_TRAILER:
		if (it == NULL || it->state != ITEM_RECEIVING ||
		    wire_get_trailer(p, len, &t) != 0)
			return fail(s, -AR_EPROTO, "primary sent a malformed "
			    "or unexpected trailer");
		hash_final(&b->hash, hash);
		if (t.size != it->size || it->got != it->size ||
		    memcmp(t.hash, hash, HASH_LEN) != 0)
			return fail(s, -AR_EPROTO, "'%s': received %llu bytes "
			    "that do not match the primary's size (%llu) and "
			    "hash", esc(it->path, strlen(it->path)),
			    (unsigned long long)it->got,
			    (unsigned long long)t.size);
		r = set_attrs_fd(s, it->fd, it->mode, it->uid, it->gid,
		    it->mtime.tv_sec, (uint32_t)it->mtime.tv_nsec);
		if (r == 0 && b->n < BATCH_SYNCFS_MIN && fsync(it->fd) != 0)
			r = -AR_EIO;
		if (r != 0)
			return fail(s, r, "'%s': %s", esc(it->path,
			    strlen(it->path)), strerror(errno));
		close(it->fd);
		it->fd = -1;
		it->state = ITEM_READY;
		b->cur++;
		return 0;
	case WIRE_RETRY:
		if (it == NULL || wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, it->path) != 0)
			return fail(s, -AR_EPROTO, "primary sent a malformed "
			    "or unexpected retry");
		item_discard(it);
		it->state = ITEM_RETRY;
		it->gone = rt.reason != WIRE_RETRY_CHANGED;
		b->cur++;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || b->cur != b->n ||
		    count != b->n)
			return fail(s, -AR_EPROTO, "primary ended a file batch "
			    "early");
		b->ended = 1;
		return 0;
	case WIRE_ERROR:
		return fail(s, -AR_EPROTO, "primary failed to send files");
	default:
		return fail(s, -AR_EPROTO, "primary sent an unexpected frame "
		    "(type 0x%02x) in a file batch", type);
	}
}

/* Splits an answer into frames for cb(arg); errors are told on s. */
struct body_ctx {
	struct syncer *s;
	void *arg;
	struct wire_reader reader;
	wire_frame_cb *cb;
};

static int
body_feed(void *arg, const void *data, size_t len)
{
	struct body_ctx *bc = arg;
	int r;

	r = wire_reader_feed(&bc->reader, data, len, bc->cb, bc->arg);
	if (r == -AR_EPROTO)
		return fail(bc->s, r, "primary sent a malformed frame");
	return r;
}

/* Fetch the batch, make it durable, rename it into place. */
static int
batch_flush(struct syncer *s)
{
	struct batch *b = &s->batch;
	struct body_ctx bc;
	uint8_t *body;
	size_t i, j, off = 0, nready = 0;
	int r, n;

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
	bc.s = s;
	bc.arg = s;
	bc.cb = files_frame;
	r = wire_reader_init(&bc.reader, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r == 0) {
		r = client_post_buf(s->client, "/v1/files", body, off,
		    body_feed, &bc);
		if (r != 0 && s->msg[0] == '\0')
			fail(s, r, "%s", client_errmsg(s->client));
		if (r == 0 && (!b->ended || !wire_reader_idle(&bc.reader)))
			r = fail(s, -AR_EPROTO, "primary's file batch was "
			    "truncated");
		wire_reader_release(&bc.reader);
	}
	free(body);
	if (r != 0) {
		batch_clear(s);
		return r;
	}
	for (i = 0; i < b->n; i++)
		nready += b->items[i].state == ITEM_READY;
	/* One syncfs makes the whole batch durable before any rename. */
	if (nready >= BATCH_SYNCFS_MIN && b->n >= BATCH_SYNCFS_MIN &&
	    syncfs(s->rootfd) != 0) {
		batch_clear(s);
		return fail(s, -AR_EIO, "syncfs: %s", strerror(errno));
	}
	for (i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		struct stat st;

		if (it->state == ITEM_RETRY) {
			r = retry_add(s, it->path, it->gone);
			if (r != 0)
				break;
			continue;
		}
		if (it->state != ITEM_READY)
			continue;
		/* A directory in the way (a type change) goes first. */
		if (fstatat(it->dirfd, it->base, &st, AT_SYMLINK_NOFOLLOW) == 0
		    && S_ISDIR(st.st_mode) &&
		    fs_remove_tree(it->dirfd, it->base) != 0) {
			r = fail(s, -AR_EIO, "'%s': cannot remove the "
			    "directory in the way: %s", esc(it->path,
			    strlen(it->path)), strerror(errno));
			break;
		}
		if (renameat(it->dirfd, it->tmp, it->dirfd, it->base) != 0) {
			r = fail(s, -AR_EIO, "'%s': rename: %s",
			    esc(it->path, strlen(it->path)), strerror(errno));
			break;
		}
		it->tmp[0] = '\0';
		s->st->files_whole++;
		s->changed = 1;
		itemize(s, it->existed ? ">f.st......" : ">f+++++++++",
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
			r = fail(s, -AR_EIO, "fsync of a directory: %s",
			    strerror(errno));
	}
	batch_clear(s);
	return r;
}

/* Queue one file to be received whole, flushing a full batch first. */
static int
batch_add(struct syncer *s, const char *path, size_t len, uint64_t size,
    int existed)
{
	struct batch *b = &s->batch;
	struct item *it;
	struct stat st;
	const char *base;
	int r, dirfd;

	if (b->n > 0 && (b->n >= s->cfg->batch_files ||
	    b->bytes + size > s->cfg->batch_size ||
	    b->body_len + WIRE_HDR + 2 + len + 8 > BATCH_BODY_MAX)) {
		r = batch_flush(s);
		if (r != 0)
			return r;
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		struct item *ni = reallocarray(b->items, ncap, sizeof(*ni));

		if (ni == NULL)
			return -AR_ENOMEM;
		b->items = ni;
		b->cap = ncap;
	}
	r = fs_open_parent(s->rootfd, path, &dirfd, &base);
	if (r != 0)
		return fail(s, r, "'%s': cannot open its directory: %s",
		    esc(path, len), r == -AR_EPROTO ? "path crosses a symlink"
		    : strerror(errno));
	if (fstat(dirfd, &st) != 0) {
		close(dirfd);
		return fail(s, -AR_EIO, "fstat: %s", strerror(errno));
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
	it->state = ITEM_PENDING;
	b->n++;
	b->bytes += size;
	b->body_len += WIRE_HDR + 2 + len + 8;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Deltas, one file at a time */

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
	int state;		/* 0 want F/R, 1 in delta, 2 trailer seen, 3 retry */
	int ended;
	int tmpfd;
	char tmp[NAME_MAX + 1];
	struct delta_patch *patch;
	struct wire_entry *fe;
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
		return fail(s, -AR_EPROTO, "primary sent data after the end "
		    "of a delta");
	switch (type) {
	case WIRE_FILE:
		if (d->state != 0 || wire_get_entry(p, len, WIRE_FILE, d->fe)
		    != 0 || d->fe->type != WALK_FILE ||
		    strcmp(d->fe->name, d->path) != 0)
			return fail(s, -AR_EPROTO, "'%s': primary sent a "
			    "malformed or unexpected delta header",
			    esc(d->path, strlen(d->path)));
		if (fs_tmpfile(d->dirfd, d->base, &d->tmpfd, d->tmp,
		    sizeof(d->tmp)) != 0)
			return fail(s, -AR_EIO, "'%s': cannot create a temp "
			    "file: %s", esc(d->path, strlen(d->path)),
			    strerror(errno));
		r = delta_patch_new(d->basis_fd, d->tmpfd, d->fe->size,
		    &d->patch);
		if (r != 0)
			return r;
		d->state = 1;
		return 0;
	case WIRE_DATA:
		if (d->state != 1)
			return fail(s, -AR_EPROTO, "'%s': delta data out of "
			    "place", esc(d->path, strlen(d->path)));
		r = delta_patch_feed(d->patch, p, len);
		if (r != 0)
			return fail(s, r, "'%s': %s", esc(d->path,
			    strlen(d->path)), r == -AR_EIO ? strerror(errno) :
			    "the primary's delta is corrupt or expands past "
			    "the announced size");
		return 0;
	case WIRE_TRAILER:
		if (d->state != 1 || wire_get_trailer(p, len, &t) != 0)
			return fail(s, -AR_EPROTO, "'%s': unexpected trailer",
			    esc(d->path, strlen(d->path)));
		r = delta_patch_finish(d->patch, &size, hash);
		if (r != 0)
			return fail(s, r, "'%s': the primary's delta is "
			    "truncated or corrupt", esc(d->path,
			    strlen(d->path)));
		if (size != t.size || size != d->fe->size ||
		    memcmp(hash, t.hash, HASH_LEN) != 0) {
			/* A block-sum collision (or a broken peer): like
			 * rsync, fetch the file whole, which is verified
			 * too and fatal if it fails. */
			log_warn("'%s': the file rebuilt from a delta failed "
			    "verification; fetching it whole",
			    esc(d->path, strlen(d->path)));
			d->state = 3;
			return 0;
		}
		s->st->file_bytes += size;
		d->state = 2;
		return 0;
	case WIRE_RETRY:
		if (d->state != 0 || wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, d->path) != 0)
			return fail(s, -AR_EPROTO, "'%s': unexpected retry",
			    esc(d->path, strlen(d->path)));
		d->state = 3;
		return 0;
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 || count != 1 ||
		    (d->state != 2 && d->state != 3))
			return fail(s, -AR_EPROTO, "'%s': delta ended early",
			    esc(d->path, strlen(d->path)));
		d->ended = 1;
		return 0;
	default:
		return fail(s, -AR_EPROTO, "'%s': unexpected frame (type "
		    "0x%02x) in a delta", esc(d->path, strlen(d->path)), type);
	}
}

/*
 * Rebuild path from a delta against the local copy. Returns 0 when done,
 * 1 when the primary asked for a retry (the caller sends it whole).
 */
static int
fetch_delta_file(struct syncer *s, const char *path, size_t plen)
{
	struct fetch_delta_ctx d;
	struct body_ctx bc;
	struct stat st;
	int r, n;

	memset(&d, 0, sizeof(d));
	d.s = s;
	d.path = path;
	d.tmpfd = -1;
	d.basis_fd = -1;
	d.fe = &s->fent;
	r = fs_open_parent(s->rootfd, path, &d.dirfd, &d.base);
	if (r != 0)
		return fail(s, r, "'%s': cannot open its directory",
		    esc(path, plen));
	d.basis_fd = openat(d.dirfd, d.base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (d.basis_fd < 0 || fstat(d.basis_fd, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		r = fail(s, -AR_EIO, "'%s': cannot open the local copy: %s",
		    esc(path, plen), strerror(errno));
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
	    fetch_delta_rewind, &d, body_feed, &bc);
	if (r != 0 && s->msg[0] == '\0')
		fail(s, r, "%s", client_errmsg(s->client));
	if (r == 0 && (!d.ended || !wire_reader_idle(&bc.reader)))
		r = fail(s, -AR_EPROTO, "'%s': the primary's delta was "
		    "truncated", esc(path, plen));
	wire_reader_release(&bc.reader);
	if (r != 0)
		goto out;
	if (d.state == 3) {
		r = 1;
		goto out;
	}
	r = set_attrs_fd(s, d.tmpfd, d.fe->mode, d.fe->uid, d.fe->gid,
	    d.fe->mtime_sec, d.fe->mtime_nsec);
	if (r == 0 && fsync(d.tmpfd) != 0)
		r = -AR_EIO;
	if (r == 0 && renameat(d.dirfd, d.tmp, d.dirfd, d.base) != 0)
		r = -AR_EIO;
	if (r == 0) {
		d.tmp[0] = '\0';
		if (fs_fsync_dir(d.dirfd) != 0)
			r = -AR_EIO;
	}
	if (r != 0) {
		r = fail(s, r, "'%s': %s", esc(path, plen), strerror(errno));
		goto out;
	}
	s->st->files_delta++;
	s->changed = 1;
	itemize(s, ">f.st......", path, plen, "");
out:
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
/* Merging one directory */

static int
remove_local(struct syncer *s, const struct walk_ent *le)
{
	char path[WIRE_PATH_MAX + 1];
	int len;

	len = join(path, s->blk.path, s->blk.path_len, le->name, le->namelen);
	if (len < 0)
		len = 0;
	/* What this standby excludes is its own: never deleted. */
	if (exclude_match(s->exclude, path, (size_t)len,
	    le->type == WALK_DIR) &&
	    strncmp(le->name, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)) != 0)
		return 0;
	/* Our own leftovers go silently. */
	if (strncmp(le->name, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)) != 0) {
		itemize(s, "*deleting  ", path, (size_t)len,
		    le->type == WALK_DIR ? "/" : "");
		s->st->deleted++;
	}
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	if (fs_remove_tree(s->blk.dirfd, le->name) != 0)
		return fail(s, -AR_EIO, "'%s': cannot delete: %s",
		    esc(path, (size_t)len), strerror(errno));
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

static int
block_finish(struct syncer *s)
{
	struct block *b = &s->blk;
	int r = 0;

	if (!b->active)
		return 0;
	while (r == 0 && b->cursor < b->local.n)
		r = remove_local(s, &b->local.ents[b->cursor++]);
	if (r == 0 && b->dirty && fs_fsync_dir(b->dirfd) != 0)
		r = fail(s, -AR_EIO, "fsync of '%s': %s", esc(b->path,
		    b->path_len), strerror(errno));
	if (b->dirfd >= 0)
		close(b->dirfd);
	b->dirfd = -1;
	b->active = 0;
	return r;
}

static int
block_start(struct syncer *s, const char *path, size_t len)
{
	struct block *b = &s->blk;
	int r;

	memcpy(b->path, path, len + 1);
	b->path_len = len;
	b->cursor = 0;
	b->have_last = 0;
	b->dirty = 0;
	b->dirfd = -1;
	b->local.n = 0;
	b->active = 1;
	if (s->rootfd < 0)
		return 0;	/* dry run into a missing data_dir */
	r = fs_open_beneath(s->rootfd, path, O_RDONLY | O_DIRECTORY, 0,
	    &b->dirfd);
	if (r == -AR_EPROTO)
		return fail(s, r, "primary named directory '%s', which "
		    "crosses a symlink on this side", esc(path, len));
	if (r != 0) {
		b->dirfd = -1;
		if (s->o->dry_run && errno == ENOENT)
			return 0;	/* would have been created */
		return fail(s, -AR_EIO, "directory '%s': %s", esc(path, len),
		    strerror(errno));
	}
	r = walk_list(b->dirfd, 0, &b->local);
	if (r != 0)
		return fail(s, r, "directory '%s': cannot list: %s",
		    esc(path, len), strerror(errno));
	return 0;
}

static int
entry_dir(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	int r;

	if (le != NULL && le->type == WALK_DIR)
		return 0;	/* attributes in the final pass */
	if (le != NULL) {
		r = remove_local(s, le);
		if (r != 0)
			return r;
	}
	itemize(s, "cd+++++++++", path, plen, "/");
	s->st->dirs_created++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	if (mkdirat(s->blk.dirfd, e->name, 0700) != 0)
		return fail(s, -AR_EIO, "'%s': mkdir: %s", esc(path, plen),
		    strerror(errno));
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

static int
entry_link(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	char cur[WIRE_TARGET_MAX + 1], tmp[NAME_MAX + 1];
	struct timespec ts[2];
	ssize_t n;
	int fd, r;

	if (le != NULL && le->type == WALK_LINK) {
		n = readlinkat(s->blk.dirfd, e->name, cur, sizeof(cur));
		if (n == (ssize_t)e->target_len &&
		    memcmp(cur, e->target, e->target_len) == 0)
			return 0;
	}
	itemize(s, le != NULL ? "cL.t......." : "cL+++++++++", path, plen,
	    "");
	if (s->o->itemize != NULL)
		fprintf(s->o->itemize, "    -> %s\n",
		    esc(e->target, e->target_len));
	s->st->links_set++;
	if (s->o->dry_run || s->blk.dirfd < 0)
		return 0;
	/* A fresh name, then rename over whatever is there. */
	r = fs_tmpfile(s->blk.dirfd, e->name, &fd, tmp, sizeof(tmp));
	if (r != 0)
		return fail(s, -AR_EIO, "'%s': temp name: %s",
		    esc(path, plen), strerror(errno));
	close(fd);
	if (unlinkat(s->blk.dirfd, tmp, 0) != 0 ||
	    symlinkat(e->target, s->blk.dirfd, tmp) != 0)
		return fail(s, -AR_EIO, "'%s': symlink: %s", esc(path, plen),
		    strerror(errno));
	ts[0].tv_sec = e->mtime_sec;
	ts[0].tv_nsec = e->mtime_nsec;
	ts[1] = ts[0];
	if ((s->is_root && fchownat(s->blk.dirfd, tmp, e->uid, e->gid,
	    AT_SYMLINK_NOFOLLOW) != 0) ||
	    utimensat(s->blk.dirfd, tmp, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		unlinkat(s->blk.dirfd, tmp, 0);
		return fail(s, -AR_EIO, "'%s': cannot set attributes: %s",
		    esc(path, plen), strerror(errno));
	}
	if (le != NULL && le->type == WALK_DIR &&
	    fs_remove_tree(s->blk.dirfd, e->name) != 0) {
		unlinkat(s->blk.dirfd, tmp, 0);
		return fail(s, -AR_EIO, "'%s': cannot remove the directory "
		    "in the way: %s", esc(path, plen), strerror(errno));
	}
	if (renameat(s->blk.dirfd, tmp, s->blk.dirfd, e->name) != 0) {
		unlinkat(s->blk.dirfd, tmp, 0);
		return fail(s, -AR_EIO, "'%s': rename: %s", esc(path, plen),
		    strerror(errno));
	}
	s->blk.dirty = 1;
	s->changed = 1;
	return 0;
}

static int
entry_file(struct syncer *s, const struct wire_entry *e,
    const struct walk_ent *le, const char *path, size_t plen)
{
	int r;

	if (le != NULL && le->type == WALK_FILE &&
	    (uint64_t)le->st.st_size == e->size && same_mtime(&le->st, e)) {
		if (!attrs_differ(s, &le->st, e))
			return 0;
		itemize(s, ".f...p.....", path, plen, "");
		s->st->attrs_set++;
		if (s->o->dry_run)
			return 0;
		s->changed = 1;
		if (set_attrs_at(s, s->blk.dirfd, e->name, e, 0) != 0)
			return fail(s, -AR_EIO, "'%s': cannot set attributes: "
			    "%s", esc(path, plen), strerror(errno));
		return 0;
	}
	if (s->o->dry_run || s->blk.dirfd < 0) {
		itemize(s, le != NULL ? ">f.st......" : ">f+++++++++", path,
		    plen, "");
		return 0;
	}
	if (le != NULL && le->type == WALK_FILE &&
	    (uint64_t)le->st.st_size >= s->cfg->delta_min_size &&
	    e->size >= s->cfg->delta_min_size) {
		r = fetch_delta_file(s, path, plen);
		if (r <= 0)
			return r;
		/* The primary asked for a retry: send it whole. */
	}
	/* A symlink in the way is replaced by the rename. */
	return batch_add(s, path, plen, e->size, le != NULL);
}

/* Delete the local names sorted before name; *le is the local entry of
 * that name, or NULL. */
static int
merge_upto(struct syncer *s, const char *name, size_t nlen,
    const struct walk_ent **le)
{
	struct block *b = &s->blk;
	int c, r;

	*le = NULL;
	while (b->cursor < b->local.n) {
		const struct walk_ent *x = &b->local.ents[b->cursor];
		size_t m = x->namelen < nlen ? x->namelen : nlen;

		c = memcmp(x->name, name, m);
		if (c == 0)
			c = x->namelen < nlen ? -1 : x->namelen > nlen;
		if (c > 0)
			break;
		b->cursor++;
		if (c == 0) {
			*le = x;
			break;
		}
		r = remove_local(s, x);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
entry(struct syncer *s, const struct wire_entry *e)
{
	struct block *b = &s->blk;
	const struct walk_ent *le = NULL;
	char path[WIRE_PATH_MAX + 1];
	int len, c, r;

	if (!b->active)
		return fail(s, -AR_EPROTO, "primary sent an entry outside a "
		    "directory");
	/* Entries must come strictly sorted: the merge relies on it. */
	if (b->have_last) {
		size_t m = b->last_len < e->name_len ? b->last_len :
		    e->name_len;

		c = memcmp(b->last, e->name, m);
		if (c > 0 || (c == 0 && b->last_len >= e->name_len))
			return fail(s, -AR_EPROTO, "primary's listing of '%s' "
			    "is not sorted", esc(b->path, b->path_len));
	}
	memcpy(b->last, e->name, e->name_len + 1u);
	b->last_len = e->name_len;
	b->have_last = 1;
	len = join(path, b->path, b->path_len, e->name, e->name_len);
	if (len < 0)
		return fail(s, -AR_EPROTO, "primary sent a path longer than "
		    "%d bytes", WIRE_PATH_MAX);
	if (strncmp(e->name, FS_TMP_PREFIX, strlen(FS_TMP_PREFIX)) == 0)
		return fail(s, -AR_EPROTO, "primary sent a reserved name "
		    "'%s'", esc(path, (size_t)len));
	s->mf_entries++;
	/* Local names before this one are gone on the primary. */
	r = merge_upto(s, e->name, e->name_len, &le);
	if (r != 0)
		return r;
	/* An excluded name is neither compared nor deleted. */
	if (exclude_match(s->exclude, path, (size_t)len, e->type == 'd'))
		return 0;
	s->st->entries++;
	if (le != NULL && le->type == WALK_OTHER) {
		r = remove_local(s, le);
		if (r != 0)
			return r;
		le = NULL;
	}
	switch (e->type) {
	case WALK_DIR:
		return entry_dir(s, e, le, path, (size_t)len);
	case WALK_LINK:
		return entry_link(s, e, le, path, (size_t)len);
	default:
		return entry_file(s, e, le, path, (size_t)len);
	}
}

/* ---------------------------------------------------------------- */
/* The manifest */

/*
 * An answer stored whole in a state_dir file while its framing is
 * checked frame by frame, so it can be replayed while other requests
 * run on the same connection.
 */
struct stored {
	struct syncer *s;
	struct wire_reader rd;
	int fd;
	wire_frame_cb *check;	/* sees each frame as it arrives */
	void *arg;
	int ended;		/* check saw the last frame */
};

static int
stored_body(void *arg, const void *data, size_t len)
{
	struct stored *st = arg;
	int r;

	r = wire_reader_feed(&st->rd, data, len, st->check, st);
	if (r == -AR_EPROTO && st->s->msg[0] == '\0')
		fail(st->s, r, "primary sent a malformed frame");
	if (r != 0)
		return r;
	if (fs_write_full(st->fd, data, len) != 0)
		return fail(st->s, -AR_ESTATE, "state directory: cannot store "
		    "an answer: %s", strerror(errno));
	return 0;
}

/* GET url into state_dir/file; *fdp is the file, ready to replay. */
static int
fetch_stored(struct syncer *s, const char *url, enum state_scratch file,
    wire_frame_cb *check, void *arg, const char *what, int *fdp)
{
	struct stored st;
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
		r = client_get(s->client, url, stored_body, &st);
		if (r != 0 && s->msg[0] == '\0')
			fail(s, r, "%s", client_errmsg(s->client));
		if (r == 0 && (!st.ended || !wire_reader_idle(&st.rd)))
			r = fail(s, -AR_EPROTO, "primary's %s was truncated",
			    what);
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
mf_check_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct stored *st = arg;
	struct wire_error we;

	if (st->ended)
		return fail(st->s, -AR_EPROTO, "primary sent data after the "
		    "end of its manifest");
	if (type == WIRE_ERROR) {
		if (wire_get_error(p, len, &we) == 0)
			return fail(st->s, -AR_EPROTO, "primary could not list "
			    "its tree: %s", esc(we.msg, we.msg_len));
		return fail(st->s, -AR_EPROTO, "primary could not list its "
		    "tree");
	}
	if (type != WIRE_DIR && type != WIRE_ENTRY && type != WIRE_END)
		return fail(st->s, -AR_EPROTO, "unexpected frame (type "
		    "0x%02x) in the manifest", type);
	st->ended = type == WIRE_END;
	return 0;
}

/* Download the manifest of path ("" = all) into state_dir. */
static int
manifest_fetch(struct syncer *s, const char *path, int *fdp)
{
	char url[64 + 3 * WIRE_PATH_MAX];

	if (client_url(s->client, "/v1/manifest", "path", path, url,
	    sizeof(url)) != 0)
		return -AR_ENOMEM;
	return fetch_stored(s, url, STATE_SCRATCH_MANIFEST, mf_check_frame, NULL,
	    "manifest", fdp);
}

static int
mf_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	char path[WIRE_PATH_MAX + 1];
	size_t plen;
	uint64_t count;
	int r;

	switch (type) {
	case WIRE_DIR:
		r = block_finish(s);
		if (r != 0)
			return r;
		if (wire_get_dir(p, len, path, &plen) != 0)
			return fail(s, -AR_EPROTO, "primary sent an invalid "
			    "directory path");
		return block_start(s, path, plen);
	case WIRE_ENTRY:
		if (wire_get_entry(p, len, WIRE_ENTRY, &s->ent) != 0)
			return fail(s, -AR_EPROTO, "primary sent an invalid "
			    "entry%s%s", s->blk.active ? " in " : "",
			    s->blk.active ? esc(s->blk.path,
			    s->blk.path_len) : "");
		return entry(s, &s->ent);
	case WIRE_END:
		if (wire_get_end(p, len, &count) != 0 ||
		    count != s->mf_entries)
			return fail(s, -AR_EPROTO, "primary's manifest count "
			    "does not match its entries");
		return block_finish(s);
	default:
		return fail(s, -AR_EPROTO, "unexpected manifest frame");
	}
}

/* Read the stored manifest and hand each frame to cb. */
static int
manifest_replay(struct syncer *s, int fd, wire_frame_cb *cb)
{
	struct wire_reader rd;
	uint8_t *buf;
	ssize_t n;
	int r;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return -AR_EIO;
	buf = malloc(READ_CHUNK);
	if (buf == NULL)
		return -AR_ENOMEM;
	r = wire_reader_init(&rd, WIRE_MAX_FRAME);
	while (r == 0) {
		n = fs_read_full(fd, buf, READ_CHUNK);
		if (n < 0) {
			r = fail(s, -AR_ESTATE, "state directory: cannot read "
			    "the manifest: %s", strerror(errno));
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

/* The final pass: directory modes, owners and mtimes, once their
 * contents are final. */
static int
dirattr_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	struct block *b = &s->blk;
	struct stat st;
	char path[WIRE_PATH_MAX + 1];
	size_t plen;
	int r;

	if (type == WIRE_DIR) {
		if (b->dirfd >= 0)
			close(b->dirfd);
		b->dirfd = -1;
		if (wire_get_dir(p, len, b->path, &b->path_len) != 0)
			return -AR_EPROTO;
		r = fs_open_beneath(s->rootfd, b->path, O_RDONLY | O_DIRECTORY,
		    0, &b->dirfd);
		if (r != 0)
			b->dirfd = -1;
		return 0;
	}
	if (type != WIRE_ENTRY || b->dirfd < 0)
		return 0;
	if (wire_get_entry(p, len, WIRE_ENTRY, &s->ent) != 0)
		return -AR_EPROTO;
	if (s->ent.type != WALK_DIR)
		return 0;
	if (fstatat(b->dirfd, s->ent.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISDIR(st.st_mode))
		return 0;
	if (same_mtime(&st, &s->ent) && !attrs_differ(s, &st, &s->ent))
		return 0;
	if (set_attrs_at(s, b->dirfd, s->ent.name, &s->ent, 1) != 0) {
		r = join(path, b->path, b->path_len, s->ent.name,
		    s->ent.name_len);
		plen = r < 0 ? 0 : (size_t)r;
		return fail(s, -AR_EIO, "'%s': cannot set attributes: %s",
		    esc(path, plen), strerror(errno));
	}
	s->changed = 1;
	return 0;
}

/* ---------------------------------------------------------------- */
/* The run */

static int
hello(struct syncer *s)
{
	struct wire_hello h;
	int r;

	r = client_hello(s->client, &h);
	if (r != 0)
		return fail(s, r, "%s", client_errmsg(s->client));
	if (h.version != WIRE_VERSION)
		return fail(s, -AR_EVERSION, "primary %s speaks protocol "
		    "version %u; this asyncrep speaks %d",
		    s->cfg->primary.text, h.version, WIRE_VERSION);
	/* A rescue may ask again to confirm what it closed. */
	if (h.role != WIRE_ROLE_RESCUE &&
	    state_gen_closed(&s->state, h.generation))
		return fail(s, -AR_EFENCED, "primary %s serves generation %s, "
		    "which a rescue closed: refusing a resurrected primary "
		    "(re-initialise it with asyncrep watch --reinit)",
		    s->cfg->primary.text, h.generation);
	memcpy(s->st->generation, h.generation, WIRE_GEN_LEN + 1);
	memcpy(s->hello_gen, h.generation, WIRE_GEN_LEN + 1);
	s->hello_seq = h.seq;
	s->hello_role = h.role;
	log_verbose("primary %s: %s, generation %s, role %s",
	    s->cfg->primary.text, esc(h.server, strlen(h.server)),
	    h.generation, h.role == WIRE_ROLE_RESCUE ? "rescue" : "primary");
	if (s->o->dry_run)
		return 0;
	return state_gen_follow(&s->state, h.generation, s->msg, s->msglen);
}

static int
open_state(struct syncer *s)
{
	const struct config_standby *cfg = s->cfg;

	if (s->o->dry_run && access(cfg->data_dir, F_OK) != 0 &&
	    errno == ENOENT) {
		s->rootfd = -1;	/* a dry run creates nothing */
	} else if (fs_mkdir_p(cfg->data_dir, 0755) != 0 ||
	    fs_open_dir(cfg->data_dir, &s->rootfd) != 0)
		return fail(s, -AR_EIO, "data directory '%s': %s",
		    cfg->data_dir, strerror(errno));
	return state_open(&s->state, cfg->state_dir, s->msg, s->msglen);
}

/* Fetch again, whole, the files that changed while they were sent. */
static int
flush_all(struct syncer *s)
{
	size_t i;
	int r;

	r = batch_flush(s);
	if (r == 0 && s->nretry > 0) {
		s->retrying = 1;
		for (i = 0; r == 0 && i < s->nretry; i++)
			r = batch_add(s, s->retry[i], strlen(s->retry[i]), 0,
			    1);
		if (r == 0)
			r = batch_flush(s);
		s->retrying = 0;
	}
	for (i = 0; i < s->nretry; i++)
		free(s->retry[i]);
	s->nretry = 0;
	return r;
}

/* Compare the subtree at path ("" = all) with the primary's and make
 * them equal. Not yet durable: the caller syncs. */
static int
full_compare(struct syncer *s, const char *path)
{
	int mfd = -1, r;

	s->mf_entries = 0;
	r = manifest_fetch(s, path, &mfd);
	if (r == -AR_EPROTO && path[0] != '\0' &&
	    client_status(s->client) == 404) {
		/* Gone since the batch was made: its K frame or a later
		 * batch tells what became of it. */
		s->msg[0] = '\0';
		return 0;
	}
	if (r != 0)
		return r;
	r = manifest_replay(s, mfd, mf_frame);
	if (r == 0)
		r = block_finish(s);
	if (r == 0)
		r = flush_all(s);
	if (r == 0 && !s->o->dry_run) {
		s->blk.dirfd = -1;
		r = manifest_replay(s, mfd, dirattr_frame);
		if (s->blk.dirfd >= 0)
			close(s->blk.dirfd);
		s->blk.dirfd = -1;
	}
	close(mfd);
	return r;
}

/* Deletions, links and attributes: durable before we say so. */
static int
make_durable(struct syncer *s)
{
	if (s->changed && s->rootfd >= 0 && syncfs(s->rootfd) != 0)
		return fail(s, -AR_EIO, "syncfs: %s", strerror(errno));
	s->changed = 0;
	return 0;
}

static int
run(struct syncer *s)
{
	int r;

	r = open_state(s);
	if (r == 0)
		r = client_new(s->cfg, s->o->auth, &s->client);
	if (r == 0)
		r = hello(s);
	if (r == 0)
		r = full_compare(s, "");
	if (r == 0)
		r = make_durable(s);
	/* A later --follow starts from here instead of comparing again. */
	if (r == 0 && !s->o->dry_run && s->st->files_failed == 0)
		r = state_position_save(&s->state, s->hello_gen,
		    s->hello_seq, s->msg, s->msglen);
	if (r == 0 && s->st->files_failed > 0)
		r = fail(s, -AR_EPARTIAL, "%llu files were not replicated",
		    (unsigned long long)s->st->files_failed);
	return r;
}

/* ---------------------------------------------------------------- */
/* Life cycle */

static int
syncer_init(struct syncer *s, const struct sync_opts *o,
    struct sync_stats *st, char *msg, size_t msglen)
{
	int r;

	memset(s, 0, sizeof(*s));
	memset(st, 0, sizeof(*st));
	s->o = o;
	s->cfg = o->cfg;
	s->st = st;
	s->rootfd = -1;
	state_init(&s->state);
	s->blk.dirfd = -1;
	s->is_root = geteuid() == 0;
	s->msg = msg;
	s->msglen = msglen;
	msg[0] = '\0';
	walk_dir_init(&s->blk.local);
	state_standby_id(s->cfg, s->id, sizeof(s->id));
	r = exclude_new(&s->exclude);
	if (r == 0 && s->cfg->exclude != NULL &&
	    exclude_add_list(s->exclude, s->cfg->exclude, msg, msglen) != 0)
		r = -AR_ECONFIG;
	return r;
}

static void
syncer_release(struct syncer *s)
{
	size_t i;

	if (s->client != NULL)
		client_traffic(s->client, &s->st->net_sent,
		    &s->st->net_received);
	batch_clear(s);
	free(s->batch.items);
	if (s->blk.dirfd >= 0)
		close(s->blk.dirfd);
	walk_dir_release(&s->blk.local);
	for (i = 0; i < s->nretry; i++)
		free(s->retry[i]);
	free(s->retry);
	for (i = 0; i < s->nrescan; i++)
		free(s->rescan[i]);
	free(s->rescan);
	exclude_free(s->exclude);
	client_free(s->client);
	state_release(&s->state);
	if (s->rootfd >= 0)
		close(s->rootfd);
}

/* ---------------------------------------------------------------- */
/* Following: batches of changes, applied and acknowledged */

/* How long the primary may hold a long-poll. */
#define FOLLOW_WAIT_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

static int
rescan_add(struct syncer *s, const char *path, size_t len)
{
	char **n;
	size_t i;

	if (len == 0) {
		s->full = 1;
		return 0;
	}
	for (i = 0; i < s->nrescan; i++) {
		if (strlen(s->rescan[i]) == len &&
		    memcmp(s->rescan[i], path, len) == 0)
			return 0;
	}
	if (s->nrescan == s->rescan_cap) {
		size_t ncap = s->rescan_cap ? s->rescan_cap * 2 : 16;

		n = reallocarray(s->rescan, ncap, sizeof(*n));
		if (n == NULL)
			return -AR_ENOMEM;
		s->rescan = n;
		s->rescan_cap = ncap;
	}
	s->rescan[s->nrescan] = strndup(path, len);
	if (s->rescan[s->nrescan] == NULL)
		return -AR_ENOMEM;
	s->nrescan++;
	return 0;
}

/* The parent of path, as a length ("" = 0). */
static size_t
parent_len(const char *path, size_t len)
{
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len > 0 ? len - 1 : 0;
}

/*
 * Make s->blk the parent directory of path, without a listing, so the
 * entry_* functions can work on one name. Returns 1 when the parent is
 * missing here (its subtree is then queued for a compare).
 */
static int
pseudo_block(struct syncer *s, const char *path, size_t len,
    const char **base, int rescan_missing)
{
	struct block *b = &s->blk;
	size_t plen = parent_len(path, len);
	int dirfd, r;

	r = fs_open_parent(s->rootfd, path, &dirfd, base);
	if (r != 0) {
		if (r == -AR_EPROTO || errno == ENOENT || errno == ENOTDIR) {
			if (rescan_missing && rescan_add(s, path, plen) != 0)
				return -AR_ENOMEM;
			return 1;
		}
		return fail(s, -AR_EIO, "'%s': cannot open its directory: %s",
		    esc(path, len), strerror(errno));
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

/* U: make one path match the primary's current state. */
static int
apply_state(struct syncer *s, const struct wire_entry *e)
{
	struct walk_ent le, *lep = NULL;
	const char *base;
	int r;

	if (exclude_match(s->exclude, e->name, e->name_len, e->type == 'd'))
		return 0;
	r = pseudo_block(s, e->name, e->name_len, &base, 1);
	if (r != 0)
		return r < 0 ? r : 0;
	memset(&le, 0, sizeof(le));
	if (fstatat(s->blk.dirfd, base, &le.st, AT_SYMLINK_NOFOLLOW) == 0) {
		le.name = base;
		le.namelen = strlen(base);
		le.type = S_ISREG(le.st.st_mode) ? WALK_FILE :
		    S_ISDIR(le.st.st_mode) ? WALK_DIR :
		    S_ISLNK(le.st.st_mode) ? WALK_LINK : WALK_OTHER;
		lep = &le;
	}
	s->uent = *e;
	s->uent.name_len = (uint16_t)strlen(base);
	memmove(s->uent.name, base, s->uent.name_len + 1u);
	if (lep != NULL && lep->type == WALK_OTHER) {
		r = remove_local(s, lep);
		lep = NULL;
	}
	if (r == 0) {
		s->st->entries++;
		switch (e->type) {
		case WALK_DIR:
			r = entry_dir(s, &s->uent, lep, e->name, e->name_len);
			break;
		case WALK_LINK:
			r = entry_link(s, &s->uent, lep, e->name,
			    e->name_len);
			break;
		default:
			r = entry_file(s, &s->uent, lep, e->name,
			    e->name_len);
			break;
		}
	}
	if (r == 0)
		r = block_finish(s);
	else
		block_finish(s);
	return r;
}

/* K: the path is gone on the primary. */
static int
apply_delete(struct syncer *s, const char *path, size_t len)
{
	struct walk_ent le;
	const char *base;
	int r;

	if (exclude_match(s->exclude, path, len, 0))
		return 0;
	r = pseudo_block(s, path, len, &base, 0);
	if (r != 0)
		return r < 0 ? r : 0;	/* no parent here: nothing to delete */
	memset(&le, 0, sizeof(le));
	if (fstatat(s->blk.dirfd, base, &le.st, AT_SYMLINK_NOFOLLOW) == 0) {
		le.name = base;
		le.namelen = strlen(base);
		le.type = S_ISDIR(le.st.st_mode) ? WALK_DIR : WALK_FILE;
		r = remove_local(s, &le);
	}
	if (r == 0)
		r = block_finish(s);
	else
		block_finish(s);
	return r;
}

/* M: rename our copy, so its data need not travel again. */
static int
apply_move(struct syncer *s, const struct wire_pathop *op)
{
	const char *fbase, *tbase;
	int fdir = -1, tdir = -1, r;

	if (exclude_match(s->exclude, op->path, op->path_len, 0) ||
	    exclude_match(s->exclude, op->path2, op->path2_len, 0))
		return rescan_add(s, op->path2, parent_len(op->path2,
		    op->path2_len));
	if (s->o->itemize != NULL) {
		char a[LOG_ESC_MAX];

		fprintf(s->o->itemize, "*moving     %s => %s\n",
		    log_escape(op->path, op->path_len, a, sizeof(a)),
		    esc(op->path2, op->path2_len));
	}
	if (s->o->dry_run)
		return 0;
	/* Whatever fails below, a compare of the target puts it right. */
	if (fs_open_parent(s->rootfd, op->path, &fdir, &fbase) != 0 ||
	    fs_open_parent(s->rootfd, op->path2, &tdir, &tbase) != 0) {
		r = rescan_add(s, op->path2, parent_len(op->path2,
		    op->path2_len));
		goto out;
	}
	r = renameat(fdir, fbase, tdir, tbase);
	if (r != 0 && (errno == ENOTEMPTY || errno == EEXIST ||
	    errno == EISDIR || errno == ENOTDIR)) {
		/* The primary's rename replaced it: so do we. */
		if (fs_remove_tree(tdir, tbase) == 0)
			r = renameat(fdir, fbase, tdir, tbase);
	}
	if (r != 0) {
		r = rescan_add(s, op->path2, op->path2_len);
		goto out;
	}
	s->changed = 1;
	if (fs_fsync_dir(fdir) != 0 || fs_fsync_dir(tdir) != 0)
		r = fail(s, -AR_EIO, "fsync after a rename: %s",
		    strerror(errno));
out:
	if (fdir >= 0)
		close(fdir);
	if (tdir >= 0)
		close(tdir);
	return r;
}

struct batch_ctx {
	int gone;		/* G: our position is unknown there */
	int complete;		/* C: a rescue ends the generation here */
	int ended;
	uint64_t upto;
};

static int
changes_check(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct stored *st = arg;
	struct batch_ctx *bc = st->arg;

	if (st->ended)
		return fail(st->s, -AR_EPROTO, "primary sent data after the "
		    "end of a batch");
	switch (type) {
	case WIRE_MOVE:
	case WIRE_STATE:
	case WIRE_GONE_PATH:
	case WIRE_RESCAN:
		return 0;
	case WIRE_END:
	case WIRE_GONE:
	case WIRE_COMPLETE:
		if (wire_get_end(p, len, &bc->upto) != 0)
			return fail(st->s, -AR_EPROTO, "malformed end of a "
			    "batch");
		st->ended = 1;
		bc->gone = type == WIRE_GONE;
		bc->complete = type == WIRE_COMPLETE;
		return 0;
	default:
		return fail(st->s, -AR_EPROTO, "unexpected frame (type "
		    "0x%02x) in a batch of changes", type);
	}
}

static int
apply_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;

	switch (type) {
	case WIRE_MOVE:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return fail(s, -AR_EPROTO, "malformed rename");
		return apply_move(s, &s->op);
	case WIRE_STATE:
		if (wire_get_entry(p, len, WIRE_STATE, &s->ent) != 0)
			return fail(s, -AR_EPROTO, "malformed state");
		return apply_state(s, &s->ent);
	case WIRE_GONE_PATH:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return fail(s, -AR_EPROTO, "malformed deletion");
		return apply_delete(s, s->op.path, s->op.path_len);
	case WIRE_RESCAN:
		if (wire_get_pathop(p, len, type, &s->op) != 0)
			return fail(s, -AR_EPROTO, "malformed rescan");
		return rescan_add(s, s->op.path, s->op.path_len);
	default:
		return 0;
	}
}

/* After the contents: directory attributes of the U frames. */
static int
apply_dirattr(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct syncer *s = arg;
	const char *base;
	struct stat st;
	int dirfd, r = 0;

	if (type != WIRE_STATE || wire_get_entry(p, len, WIRE_STATE,
	    &s->ent) != 0 || s->ent.type != WALK_DIR ||
	    exclude_match(s->exclude, s->ent.name, s->ent.name_len, 1))
		return 0;
	if (fs_open_parent(s->rootfd, s->ent.name, &dirfd, &base) != 0)
		return 0;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode) && (!same_mtime(&st, &s->ent) ||
	    attrs_differ(s, &st, &s->ent))) {
		r = set_attrs_at(s, dirfd, base, &s->ent, 1);
		if (r != 0)
			r = fail(s, r, "'%s': cannot set attributes: %s",
			    esc(s->ent.name, s->ent.name_len),
			    strerror(errno));
		s->changed = 1;
	}
	close(dirfd);
	return r;
}

/* Compare everything, then stand at the position hello reported. */
static int
follow_full(struct syncer *s)
{
	int r;

	r = hello(s);
	if (r != 0)
		return r;
	log_info("comparing the whole tree with generation %s",
	    s->hello_gen);
	r = full_compare(s, "");
	if (r == 0)
		r = make_durable(s);
	if (r == 0)
		r = state_position_save(&s->state, s->hello_gen,
		    s->hello_seq, s->msg, s->msglen);
	return r;
}

/* Fetch one batch after pos and apply it; *pos moves past it. */
static int
follow_batch(struct syncer *s, uint64_t *pos)
{
	struct batch_ctx bc;
	char url[256];
	size_t i;
	int r, fd = -1;

	memset(&bc, 0, sizeof(bc));
	s->hold = 0;
	snprintf(url, sizeof(url), "/v1/changes?since=%llu&wait=%d&id=%s"
	    "&gen=%s", (unsigned long long)*pos, FOLLOW_WAIT_MS, s->id,
	    s->hello_gen);
	r = fetch_stored(s, url, STATE_SCRATCH_CHANGES, changes_check, &bc,
	    "batch", &fd);
	if (r != 0)
		return r;
	if (bc.gone) {
		log_info("the primary does not hold our position %llu any "
		    "more", (unsigned long long)*pos);
		r = follow_full(s);
		if (r == 0)
			*pos = s->hello_seq;
		close(fd);
		return r;
	}
	if (r == 0 && bc.complete && bc.upto == *pos) {
		/* The rescue saw that we hold its final position. */
		close(fd);
		r = state_gen_close(&s->state, s->hello_gen, s->msg,
		    s->msglen);
		if (r == 0)
			log_info("the replica is complete: a rescue closed "
			    "generation %s at change %llu", s->hello_gen,
			    (unsigned long long)*pos);
		return r == 0 ? 1 : r;
	}
	if (r == 0 && bc.upto == *pos) {
		close(fd);
		return 0;	/* the long-poll ended with nothing */
	}
	if (r == 0 && bc.upto < *pos)
		r = fail(s, -AR_EPROTO, "primary moved our position back");
	s->full = 0;
	if (r == 0)
		r = manifest_replay(s, fd, apply_frame);
	if (r == 0)
		r = flush_all(s);
	if (r == 0 && s->full)
		r = full_compare(s, "");
	for (i = 0; r == 0 && !s->full && i < s->nrescan; i++)
		r = full_compare(s, s->rescan[i]);
	if (r == 0 && !s->o->dry_run)
		r = manifest_replay(s, fd, apply_dirattr);
	for (i = 0; i < s->nrescan; i++)
		free(s->rescan[i]);
	s->nrescan = 0;
	close(fd);
	if (r == 0)
		r = make_durable(s);
	if (r == 0 && s->hold) {
		s->hold = 0;
		log_verbose("a file moved while it was sent: asking again "
		    "from change %llu", (unsigned long long)*pos);
		return 0;
	}
	if (r == 0)
		r = state_position_save(&s->state, s->hello_gen, bc.upto,
		    s->msg, s->msglen);
	if (r == 0) {
		log_verbose("applied changes %llu..%llu",
		    (unsigned long long)*pos + 1,
		    (unsigned long long)bc.upto);
		*pos = bc.upto;
	}
	if (s->o->itemize != NULL)
		fflush(s->o->itemize);
	return r;
}

static int
follow_session(struct syncer *s, volatile sig_atomic_t *stop)
{
	uint64_t pos;
	int r;

	r = hello(s);
	if (r != 0)
		return r;
	/* A rescue's last position is one past its journal: the compare
	 * that closes the generation. */
	if (state_position_load(&s->state, s->hello_gen, &pos) != 0 ||
	    pos > s->hello_seq + (s->hello_role == WIRE_ROLE_RESCUE)) {
		r = follow_full(s);
		if (r != 0)
			return r;
		pos = s->hello_seq;
	}
	log_info("following %s from change %llu", s->cfg->primary.text,
	    (unsigned long long)pos);
	while (!*stop) {
		s->msg[0] = '\0';
		r = follow_batch(s, &pos);
		if (r != 0)
			return r;	/* 1: complete */
		s->progress = 1;
		if (s->st->files_failed > 0) {
			/* Changed while sent: the primary's next record of
			 * them comes in a later batch. */
			s->st->files_failed = 0;
		}
	}
	return 0;
}

static void
sleep_ms(unsigned ms, volatile sig_atomic_t *stop)
{
	struct timespec ts;

	while (ms > 0 && !*stop) {
		unsigned step = ms < 50 ? ms : 50;

		ts.tv_sec = 0;
		ts.tv_nsec = (long)step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

int
sync_follow(const struct sync_opts *o, struct sync_stats *st,
    volatile sig_atomic_t *stop, char *msg, size_t msglen)
{
	struct syncer s;
	unsigned backoff = BACKOFF_MIN_MS, jitter;
	int r, logged = 0;

	r = syncer_init(&s, o, st, msg, msglen);
	if (r == 0)
		r = open_state(&s);
	if (r == 0)
		r = client_new(s.cfg, o->auth, &s.client);
	if (r != 0) {
		syncer_release(&s);
		return r;
	}
	client_set_abort(s.client, stop);
	s.following = 1;
	while (!*stop) {
		msg[0] = '\0';
		r = follow_session(&s, stop);
		if (r == 1) {
			r = 0;	/* the generation is complete: done */
			break;
		}
		/* It worked for a while: the next outage starts afresh. */
		if (s.progress) {
			backoff = BACKOFF_MIN_MS;
			logged = 0;
			s.progress = 0;
		}
		if (*stop)
			break;
		if (r == -AR_EAUTH || r == -AR_EVERSION || r == -AR_EFENCED ||
		    r == -AR_ESTATE || r == -AR_ENOMEM || r == -AR_EINTERNAL)
			break;
		/* Transient: the primary restarts, the network drops. */
		if (!logged || log_get_level() >= LOG_LVL_VERBOSE)
			log_warn("%s; retrying", msg[0] ? msg :
			    ar_strerror(r));
		logged = 1;
		if (getrandom(&jitter, sizeof(jitter), 0) !=
		    (ssize_t)sizeof(jitter))
			jitter = 0;
		sleep_ms(backoff / 2 + jitter % (backoff / 2 + 1), stop);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    backoff * 2;
	}
	if (*stop)
		r = 0;
	syncer_release(&s);
	return r;
}

int
sync_run(const struct sync_opts *o, struct sync_stats *st, char *msg,
    size_t msglen)
{
	struct syncer s;
	int r;

	r = syncer_init(&s, o, st, msg, msglen);
	if (r == 0)
		r = run(&s);
	if (r != 0 && msg[0] == '\0')
		snprintf(msg, msglen, "%s", ar_strerror(r));
	syncer_release(&s);
	return r;
}
