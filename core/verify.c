/*
 * verify.c: asyncrep verify and the content compare of sync --checksum
 * (verify.h). The primary's listing is walked against the local tree one
 * directory at a time; every regular file on both sides is then hashed
 * on both sides, in requests of up to VERIFY_BATCH files.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fs.h"
#include "hash.h"
#include "log.h"
#include "progress.h"
#include "util.h"
#include "verify.h"
#include "walk.h"
#include "wire.h"

/* Files per request, and bytes of a request body (the server's limits). */
#define VERIFY_BATCH 1024
#define VERIFY_BODY_MAX (1u << 20)
/* How long a file that differed is left before it is checked again: a
 * file being written shows a new size or mtime by then. */
#define VERIFY_RECHECK_NS (200u * 1000 * 1000)
/* Files compared by content at a time while the listing is walked: the
 * memory verify holds is this and one directory's listing. */
#define VERIFY_FLUSH 4096
/* Bytes of the stored listing read at a time. */
#define VERIFY_READ_CHUNK (256u * 1024)
/* Bytes read from a local file at a time. */
#define VERIFY_CHUNK (256u * 1024)

/* A bound on bytes read per second, as a schedule: bytes read so far
 * are due no earlier than start + bytes / rate. */
struct verify_rate {
	uint64_t rate;		/* bytes a second, 0: none */
	uint64_t start_ns;
	uint64_t bytes;
};

static void
verify_rate_take(struct verify_rate *rt, uint64_t n)
{
	struct timespec ts;
	uint64_t now, due;

	if (rt->rate == 0)
		return;
	now = util_mono_ns();
	if (rt->start_ns == 0)
		rt->start_ns = now;
	rt->bytes += n;
	due = rt->start_ns + (uint64_t)((double)rt->bytes * 1e9 /
	    (double)rt->rate);
	if (due <= now)
		return;
	ts.tv_sec = (time_t)((due - now) / 1000000000u);
	ts.tv_nsec = (long)((due - now) % 1000000000u);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int verify_fail(char *msg, size_t msglen, int err, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
verify_fail(char *msg, size_t msglen, int err, const char *fmt, ...)
{
	va_list ap;

	if (msg[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static const char *
verify_esc(const char *p, size_t len)
{
	static char bufs[2][LOG_ESC_MAX];
	static int i;

	i ^= 1;
	return log_escape(p, len, bufs[i], sizeof(bufs[i]));
}

/* ---------------------------------------------------------------- */
/* The list */

void
verify_list_init(struct verify_list *l)
{
	memset(l, 0, sizeof(*l));
}

void
verify_list_release(struct verify_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i].path);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

int
verify_list_add(struct verify_list *l, const char *path, size_t len,
    uint64_t size, int64_t mtime_sec, uint32_t mtime_nsec)
{
	struct verify_item *it, *ni;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap == 0 ? 256 : l->cap * 2;
		ni = realloc(l->items, cap * sizeof(*ni));
		if (ni == NULL)
			return -AR_ENOMEM;
		l->items = ni;
		l->cap = cap;
	}
	it = &l->items[l->n];
	memset(it, 0, sizeof(*it));
	it->path = malloc(len + 1);
	if (it->path == NULL)
		return -AR_ENOMEM;
	memcpy(it->path, path, len);
	it->path[len] = '\0';
	it->size = size;
	it->mtime_sec = mtime_sec;
	it->mtime_nsec = mtime_nsec;
	l->n++;
	return 0;
}

/* ---------------------------------------------------------------- */
/* The content compare */

/* What one request's answer is being read into. */
struct verify_answer {
	struct verify_list *l;
	size_t *idx;		/* the items asked for, in order */
	size_t n, cur;
	int sums;		/* /v1/sums: no D frames */
	int pass;		/* 1, or 2 for the files checked again */
	int in_file;		/* between F and T */
	int ended;		/* Z seen */
	struct hash_ctx hash;	/* of the D frames (/v1/files) */
	uint64_t got;
	int rootfd;
	struct verify_rate *local;
	struct wire_reader rd;
	struct wire_entry ent;
	char *msg;
	size_t msglen;
};

/*
 * The local copy of path: *same when its bytes hash to phash, *stable
 * when it did not change while read (size, mtime, inode), and its stat
 * in *st. A local copy that is missing or unreadable is not the same.
 */
static void
verify_local(struct verify_answer *a, const char *path, uint64_t psize,
    const uint8_t *phash, int *same, int *stable)
{
	uint8_t buf[VERIFY_CHUNK], hash[HASH_LEN];
	struct hash_ctx h;
	struct stat st0, st1;
	uint64_t off = 0;
	ssize_t n;
	int fd;

	*same = 0;
	*stable = 1;
	if (fs_open_beneath(a->rootfd, path, O_RDONLY, 0, &fd) != 0)
		return;
	if (fstat(fd, &st0) != 0 || !S_ISREG(st0.st_mode) ||
	    (uint64_t)st0.st_size != psize || hash_init(&h) != 0) {
		close(fd);
		return;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		n = fs_pread_full(fd, buf, sizeof(buf), off);
		if (n <= 0)
			break;
		hash_update(&h, buf, (size_t)n);
		off += (uint64_t)n;
		verify_rate_take(a->local, (uint64_t)n);
	}
	hash_final(&h, hash);
	if (n < 0 || fstat(fd, &st1) != 0) {
		close(fd);
		return;
	}
	close(fd);
	*stable = st0.st_ino == st1.st_ino && st0.st_size == st1.st_size &&
	    st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
	    st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec && off == psize;
	*same = *stable && memcmp(hash, phash, HASH_LEN) == 0;
}

/*
 * The verdict on the current item, whose primary copy hashes to phash
 * (NULL: the primary said it changed while it was read). A difference
 * is checked again (pass 2); it is damage only when nothing moved, on
 * either side, from the listing through both looks; else the file is
 * changing.
 */
static void
verify_judge(struct verify_answer *a, struct verify_item *it,
    const uint8_t *phash)
{
	int same = 0, stable = 1, moved;

	if (phash != NULL)
		verify_local(a, it->path, it->fsize, phash, &same, &stable);
	if (same) {
		it->verdict = VERIFY_SAME;
		return;
	}
	moved = phash == NULL || !stable || it->fsize != it->size ||
	    it->fmtime_sec != it->mtime_sec ||
	    it->fmtime_nsec != it->mtime_nsec;
	if (a->pass == 1) {
		it->moved = moved;
		it->size1 = it->fsize;
		it->mtime1_sec = it->fmtime_sec;
		it->mtime1_nsec = it->fmtime_nsec;
		it->verdict = VERIFY_RECHECK;
		return;
	}
	moved = moved || it->moved || it->size1 != it->fsize ||
	    it->mtime1_sec != it->fmtime_sec ||
	    it->mtime1_nsec != it->fmtime_nsec;
	it->verdict = moved ? VERIFY_CHANGING : VERIFY_DIFFERS;
}

static int
verify_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct verify_answer *a = arg;
	struct verify_item *it;
	struct wire_trailer t;
	struct wire_retry rt;
	struct wire_error e;
	uint8_t hash[HASH_LEN];

	if (a->ended)
		return verify_fail(a->msg, a->msglen, -AR_EPROTO, "primary "
		    "sent data after the end of an answer");
	it = a->cur < a->n ? &a->l->items[a->idx[a->cur]] : NULL;
	switch (type) {
	case WIRE_FILE:
		if (it == NULL || a->in_file || wire_get_entry(p, len,
		    WIRE_FILE, &a->ent) != 0 || strcmp(a->ent.name,
		    it->path) != 0)
			break;
		it->fsize = a->ent.size;
		it->fmtime_sec = a->ent.mtime_sec;
		it->fmtime_nsec = a->ent.mtime_nsec;
		it->seen = 1;
		a->got = 0;
		a->in_file = 1;
		if (!a->sums && hash_init(&a->hash) != 0)
			return -AR_ENOMEM;
		return 0;
	case WIRE_DATA:
		if (it == NULL || a->sums || !a->in_file ||
		    a->got + len > it->fsize)
			break;
		hash_update(&a->hash, p, len);
		a->got += len;
		return 0;
	case WIRE_TRAILER:
		if (it == NULL || !a->in_file ||
		    wire_get_trailer(p, len, &t) != 0 || t.size != it->fsize)
			break;
		a->in_file = 0;
		if (!a->sums) {
			hash_final(&a->hash, hash);
			if (a->got != t.size || memcmp(hash, t.hash,
			    HASH_LEN) != 0)
				return verify_fail(a->msg, a->msglen,
				    -AR_EPROTO, "'%s': the primary's bytes do "
				    "not match its own hash",
				    verify_esc(it->path, strlen(it->path)));
		}
		verify_judge(a, it, t.hash);
		a->cur++;
		return 0;
	case WIRE_RETRY:
		if (it == NULL || wire_get_retry(p, len, &rt) != 0 ||
		    strcmp(rt.path, it->path) != 0)
			break;
		if (a->in_file && !a->sums)
			hash_release(&a->hash);
		a->in_file = 0;
		if (rt.reason == WIRE_RETRY_GONE)
			it->verdict = VERIFY_GONE;
		else if (rt.reason == WIRE_RETRY_UNREADABLE)
			it->verdict = VERIFY_UNREADABLE;
		else
			verify_judge(a, it, NULL);
		a->cur++;
		return 0;
	case WIRE_END:
		if (a->in_file || a->cur != a->n)
			break;
		a->ended = 1;
		return 0;
	case WIRE_ERROR:
		if (wire_get_error(p, len, &e) != 0)
			break;
		return verify_fail(a->msg, a->msglen, -AR_EPROTO, "primary "
		    "failed: %s", verify_esc(e.msg, e.msg_len));
	default:
		break;
	}
	return verify_fail(a->msg, a->msglen, -AR_EPROTO, "primary sent an "
	    "unexpected or malformed frame (type 0x%02x) in answer to a "
	    "content compare", type);
}

static int
verify_body(void *arg, const void *data, size_t len)
{
	struct verify_answer *a = arg;

	return wire_reader_feed(&a->rd, data, len, verify_frame, a);
}

/* One request for the items idx[0..n) and its answer. */
static int
verify_request(struct client *c, struct verify_answer *a,
    const uint8_t *body, size_t blen)
{
	int r;

	a->cur = 0;
	a->ended = 0;
	a->in_file = 0;
	r = wire_reader_init(&a->rd, WIRE_HDR + WIRE_DATA_CHUNK);
	if (r != 0)
		return r;
	r = client_post_buf(c, a->sums ? "/v1/sums" : "/v1/files", body, blen,
	    verify_body, a);
	if (a->in_file && !a->sums)
		hash_release(&a->hash);
	wire_reader_release(&a->rd);
	if (r != 0)
		return verify_fail(a->msg, a->msglen, r, "%s",
		    client_errmsg(c));
	if (!a->ended)
		return verify_fail(a->msg, a->msglen, -AR_EPROTO, "the "
		    "primary's answer to a content compare ended early");
	return 0;
}

int
verify_sums(struct client *c, int rootfd, struct verify_list *l,
    uint64_t rate, char *msg, size_t msglen)
{
	struct verify_rate local = { rate, 0, 0 }, remote = { rate, 0, 0 };
	struct verify_answer a;
	enum verify_verdict want;
	uint8_t *body;
	uint64_t bytes;
	size_t i, blen;
	int r = 0, n;

	body = malloc(VERIFY_BODY_MAX);
	memset(&a, 0, sizeof(a));
	a.idx = calloc(VERIFY_BATCH, sizeof(*a.idx));
	if (body == NULL || a.idx == NULL) {
		free(body);
		free(a.idx);
		return -AR_ENOMEM;
	}
	a.l = l;
	a.rootfd = rootfd;
	a.local = &local;
	a.msg = msg;
	a.msglen = msglen;
	a.sums = client_version(c) >= WIRE_V_OPS;
	for (a.pass = 1; r == 0 && a.pass <= 2; a.pass++) {
		want = a.pass == 1 ? VERIFY_PENDING : VERIFY_RECHECK;
		for (i = 0; a.pass == 2 && i < l->n; i++) {
			if (l->items[i].verdict == VERIFY_RECHECK) {
				nanosleep(&(struct timespec){ 0,
				    VERIFY_RECHECK_NS }, NULL);
				break;
			}
		}
		i = 0;
		while (r == 0 && i < l->n) {
			a.n = 0;
			blen = 0;
			bytes = 0;
			for (; i < l->n && a.n < VERIFY_BATCH; i++) {
				if (l->items[i].verdict != want)
					continue;
				/* With a rate, a request holds about a
				 * second's worth (one file at least). */
				if (rate != 0 && a.n > 0 &&
				    bytes + l->items[i].size > rate)
					break;
				n = wire_put_req(body + blen,
				    VERIFY_BODY_MAX - blen, l->items[i].path,
				    strlen(l->items[i].path), 0);
				if (n == -AR_ENOMEM && a.n > 0)
					break;
				if (n < 0) {
					r = n;
					break;
				}
				blen += (size_t)n;
				bytes += l->items[i].size;
				a.idx[a.n++] = i;
			}
			if (r == 0 && a.n > 0)
				r = verify_request(c, &a, body, blen);
			/* The primary read them: pace its reads too. */
			if (r == 0)
				verify_rate_take(&remote, bytes);
		}
	}
	free(body);
	free(a.idx);
	return r;
}

/* ---------------------------------------------------------------- */
/* asyncrep verify */

struct verify_run_ctx {
	const struct verify_opts *o;
	struct verify_stats *st;
	struct client *c;
	struct verify_list list;	/* at most VERIFY_FLUSH files */
	struct exclude *exclude;
	int rootfd;
	/* the directory block being compared */
	char dir[WIRE_PATH_MAX + 1];
	size_t dir_len;
	int dirfd;		/* -1: missing here */
	int in_block;
	struct walk_dir local;
	unsigned char *matched;	/* per local entry */
	struct wire_reader rd;
	int ended;
	struct wire_entry ent;
	char *msg;
	size_t msglen;
	struct progress prog;	/* --progress */
	uint64_t hashed;	/* bytes of the files compared so far */
};

static void
verify_line(struct verify_run_ctx *v, const char *code, const char *path,
    size_t len, const char *suffix)
{
	fprintf(v->o->out, "%s %s%s\n", code, verify_esc(path, len), suffix);
}

static int
verify_join(char *out, const char *dir, size_t dlen, const char *name,
    size_t nlen, size_t *olen)
{
	size_t len = dlen + (dlen > 0) + nlen;

	if (len > WIRE_PATH_MAX)
		return -AR_EPROTO;
	memcpy(out, dir, dlen);
	if (dlen > 0)
		out[dlen] = '/';
	memcpy(out + dlen + (dlen > 0), name, nlen);
	out[len] = '\0';
	*olen = len;
	return 0;
}

/* A local name this standby excludes (its own): never compared. */
static int
verify_is_own(const struct verify_run_ctx *v, const char *path, size_t len,
    int type)
{
	return exclude_match(v->exclude, path, len, type == WALK_DIR);
}

/* The end of a block: what is only here differs. */
static int
verify_block_end(struct verify_run_ctx *v)
{
	char path[WIRE_PATH_MAX + 1];
	const struct walk_ent *le;
	size_t i, len;

	if (!v->in_block)
		return 0;
	for (i = 0; v->dirfd >= 0 && i < v->local.n; i++) {
		le = &v->local.ents[i];
		if (v->matched[i] || verify_join(path, v->dir, v->dir_len,
		    le->name, le->namelen, &len) != 0 ||
		    verify_is_own(v, path, len, le->type))
			continue;
		verify_line(v, "*deleting  ", path, len,
		    le->type == WALK_DIR ? "/" : "");
		v->st->differ++;
	}
	if (v->dirfd >= 0)
		close(v->dirfd);
	v->dirfd = -1;
	free(v->matched);
	v->matched = NULL;
	v->in_block = 0;
	return 0;
}

static int
verify_block_start(struct verify_run_ctx *v, const uint8_t *p, uint32_t len)
{
	int r;

	r = verify_block_end(v);
	if (r == 0 && wire_get_dir(p, len, v->dir, &v->dir_len) != 0)
		r = verify_fail(v->msg, v->msglen, -AR_EPROTO, "primary sent "
		    "a malformed directory frame");
	if (r != 0)
		return r;
	v->in_block = 1;
	v->local.n = 0;
	if (fs_open_beneath(v->rootfd, v->dir, O_RDONLY | O_DIRECTORY, 0,
	    &v->dirfd) != 0) {
		v->dirfd = -1;	/* missing here: its entries are missing */
		return 0;
	}
	r = walk_list(v->dirfd, WALK_SKIP_TMP, &v->local);
	if (r != 0)
		return verify_fail(v->msg, v->msglen, r, "'%s': cannot list: "
		    "%s", verify_esc(v->dir, v->dir_len), strerror(errno));
	v->matched = calloc(v->local.n + 1, 1);
	return v->matched != NULL ? 0 : -AR_ENOMEM;
}

static void verify_report(struct verify_run_ctx *v);

/* The files gathered so far, compared by content and reported. */
static int
verify_flush(struct verify_run_ctx *v)
{
	int r;

	size_t i;

	r = verify_sums(v->c, v->rootfd, &v->list, v->o->rate, v->msg,
	    v->msglen);
	if (r == 0)
		verify_report(v);
	for (i = 0; i < v->list.n; i++)
		v->hashed += v->list.items[i].size;
	progress_received(&v->prog, v->hashed);
	verify_list_release(&v->list);
	return r;
}

/* The dev_t of a device entry's size field (major << 32 | minor). */
static uint64_t
verify_rdev(uint64_t size)
{
	return (uint64_t)makedev((unsigned)(size >> 32),
	    (unsigned)(size & 0xffffffffu));
}

/* One entry of the primary's listing against the local one. */
static int
verify_entry(struct verify_run_ctx *v, const uint8_t *p, uint32_t len)
{
	struct wire_entry *e = &v->ent;
	struct walk_ent *le = NULL;
	char path[WIRE_PATH_MAX + 1], target[WIRE_TARGET_MAX + 1];
	size_t plen;
	ssize_t n;
	int r;

	if (!v->in_block || wire_get_entry(p, len, WIRE_ENTRY, e) != 0 ||
	    verify_join(path, v->dir, v->dir_len, e->name, e->name_len,
	    &plen) != 0)
		return verify_fail(v->msg, v->msglen, -AR_EPROTO, "primary "
		    "sent a malformed entry");
	if (v->dirfd >= 0)
		le = walk_find(&v->local, e->name);
	if (le != NULL)
		v->matched[le - v->local.ents] = 1;
	if (verify_is_own(v, path, plen, le != NULL ? le->type : e->type))
		return 0;
	if (e->type != WALK_FILE && e->type != WALK_HARDLINK)
		progress_entry(&v->prog, 0);
	switch (e->type) {
	case WALK_FILE:
	case WALK_HARDLINK:	/* its content is that of a file: hashed */
		if (le == NULL || le->type != WALK_FILE) {
			verify_line(v, ">f+++++++++", path, plen, "");
			v->st->differ++;
			return 0;
		}
		v->st->files++;
		v->st->bytes += e->size;
		progress_entry(&v->prog, e->size);
		r = verify_list_add(&v->list, path, plen, e->size,
		    e->mtime_sec, e->mtime_nsec);
		if (r == 0 && v->list.n >= VERIFY_FLUSH)
			r = verify_flush(v);
		return r;
	case WALK_DIR:
		if (le == NULL || le->type != WALK_DIR) {
			verify_line(v, "cd+++++++++", path, plen, "/");
			v->st->differ++;
		}
		return 0;
	case WALK_LINK:
		if (le != NULL && le->type == WALK_LINK) {
			n = readlinkat(v->dirfd, e->name, target,
			    sizeof(target));
			if (n == (ssize_t)e->target_len &&
			    memcmp(target, e->target, (size_t)n) == 0)
				return 0;
		}
		verify_line(v, le != NULL && le->type == WALK_LINK ?
		    "cLc........" : "cL+++++++++", path, plen, "");
		v->st->differ++;
		return 0;
	case WALK_FIFO:
	case WALK_SOCK:
	case WALK_CHR:
	case WALK_BLK:
		/* No content: the same kind of inode (and device) is all. */
		if (le != NULL && walk_special_of(le->st.st_mode) == e->type &&
		    ((e->type != WALK_CHR && e->type != WALK_BLK) ||
		    (uint64_t)le->st.st_rdev == verify_rdev(e->size)))
			return 0;
		verify_line(v, e->type == WALK_CHR || e->type == WALK_BLK ?
		    "cD+++++++++" : "cS+++++++++", path, plen, "");
		v->st->differ++;
		return 0;
	default:
		return verify_fail(v->msg, v->msglen, -AR_EPROTO, "primary "
		    "sent an entry of an unknown type");
	}
}

static int
verify_manifest_frame(void *arg, uint8_t type, const uint8_t *p,
    uint32_t len)
{
	struct verify_run_ctx *v = arg;
	struct wire_error e;

	if (v->ended)
		return verify_fail(v->msg, v->msglen, -AR_EPROTO, "primary "
		    "sent data after the end of its listing");
	switch (type) {
	case WIRE_DIR:
		return verify_block_start(v, p, len);
	case WIRE_ENTRY:
		return verify_entry(v, p, len);
	case WIRE_END:
		v->ended = 1;
		return verify_block_end(v);
	case WIRE_ATTRS:
	case WIRE_XATTRS:
	case WIRE_IDNAME:
		/* Metadata (versions WIRE_V_FIDELITY, WIRE_V_NAMES on): not
		 * verify's. */
		return 0;
	case WIRE_ERROR:
		if (wire_get_error(p, len, &e) == 0)
			return verify_fail(v->msg, v->msglen, -AR_EPROTO,
			    "primary failed: %s", verify_esc(e.msg,
			    e.msg_len));
		break;
	default:
		break;
	}
	return verify_fail(v->msg, v->msglen, -AR_EPROTO, "unexpected frame "
	    "(type 0x%02x) in the primary's listing", type);
}

/* The listing is stored whole before it is walked: the connection is
 * then free for the content compares. */
static int
verify_manifest_body(void *arg, const void *data, size_t len)
{
	int *fd = arg;

	return fs_write_full(*fd, data, len) == 0 ? 0 : -AR_EIO;
}

/*
 * An unnamed file for the listing: in state_dir (nothing of sync's is
 * touched there, and nothing is left), else in $TMPDIR or /tmp.
 */
static int
verify_tmpfile(const struct verify_opts *o, int *fd)
{
	const char *tmp = getenv("TMPDIR");

	*fd = open(o->cfg->state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd < 0)
		*fd = open(tmp != NULL && tmp[0] == '/' ? tmp : "/tmp",
		    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return *fd >= 0 ? 0 : -AR_EIO;
}

/* A frame of the stored listing, counted for the progress line. */
static int
verify_count_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
	struct verify_run_ctx *v = arg;

	if (type == WIRE_ENTRY && wire_get_entry(p, len, WIRE_ENTRY,
	    &v->ent) == 0)
		progress_totals(&v->prog, v->prog.total_entries + 1,
		    v->prog.total_bytes + (v->ent.type == WALK_FILE ||
		    v->ent.type == WALK_HARDLINK ? v->ent.size : 0));
	return 0;
}

/* --progress: the listing's totals (a pass over the stored listing fd;
 * what it cannot read, the walk reports). */
static void
verify_count(struct verify_run_ctx *v, int fd)
{
	struct wire_reader rd;
	uint8_t *buf;
	ssize_t n;

	progress_begin(&v->prog, 0);
	if (lseek(fd, 0, SEEK_SET) != 0)
		return;
	buf = malloc(VERIFY_READ_CHUNK);
	if (buf == NULL)
		return;
	if (wire_reader_init(&rd, WIRE_MAX_FRAME) == 0) {
		for (;;) {
			n = fs_read_full(fd, buf, VERIFY_READ_CHUNK);
			if (n <= 0 || wire_reader_feed(&rd, buf, (size_t)n,
			    verify_count_frame, v) != 0)
				break;
		}
		wire_reader_release(&rd);
	}
	free(buf);
}

/* Walk the stored listing fd against the local tree. */
static int
verify_walk(struct verify_run_ctx *v, int fd)
{
	uint8_t *buf;
	ssize_t n;
	int r;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return -AR_EIO;
	buf = malloc(VERIFY_READ_CHUNK);
	if (buf == NULL)
		return -AR_ENOMEM;
	r = wire_reader_init(&v->rd, WIRE_MAX_FRAME);
	while (r == 0) {
		n = fs_read_full(fd, buf, VERIFY_READ_CHUNK);
		if (n < 0)
			r = verify_fail(v->msg, v->msglen, -AR_EIO, "cannot "
			    "read the stored listing: %s", strerror(errno));
		if (n <= 0)
			break;
		r = wire_reader_feed(&v->rd, buf, (size_t)n,
		    verify_manifest_frame, v);
	}
	wire_reader_release(&v->rd);
	free(buf);
	if (r == 0 && !v->ended)
		r = verify_fail(v->msg, v->msglen, -AR_EPROTO, "the primary's "
		    "listing ended early");
	return r;
}

/* The verdicts of the content compare, as itemized lines. */
static void
verify_report(struct verify_run_ctx *v)
{
	struct verify_item *it;
	size_t i;

	for (i = 0; i < v->list.n; i++) {
		it = &v->list.items[i];
		switch (it->verdict) {
		case VERIFY_SAME:
			break;
		case VERIFY_DIFFERS:
			verify_line(v, ">fc........", it->path,
			    strlen(it->path), "");
			v->st->differ++;
			break;
		case VERIFY_CHANGING:
		case VERIFY_GONE:
		case VERIFY_RECHECK:
			verify_line(v, "changing   ", it->path,
			    strlen(it->path), "");
			v->st->changing++;
			break;
		case VERIFY_UNREADABLE:
		case VERIFY_PENDING:
			log_warn("'%s': the primary could not read it: not "
			    "verified", verify_esc(it->path,
			    strlen(it->path)));
			v->st->unverified++;
			break;
		}
	}
}

int
verify_run(const struct verify_opts *o, struct verify_stats *st,
    char *msg, size_t msglen)
{
	struct verify_run_ctx v;
	struct client *c = NULL;
	struct wire_hello h;
	int r, fd = -1;

	memset(&v, 0, sizeof(v));
	memset(st, 0, sizeof(*st));
	progress_init(&v.prog, o->progress, stderr);
	msg[0] = '\0';
	v.o = o;
	v.st = st;
	v.msg = msg;
	v.msglen = msglen;
	v.dirfd = -1;
	v.rootfd = -1;
	verify_list_init(&v.list);
	walk_dir_init(&v.local);
	r = exclude_new(&v.exclude);
	if (r == 0 && o->cfg->exclude != NULL &&
	    exclude_add_list(v.exclude, o->cfg->exclude, msg, msglen) != 0)
		r = -AR_ECONFIG;
	if (r == 0 && fs_open_dir(o->cfg->data_dir, &v.rootfd) != 0)
		r = verify_fail(msg, msglen, -AR_EIO, "data directory '%s': "
		    "%s", o->cfg->data_dir, strerror(errno));
	if (r == 0)
		r = client_new(o->cfg, o->auth, &c);
	if (r == 0) {
		r = client_hello(c, &h);
		if (r != 0)
			r = verify_fail(msg, msglen, r, "%s",
			    client_errmsg(c));
	}
	v.c = c;
	if (r == 0 && verify_tmpfile(o, &fd) != 0)
		r = verify_fail(msg, msglen, -AR_EIO, "no room for the "
		    "primary's listing (state_dir, $TMPDIR, /tmp): %s",
		    strerror(errno));
	if (r == 0) {
		log_verbose("verifying '%s' against %s, generation %s, "
		    "protocol version %u", o->cfg->data_dir,
		    o->cfg->primary.text, h.generation, h.version);
		r = client_get(c, "/v1/manifest", verify_manifest_body, &fd);
		if (r == -AR_EIO)
			r = verify_fail(msg, msglen, r, "cannot store the "
			    "primary's listing: %s", strerror(errno));
		else if (r != 0)
			r = verify_fail(msg, msglen, r, "%s",
			    client_errmsg(c));
	}
	if (r == 0 && v.prog.out != NULL)
		verify_count(&v, fd);
	if (r == 0)
		r = verify_walk(&v, fd);
	(void)verify_block_end(&v);
	if (r == 0 && v.list.n > 0)
		r = verify_flush(&v);
	progress_finish(&v.prog);
	if (fd >= 0)
		close(fd);
	fflush(o->out);
	if (r == 0 && st->differ > 0)
		r = verify_fail(msg, msglen, -AR_EDIFFER, "%llu entries "
		    "differ from the primary's",
		    (unsigned long long)st->differ);
	else if (r == 0 && st->unverified > 0)
		r = verify_fail(msg, msglen, -AR_EPARTIAL, "%llu files could "
		    "not be verified", (unsigned long long)st->unverified);
	client_free(c);
	walk_dir_release(&v.local);
	verify_list_release(&v.list);
	exclude_free(v.exclude);
	if (v.rootfd >= 0)
		close(v.rootfd);
	return r;
}
